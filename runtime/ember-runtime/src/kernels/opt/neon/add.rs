//! The int8 Add body, sixteen elements per step.

use super::shared::{ld16, Vq};
use core::arch::aarch64::*;

/// gemmlowp's double rounding of `x` with per-lane shifts split as the
/// blocked table stores them: `SSHL` by `left`, `SQRDMULH` by `m`, the
/// sign fix-up and `SRSHL` by `negright`.
#[inline]
#[target_feature(enable = "neon")]
fn rescale(x: int32x4_t, m: int32x4_t, left: int32x4_t, negright: int32x4_t) -> int32x4_t {
    let x = vqrdmulhq_s32(vshlq_s32(x, left), m);
    let fix = vshrq_n_s32::<31>(vandq_s32(x, negright));
    vrshlq_s32(vqaddq_s32(x, fix), negright)
}

/// int8 Add over the longest multiple of 16 elements of `y`, 16 per step;
/// returns how many it wrote (the caller finishes the rest). The
/// reference's arithmetic per element: `(x − zp) << ls`, each operand
/// rescaled, the wrapping sum rescaled, the output zero point added with
/// saturation and the activation bounds applied; `ls` is the already
/// clamped input left shift.
#[target_feature(enable = "neon")]
pub fn add_run(
    a: &[i8],
    b: &[i8],
    p: &crate::kernels::elementwise::AddParamsS8,
    ls: u32,
    y: &mut [i8],
) -> usize {
    let n = y.len().min(a.len()).min(b.len()) & !15;
    let split = |s: i32| {
        (
            vdupq_n_s32(s.clamp(0, 31)),
            vdupq_n_s32(-(s.saturating_neg().clamp(0, 31))),
        )
    };
    let (al, ar) = split(p.a_shift);
    let (bl, br) = split(p.b_shift);
    let (ol, or) = split(p.out_shift);
    let (am, bm, om) = (
        vdupq_n_s32(p.a_mult),
        vdupq_n_s32(p.b_mult),
        vdupq_n_s32(p.out_mult),
    );
    // Zero points are validated int8, so `x − zp` fits int16.
    let (azp, bzp) = (vdupq_n_s16(p.a_zp as i16), vdupq_n_s16(p.b_zp as i16));
    let lsv = vdupq_n_s32(ls as i32);
    let vq = Vq::new(&crate::kernels::QuantIo {
        in_zp: 0,
        out_zp: p.out_zp,
        act_min: p.act_min,
        act_max: p.act_max,
    });
    // Widens 16 int8 to four int32 vectors of `(x − zp) << ls`.
    let widen = |v: int8x16_t, zp: int16x8_t| -> [int32x4_t; 4] {
        let lo = vsubq_s16(vmovl_s8(vget_low_s8(v)), zp);
        let hi = vsubq_s16(vmovl_high_s8(v), zp);
        [
            vshlq_s32(vmovl_s16(vget_low_s16(lo)), lsv),
            vshlq_s32(vmovl_high_s16(lo), lsv),
            vshlq_s32(vmovl_s16(vget_low_s16(hi)), lsv),
            vshlq_s32(vmovl_high_s16(hi), lsv),
        ]
    };
    let mut i = 0;
    while i < n {
        // SAFETY: `i + 16 <= n <=` every slice's length.
        let (va, vb) = unsafe { (ld16(a.as_ptr().add(i)), ld16(b.as_ptr().add(i))) };
        let (xa, xb) = (widen(va, azp), widen(vb, bzp));
        let mut r = [vdupq_n_s32(0); 4];
        for j in 0..4 {
            let s = vaddq_s32(rescale(xa[j], am, al, ar), rescale(xb[j], bm, bl, br));
            let s = vqaddq_s32(rescale(s, om, ol, or), vq.zp);
            r[j] = vminq_s32(vmaxq_s32(s, vq.lo), vq.hi);
        }
        let lo = vqmovn_high_s32(vqmovn_s32(r[0]), r[1]);
        let hi = vqmovn_high_s32(vqmovn_s32(r[2]), r[3]);
        // SAFETY: `i + 16 <= n <= y.len()`.
        unsafe { vst1q_s8(y.as_mut_ptr().add(i), vqmovn_high_s16(vqmovn_s16(lo), hi)) };
        i += 16;
    }
    n
}
