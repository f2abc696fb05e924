//! Arm semihosting: the debugger (here QEMU with `-semihosting-config
//! enable=on,target=native`) services requests made with a trap instruction.
//! Used for the console (defmt frames to the host's stdout) and for exiting
//! with a status code.

use core::sync::atomic::{AtomicIsize, Ordering};

const SYS_OPEN: usize = 0x01;
const SYS_CLOSE: usize = 0x02;
const SYS_WRITE: usize = 0x05;
const SYS_READ: usize = 0x06;
const SYS_FLEN: usize = 0x0c;
const SYS_EXIT: usize = 0x18;
#[cfg(target_arch = "arm")]
const SYS_EXIT_EXTENDED: usize = 0x20;
/// `ADP_Stopped_ApplicationExit`: a normal exit; the subcode is the status.
const APPLICATION_EXIT: usize = 0x20026;

/// Issues semihosting call `op` with argument `arg` (usually the address of a
/// parameter block).
///
/// # Safety
/// `arg` must be what `op` expects; a pointer argument must point to a valid
/// parameter block whose pointers are valid for the call.
#[inline(always)]
unsafe fn call(op: usize, arg: usize) -> isize {
    let ret: usize;
    // SAFETY (both arms): the trap is handled by the debugger/emulator, which
    // reads only the parameter block the caller vouched for and writes only r0/x0.
    #[cfg(target_arch = "arm")]
    core::arch::asm!("bkpt #0xab", inout("r0") op => ret, in("r1") arg, options(nostack, preserves_flags));
    #[cfg(target_arch = "aarch64")]
    core::arch::asm!("hlt #0xf000", inout("x0") op => ret, in("x1") arg, options(nostack, preserves_flags));
    #[cfg(not(any(target_arch = "arm", target_arch = "aarch64")))]
    {
        let _ = (op, arg);
        ret = usize::MAX;
    }
    ret as isize
}

static STDOUT: AtomicIsize = AtomicIsize::new(-1);

fn stdout() -> isize {
    let h = STDOUT.load(Ordering::Relaxed);
    if h >= 0 {
        return h;
    }
    // ":tt" opened for writing ("w" = mode 4) is the host's stdout.
    let name = b":tt\0";
    let block = [name.as_ptr() as usize, 4, 3];
    // SAFETY: SYS_OPEN takes [name pointer, mode, name length]; `block` and
    // `name` outlive the call.
    let h = unsafe { call(SYS_OPEN, block.as_ptr() as usize) };
    STDOUT.store(h, Ordering::Relaxed);
    h
}

/// Writes `bytes` to the host's stdout.
pub fn write(bytes: &[u8]) {
    let h = stdout();
    if h < 0 || bytes.is_empty() {
        return;
    }
    let block = [h as usize, bytes.as_ptr() as usize, bytes.len()];
    // SAFETY: SYS_WRITE takes [handle, buffer pointer, length]; the buffer is
    // a live slice of exactly that length.
    unsafe {
        call(SYS_WRITE, block.as_ptr() as usize);
    }
}

/// Opens host file `name` (NUL-terminated) in semihosting mode `mode`
/// (1 = "rb", 5 = "wb"); `None` if the host refuses.
fn open(name: &[u8], mode: usize) -> Option<usize> {
    if name.last() != Some(&0) {
        return None;
    }
    let block = [name.as_ptr() as usize, mode, name.len() - 1];
    // SAFETY: SYS_OPEN takes [name pointer, mode, name length without the
    // NUL]; `name` is NUL-terminated and outlives the call.
    let h = unsafe { call(SYS_OPEN, block.as_ptr() as usize) };
    (h >= 0).then_some(h as usize)
}

fn close(h: usize) {
    let block = [h];
    // SAFETY: SYS_CLOSE takes [handle]; `block` outlives the call.
    unsafe {
        call(SYS_CLOSE, block.as_ptr() as usize);
    }
}

/// Reads host file `name` (NUL-terminated, relative to the emulator's
/// working directory) into the start of `buf`; the bytes read, or `None`
/// if the file is missing, unreadable or longer than `buf`. For simulated
/// boards only: state that must outlive a (simulated) power cut.
pub fn read_file(name: &[u8], buf: &mut [u8]) -> Option<usize> {
    let h = open(name, 1)?;
    let block = [h];
    // SAFETY: SYS_FLEN takes [handle]; `block` outlives the call.
    let len = unsafe { call(SYS_FLEN, block.as_ptr() as usize) };
    let ok = len >= 0 && len as usize <= buf.len() && {
        let block = [h, buf.as_mut_ptr() as usize, len as usize];
        // SAFETY: SYS_READ takes [handle, buffer pointer, length] and writes
        // at most `length` bytes into the buffer, which is that long here;
        // it returns the number of bytes *not* read.
        unsafe { call(SYS_READ, block.as_ptr() as usize) == 0 }
    };
    close(h);
    ok.then_some(len as usize)
}

/// Writes `bytes` to host file `name` (NUL-terminated), replacing it;
/// `false` if the host refuses.
pub fn write_file(name: &[u8], bytes: &[u8]) -> bool {
    let Some(h) = open(name, 5) else {
        return false;
    };
    let block = [h, bytes.as_ptr() as usize, bytes.len()];
    // SAFETY: SYS_WRITE takes [handle, buffer pointer, length]; the buffer is
    // a live slice of exactly that length. It returns the bytes not written.
    let ok = unsafe { call(SYS_WRITE, block.as_ptr() as usize) } == 0;
    close(h);
    ok
}

/// Ends the program with exit status `code`.
pub fn exit(code: i32) -> ! {
    let block = [APPLICATION_EXIT, code as isize as usize];
    // SAFETY: the A64 SYS_EXIT and the A32/T32 SYS_EXIT_EXTENDED both take the
    // parameter block [reason, subcode].
    #[cfg(target_arch = "arm")]
    unsafe {
        call(SYS_EXIT_EXTENDED, block.as_ptr() as usize);
    }
    #[cfg(not(target_arch = "arm"))]
    unsafe {
        call(SYS_EXIT, block.as_ptr() as usize);
    }
    // Without a debugger attached the trap returns (or never does): stop here.
    let _ = SYS_EXIT;
    loop {
        core::hint::spin_loop();
    }
}
