//! Helium dot products of one int8 vector against four rows, for the
//! kernels that take raw int32 sums (the dynamically quantized fully
//! connected, the int8 paths without a fused epilogue).

use core::arch::asm;

/// `Σ x·w` of `x` against four weight rows over the shortest length, as
/// [`super::super::dot::dot4_s8`]: a tail-predicated loop (`DLSTP.8`) of
/// one input load, four row loads and four `VMLADAVA.S8` per 16 bytes
/// (64 products in 9 instructions). The int32 sums wrap as the portable
/// loop's do, so the result is the same bit for bit.
pub fn dot4_s8(x: &[i8], w0: &[i8], w1: &[i8], w2: &[i8], w3: &[i8]) -> [i32; 4] {
    let n = super::super::dot::common_len(x, [w0, w1, w2, w3]);
    if n == 0 {
        return [0; 4];
    }
    let (a0, a2, a4, a8): (i32, i32, i32, i32);
    // SAFETY: the tail-predicated loop reads exactly `n` bytes from each
    // of `x`, `w0`..`w3` (lanes past `n` are neither loaded nor summed),
    // all at least `n` long; it writes only the declared registers.
    // Compiled only with the `mve` feature on 32-bit Arm.
    unsafe {
        asm!(
            "movs r0, #0",
            "movs r2, #0",
            "movs r4, #0",
            "mov.w r8, #0",
            "dlstp.8 lr, lr",
            dot4_loop!(),
            w0 = inout(reg) w0.as_ptr() => _,
            w1 = inout(reg) w1.as_ptr() => _,
            w2 = inout(reg) w2.as_ptr() => _,
            w3 = inout(reg) w3.as_ptr() => _,
            inout("lr") n => _,
            inout("r1") x.as_ptr() => _,
            out("r0") a0,
            out("r2") a2,
            out("r4") a4,
            out("r8") a8,
            out("q0") _,
            out("q1") _,
            options(nostack),
        );
    }
    [a0, a2, a4, a8]
}
