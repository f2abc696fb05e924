//! Stack high-water mark: the free RAM between the end of the statics
//! (`__sheap`) and the stack pointer is painted with a pattern at start-up;
//! the first overwritten word found later bounds the deepest stack use.
//!
//! Both symbols come from the board's linker script (cortex-m-rt's `link.x`
//! defines them; `virt-a53` defines the same names).

const PATTERN: u32 = 0xE3BE_5AC5;
/// Bytes below the current stack pointer left unpainted (the frame of
/// `paint` itself and whatever the compiler keeps there).
const MARGIN: usize = 256;

extern "C" {
    static __sheap: u8;
    static _stack_start: u8;
}

fn bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken, never their
    // (non-existent) contents, which needs no `unsafe`.
    (
        core::ptr::addr_of!(__sheap) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}

fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer register; no memory is touched.
    unsafe {
        #[cfg(target_arch = "arm")]
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
        #[cfg(target_arch = "aarch64")]
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
        #[cfg(not(any(target_arch = "arm", target_arch = "aarch64")))]
        {
            sp = 0;
        }
    }
    sp
}

/// Paints the unused stack. Call first thing in `main`, before interrupts
/// are enabled.
pub fn paint() {
    let (lo, _) = bounds();
    let lo = lo.next_multiple_of(4);
    let hi = sp().saturating_sub(MARGIN) & !3;
    let mut a = lo;
    while a < hi {
        // SAFETY: [lo, hi) lies between the end of the statics and the live
        // part of the stack: memory nothing else owns yet (no heap, and
        // nothing has been pushed below the current frame). Volatile so the
        // stores are not elided.
        unsafe { core::ptr::write_volatile(a as *mut u32, PATTERN) };
        a += 4;
    }
}

/// Deepest stack use since [`paint`], in bytes.
pub fn high_water() -> usize {
    let (lo, top) = bounds();
    let mut a = lo.next_multiple_of(4);
    // SAFETY: reads words of the painted region (between the statics and the
    // stack), all of which are RAM owned by the program.
    while a < top && unsafe { core::ptr::read_volatile(a as *const u32) } == PATTERN {
        a += 4;
    }
    top - a
}
