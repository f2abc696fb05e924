//! Fully connected with TFLite's single rounding, four outputs per block
//! (64-bit `SMULL`, `SRSHL`, `SQXTN`).

use super::shared::{put4, Vq};
use crate::kernels::QuantIo;
use core::arch::aarch64::*;

/// TFLite's single-rounding requantization of four lanes: `(x·m +
/// 2^(s−1)) >> s` with `s = 31 − shift` (`shift` clamped to `−31..=30`, as
/// [`crate::kernels::quant::multiply_by_quantized_multiplier_single_rounding`])
/// in 64-bit lanes (`SMULL`, `SRSHL` by `−s`, which adds exactly that
/// rounding constant), saturated back to int32 (`SQXTN`).
#[inline]
#[target_feature(enable = "neon")]
fn requant_single(x: int32x4_t, m: int32x4_t, shift: int32x4_t) -> int32x4_t {
    let s = vsubq_s32(
        vdupq_n_s32(31),
        vminq_s32(vmaxq_s32(shift, vdupq_n_s32(-31)), vdupq_n_s32(30)),
    );
    let neg = vnegq_s32(s);
    let lo = vrshlq_s64(
        vmull_s32(vget_low_s32(x), vget_low_s32(m)),
        vmovl_s32(vget_low_s32(neg)),
    );
    let hi = vrshlq_s64(vmull_high_s32(x, m), vmovl_high_s32(neg));
    vqmovn_high_s64(vqmovn_s64(lo), hi)
}

/// One fully-connected row (`x`, length `k`) times the weight rows `w`
/// (`[n, k]`) with single-rounding requantization (`pairs`: one `[mult,
/// shift]` for the tensor or one per output): four outputs per step, the
/// dot products from [`super::super::dot::dot4_s8`], bias, requantization, zero
/// point and clamp in vector registers. Returns how many outputs it wrote
/// (whole blocks of four); the caller finishes the rest.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
pub fn fc_row_single(
    x: &[i8],
    w: &[i8],
    k: usize,
    fb: &[i32],
    pairs: &[i32],
    q: &QuantIo,
    out: &mut [i8],
) -> usize {
    let n = out
        .len()
        .min(fb.len())
        .min(w.len().checked_div(k).unwrap_or(0));
    let per_tensor = pairs.len() == 2;
    if k == 0 || x.len() < k || !(per_tensor || pairs.len() >= 2 * n) {
        return 0;
    }
    let vq = Vq::new(q);
    let (mut m, mut s) = (vdupq_n_s32(pairs[0]), vdupq_n_s32(pairs[1]));
    let mut oc = 0;
    while oc + 4 <= n {
        let row = |j: usize| &w[j * k..(j + 1) * k];
        let acc =
            super::super::dot::dot4_s8(&x[..k], row(oc), row(oc + 1), row(oc + 2), row(oc + 3));
        if !per_tensor {
            // SAFETY: pairs `oc..oc + 4` lie inside (`2n <= pairs.len()`).
            let v = unsafe { vld2q_s32(pairs.as_ptr().add(2 * oc)) };
            (m, s) = (v.0, v.1);
        }
        // SAFETY: `acc` holds four i32; `oc + 4 <= n <= fb.len()`.
        let a = unsafe { vaddq_s32(vld1q_s32(acc.as_ptr()), vld1q_s32(fb.as_ptr().add(oc))) };
        let r = vqaddq_s32(requant_single(a, m, s), vq.zp);
        let r = vminq_s32(vmaxq_s32(r, vq.lo), vq.hi);
        let n16 = vqmovn_s32(r);
        let word = vget_lane_u32::<0>(vreinterpret_u32_s8(vqmovn_s16(vcombine_s16(n16, n16))));
        put4(out, oc, word);
        oc += 4;
    }
    oc
}
