//! The byte table lookup, sixteen elements per gather.

use core::arch::asm;

/// `y[i] = table[x[i]]` over all of `y` (tail-predicated, so any length);
/// returns how many it wrote. Per sixteen bytes: one contiguous load of
/// the indices, one gather (`VLDRB.U8 q1, [table, q0]`: lane `i` reads
/// `table + q0[i]`, an unsigned byte offset, so always inside the 256-byte
/// table), one contiguous store.
pub fn lut_run(x: &[u8], table: &[u8; 256], y: &mut [u8]) -> usize {
    let n = x.len().min(y.len());
    if n == 0 {
        return 0;
    }
    // SAFETY: the tail-predicated loop (`DLSTP.8` with `n` elements)
    // touches exactly `n` bytes from `x` and `n` to `y`, both at least that
    // long; the gather's offsets are bytes, so it reads only the 256-byte
    // table; only the declared registers are written. Compiled only with
    // the `mve` feature on 32-bit Arm (Helium cores).
    unsafe {
        asm!(
            "dlstp.8 lr, lr",
            "2:",
            "vldrb.u8 q0, [{x}], #16",
            "vldrb.u8 q1, [{t}, q0]",
            "vstrb.8 q1, [{y}], #16",
            "letp lr, 2b",
            x = inout(reg) x.as_ptr() => _,
            y = inout(reg) y.as_mut_ptr() => _,
            t = in(reg) table.as_ptr(),
            inout("lr") n => _,
            out("q0") _,
            out("q1") _,
            options(nostack),
        );
    }
    n
}
