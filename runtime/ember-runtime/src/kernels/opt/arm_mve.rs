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

/// Constants of [`add4_run`], one vector each (lanes equal).
#[repr(C, align(16))]
struct AddConsts {
    a_left: [i32; 4],
    a_negright: [i32; 4],
    b_left: [i32; 4],
    b_negright: [i32; 4],
    out_left: [i32; 4],
    out_negright: [i32; 4],
    lo: [i32; 4],
    hi: [i32; 4],
    a_zp: [i32; 4],
    b_zp: [i32; 4],
    ls: [i32; 4],
    out_zp: [i32; 4],
}

/// Int8 Add over the longest multiple of four elements of `y`, four
/// elements per step; returns how many it wrote. Each requantization is
/// the sequence of [`requant4`] (scalar multipliers in general-purpose
/// registers); `ls` is the already clamped input left shift.
pub fn add4_run(
    a: &[i8],
    b: &[i8],
    p: &crate::kernels::elementwise::AddParamsS8,
    ls: u32,
    y: &mut [i8],
) -> usize {
    let n = y.len().min(a.len()).min(b.len()) & !3;
    let split = |s: i32| ([s.clamp(0, 31); 4], [-(s.saturating_neg().clamp(0, 31)); 4]);
    let (a_left, a_negright) = split(p.a_shift);
    let (b_left, b_negright) = split(p.b_shift);
    let (out_left, out_negright) = split(p.out_shift);
    let k = AddConsts {
        a_left,
        a_negright,
        b_left,
        b_negright,
        out_left,
        out_negright,
        lo: [p.act_min; 4],
        hi: [p.act_max; 4],
        a_zp: [p.a_zp; 4],
        b_zp: [p.b_zp; 4],
        ls: [ls as i32; 4],
        out_zp: [p.out_zp; 4],
    };
    let mut i = 0;
    while i < n {
        // SAFETY: `i + 4 ≤ n ≤` every slice's length, so the 4-byte loads
        // from `a`, `b` and the 4-byte store to `y` are in bounds; `k` is
        // 16-byte aligned (VLDRW needs 4) and lives across the block; only
        // the declared vector registers are clobbered. Compiled only with
        // the `mve` feature on 32-bit Arm (Helium cores).
        unsafe {
            asm!(
                // a: (x − zp) << ls, << left, VQRDMULH, rounding >> right
                "vldrb.s32 q0, [{pa}]",
                "vldrw.u32 q3, [{k}, #160]",
                "vldrw.u32 q1, [{k}, #128]",
                "vsub.i32 q0, q0, q1",
                "vshl.s32 q0, q0, q3",
                "vldrw.u32 q1, [{k}]",
                "vshl.s32 q0, q0, q1",
                "vqrdmulh.s32 q0, q0, {am}",
                "vldrw.u32 q2, [{k}, #16]",
                "vand q1, q0, q2",
                "vshr.s32 q1, q1, #31",
                "vqadd.s32 q0, q0, q1",
                "vrshl.s32 q0, q0, q2",
                // b, the same into q4
                "vldrb.s32 q4, [{pb}]",
                "vldrw.u32 q1, [{k}, #144]",
                "vsub.i32 q4, q4, q1",
                "vshl.s32 q4, q4, q3",
                "vldrw.u32 q1, [{k}, #32]",
                "vshl.s32 q4, q4, q1",
                "vqrdmulh.s32 q4, q4, {bm}",
                "vldrw.u32 q2, [{k}, #48]",
                "vand q1, q4, q2",
                "vshr.s32 q1, q1, #31",
                "vqadd.s32 q4, q4, q1",
                "vrshl.s32 q4, q4, q2",
                // sum (wrapping), output requantization, zero point, clamp
                "vadd.i32 q0, q0, q4",
                "vldrw.u32 q1, [{k}, #64]",
                "vshl.s32 q0, q0, q1",
                "vqrdmulh.s32 q0, q0, {om}",
                "vldrw.u32 q2, [{k}, #80]",
                "vand q1, q0, q2",
                "vshr.s32 q1, q1, #31",
                "vqadd.s32 q0, q0, q1",
                "vrshl.s32 q0, q0, q2",
                "vldrw.u32 q1, [{k}, #176]",
                "vqadd.s32 q0, q0, q1",
                "vldrw.u32 q1, [{k}, #96]",
                "vmax.s32 q0, q0, q1",
                "vldrw.u32 q1, [{k}, #112]",
                "vmin.s32 q0, q0, q1",
                "vstrb.32 q0, [r0]",
                pa = in(reg) a.as_ptr().add(i),
                pb = in(reg) b.as_ptr().add(i),
                in("r0") y.as_mut_ptr().add(i),
                k = in(reg) &k as *const AddConsts,
                am = in(reg) p.a_mult,
                bm = in(reg) p.b_mult,
                om = in(reg) p.out_mult,
                out("q0") _, out("q1") _, out("q2") _, out("q3") _, out("q4") _,
                options(nostack, preserves_flags),
            );
        }
        i += 4;
    }
    n
}
