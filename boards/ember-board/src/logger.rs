//! defmt global logger writing encoded frames over semihosting, plus the
//! panic handler that reports through it. The firmware logs only from thread
//! mode (never from interrupt handlers), so a flag is enough to reject
//! re-entrance.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::semihosting;

#[defmt::global_logger]
struct SemihostingLogger;

static TAKEN: AtomicBool = AtomicBool::new(false);

struct State {
    encoder: defmt::Encoder,
    buf: [u8; 128],
    len: usize,
}

struct Cell(UnsafeCell<State>);
// SAFETY: `State` is only touched between `acquire` and `release`, which the
// `TAKEN` flag makes exclusive.
unsafe impl Sync for Cell {}

static STATE: Cell = Cell(UnsafeCell::new(State {
    encoder: defmt::Encoder::new(),
    buf: [0; 128],
    len: 0,
}));

impl State {
    fn flush(&mut self) {
        semihosting::write(&self.buf[..self.len]);
        self.len = 0;
    }
}

/// # Safety
/// Only between `acquire` and `release`.
unsafe fn state() -> &'static mut State {
    // SAFETY: the caller holds the logger (see `Cell`).
    unsafe { &mut *STATE.0.get() }
}

// SAFETY: frames are written only between acquire and release, and acquire
// refuses a second holder, as defmt's contract requires.
unsafe impl defmt::Logger for SemihostingLogger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            // Re-entrant logging (from a panic inside a log call): drop it.
            semihosting::exit(102);
        }
        // SAFETY: we now hold the logger.
        let s = unsafe { state() };
        let State { encoder, buf, len } = s;
        let mut tmp = Sink { buf, len };
        encoder.start_frame(|b| tmp.push(b));
    }

    unsafe fn flush() {
        // SAFETY: called by defmt while the logger is held.
        unsafe { state() }.flush();
    }

    unsafe fn release() {
        // SAFETY: called by defmt while the logger is held.
        let s = unsafe { state() };
        {
            let State { encoder, buf, len } = s;
            let mut tmp = Sink { buf, len };
            encoder.end_frame(|b| tmp.push(b));
        }
        s.flush();
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called by defmt while the logger is held.
        let s = unsafe { state() };
        let State { encoder, buf, len } = s;
        let mut tmp = Sink { buf, len };
        encoder.write(bytes, |b| tmp.push(b));
    }
}

/// The encoder and the buffer are borrowed separately while encoding.
struct Sink<'a> {
    buf: &'a mut [u8; 128],
    len: &'a mut usize,
}

impl Sink<'_> {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if *self.len == self.buf.len() {
                semihosting::write(&self.buf[..]);
                *self.len = 0;
            }
            self.buf[*self.len] = b;
            *self.len += 1;
        }
    }
}

/// Reports where the panic happened (file and line only: formatting the
/// message would pull `core::fmt` into every image for a path the runtime
/// never takes) and exits with status 101.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => defmt::error!("panicked at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panicked"),
    }
    semihosting::exit(101)
}
