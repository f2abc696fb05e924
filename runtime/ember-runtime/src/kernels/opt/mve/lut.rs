//! The byte table lookup, sixteen elements per gather.

use core::arch::asm;

/// `y[i] = table[x[i]]` for `i < n` (tail-predicated, so any length);
/// returns `n`. Per sixteen bytes: one contiguous load of the indices, one
/// gather (`VLDRB.U8 q1, [table, q0]`: lane `i` reads `table + q0[i]`, an
/// unsigned byte offset, so always inside the 256-byte table), one
/// contiguous store — each block read before it is written, so `x` may be
/// `y`.
///
/// # Safety
/// `x` readable and `y` writable for `n` bytes, the same bytes or not
/// overlapping.
pub unsafe fn lut_run(x: *const u8, table: &[u8; 256], y: *mut u8, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    // SAFETY: the tail-predicated loop (`DLSTP.8` with `n` elements)
    // touches exactly `n` bytes from `x` and `n` to `y` (the caller's
    // contract); the gather's offsets are bytes, so it reads only the
    // 256-byte table; only the declared registers are written. Compiled
    // only with the `mve` feature on 32-bit Arm (Helium cores).
    unsafe {
        asm!(
            "dlstp.8 lr, lr",
            "2:",
            "vldrb.u8 q0, [{x}], #16",
            "vldrb.u8 q1, [{t}, q0]",
            "vstrb.8 q1, [{y}], #16",
            "letp lr, 2b",
            x = inout(reg) x => _,
            y = inout(reg) y => _,
            t = in(reg) table.as_ptr(),
            inout("lr") n => _,
            out("q0") _,
            out("q1") _,
            options(nostack),
        );
    }
    n
}
