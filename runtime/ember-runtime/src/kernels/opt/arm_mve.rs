//! Helium (M-profile Vector Extension) requantization: four accumulators
//! of four consecutive output channels requantized, offset, clamped and
//! stored as int8 in 16 vector instructions (after the accumulators are
//! stored for one `VLDRW`), against ~45 scalar instructions per output.
//!
//! Per channel block the compiler stores `[mult ×4, left shift ×4,
//! −right shift ×4]` (see [`super::requant_blocks`]). The sequence is
//! gemmlowp's double rounding exactly:
//! - `VSHL` (register) by the left shift: the wrapping `x << left`;
//! - `VQRDMULH`: the saturating rounding doubling high multiply itself;
//! - rounding divide by `2^right`, half away from zero: `VRSHL` by
//!   `−right` rounds half up, so negative values are first lowered by one
//!   (`x − 1` with saturation; the mask `x & −right` has its sign bit set
//!   exactly when `x < 0` and `right > 0`). For `x = q·2^e + r` this
//!   rounds up iff `r > 2^(e−1)`, gemmlowp's rule for negatives; `VRSHL`
//!   adds its rounding constant at full precision (no overflow), and the
//!   saturated `i32::MIN − 1` gives the same quotient as the exact one;
//! - `VQADD` of the output zero point (the reference's `saturating_add`),
//!   `VMAX`/`VMIN` with the activation bounds, and `VSTRB.32` storing the
//!   low byte of each lane (the value is already inside int8).

use core::arch::asm;

/// Requantizes `acc` (channels `c..c+4`) with the block `params` and
/// writes four int8 values to `out[0..4]`.
#[inline(always)]
pub fn requant4(
    acc: &[i32; 4],
    params: &[i32; 12],
    out_zp: i32,
    lo: i32,
    hi: i32,
    out: &mut [i8; 4],
) {
    // SAFETY: reads 16 bytes from `acc` and 48 from `params` (`&[i32; 4]`
    // and `&[i32; 12]`, so valid and 4-byte aligned as VLDRW needs) and writes 4 bytes to `out` (a
    // `&mut [i8; 4]`); touches only the vector registers it declares as
    // clobbered. The module is compiled only with the `mve` feature on
    // 32-bit Arm, which the firmware enables for Helium cores.
    unsafe {
        asm!(
            "vldrw.u32 q0, [{acc}]",
            "vldrw.u32 q1, [{p}]",
            "vldrw.u32 q2, [{p}, #16]",
            "vshl.s32 q0, q0, q2",
            "vqrdmulh.s32 q0, q0, q1",
            "vldrw.u32 q2, [{p}, #32]",
            "vand q1, q0, q2",
            "vshr.s32 q1, q1, #31",
            "vqadd.s32 q0, q0, q1",
            "vrshl.s32 q0, q0, q2",
            "vdup.32 q1, {zp}",
            "vqadd.s32 q0, q0, q1",
            "vdup.32 q1, {lo}",
            "vmax.s32 q0, q0, q1",
            "vdup.32 q1, {hi}",
            "vmin.s32 q0, q0, q1",
            "vstrb.32 q0, [r0]",
            acc = in(reg) acc.as_ptr(),
            p = in(reg) params.as_ptr(),
            zp = in(reg) out_zp,
            lo = in(reg) lo,
            hi = in(reg) hi,
            in("r0") out.as_mut_ptr(),
            out("q0") _, out("q1") _, out("q2") _,
            options(nostack, preserves_flags),
        );
    }
}
