//! What every NEON kernel shares and nothing operator-specific: loads,
//! multiply-accumulate and reduction helpers, `SDOT`, the requantization
//! epilogue ([`requant4`], [`requant_v`]) and byte copies.

use crate::kernels::QuantIo;
use core::arch::aarch64::*;

/// Loads 16 int8 values at `p`.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn ld16(p: *const i8) -> int8x16_t {
    // SAFETY: the caller guarantees 16 readable bytes; `LD1` has no
    // alignment requirement.
    unsafe { vld1q_s8(p) }
}

/// Loads 8 int8 values at `p`.
///
/// # Safety
/// `p..p + 8` must be readable.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn ld8(p: *const i8) -> int8x8_t {
    // SAFETY: the caller guarantees 8 readable bytes.
    unsafe { vld1_s8(p) }
}

/// `acc += Σ` of the 16 products `x·w`, folded into four int32 lanes.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn mac16(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    let lo = vmull_s8(vget_low_s8(x), vget_low_s8(w));
    let hi = vmull_high_s8(x, w);
    vpadalq_s16(vpadalq_s16(acc, lo), hi)
}

/// [`mac16`] with one instruction fewer: the upper eight products are
/// added onto the lower eight in int16 (`SMULL` then `SMLAL2`) before the
/// fold. Exact only when no weight is −128 (then `|x·w| <= 16256` and two
/// fit int16); the callers check the filter first.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn mac16_paired(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    let pairs = vmlal_high_s8(vmull_s8(vget_low_s8(x), vget_low_s8(w)), x, w);
    vpadalq_s16(acc, pairs)
}

/// `acc += Σ` of the 8 products `x·w`, folded into four int32 lanes.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn mac8(acc: int32x4_t, x: int8x8_t, w: int8x8_t) -> int32x4_t {
    vpadalq_s16(acc, vmull_s8(x, w))
}

/// The sums of the lanes of four accumulators, as one vector.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn reduce4(a0: int32x4_t, a1: int32x4_t, a2: int32x4_t, a3: int32x4_t) -> int32x4_t {
    vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3))
}

/// The four lanes of `v`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn lanes(v: int32x4_t) -> [i32; 4] {
    let mut out = [0i32; 4];
    // SAFETY: `out` holds exactly four i32.
    unsafe { vst1q_s32(out.as_mut_ptr(), v) };
    out
}

/// Shortest of the slices: the length every dot product runs over.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn common_len(x: &[i8], w: [&[i8]; 4]) -> usize {
    w.iter().fold(x.len(), |n, r| n.min(r.len()))
}

/// Scalar products of the elements `from..n` (the tail past the vectors).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn tail(x: &[i8], w: &[i8], from: usize, n: usize) -> i32 {
    let (Some(x), Some(w)) = (x.get(from..n), w.get(from..n)) else {
        return 0;
    };
    x.iter().zip(w).fold(0i32, |a, (&x, &w)| {
        a.wrapping_add((x as i32).wrapping_mul(w as i32))
    })
}

/// `SDOT`: `acc` lane `l += Σ_{k<4} x[4l+k]·w[4l+k]`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(super) fn sdot(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: register-only arithmetic; the `dotprod` target feature of
    // this function means callers established that the core has `SDOT`.
    unsafe {
        core::arch::asm!(
            "sdot {acc:v}.4s, {x:v}.16b, {w:v}.16b",
            acc = inout(vreg) acc,
            x = in(vreg) x,
            w = in(vreg) w,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Requantizes `acc` (channels `c..c+4`) with the block `p` and writes four
/// int8 values to `out[0..4]`.
#[inline]
#[target_feature(enable = "neon")]
pub fn requant4(acc: &[i32; 4], p: &[i32; 12], out_zp: i32, lo: i32, hi: i32, out: &mut [i8; 4]) {
    let vq = Vq {
        zp: vdupq_n_s32(out_zp),
        lo: vdupq_n_s32(lo),
        hi: vdupq_n_s32(hi),
    };
    // SAFETY: `acc` holds four i32 and `p` a whole twelve-word block.
    let word = unsafe { requant_v(vld1q_s32(acc.as_ptr()), p.as_ptr(), &vq) };
    *out = word.to_le_bytes().map(|b| b as i8);
}

/// Requantizes the int32 vector `x` (four consecutive channels) with the
/// table block at `p` (`[mult ×4, left ×4, −right ×4]`): offset and
/// clamped, still int32.
///
/// # Safety
/// `p..p + 12` must be readable.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn requant_i32(x: int32x4_t, p: *const i32, q: &Vq) -> int32x4_t {
    // SAFETY: the caller guarantees 12 readable words.
    let (m, left, right) = unsafe { (vld1q_s32(p), vld1q_s32(p.add(4)), vld1q_s32(p.add(8))) };
    let x = vqrdmulhq_s32(vshlq_s32(x, left), m);
    let fix = vshrq_n_s32::<31>(vandq_s32(x, right));
    let x = vrshlq_s32(vqaddq_s32(x, fix), right);
    let x = vqaddq_s32(x, q.zp);
    vminq_s32(vmaxq_s32(x, q.lo), q.hi)
}

/// [`requant_i32`] narrowed to int8, as the bytes of a little-endian word.
///
/// # Safety
/// `p..p + 12` must be readable.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn requant_v(x: int32x4_t, p: *const i32, q: &Vq) -> u32 {
    // SAFETY: forwarded from the caller.
    let x = unsafe { requant_i32(x, p, q) };
    let n16 = vqmovn_s32(x);
    let n8 = vqmovn_s16(vcombine_s16(n16, n16));
    vget_lane_u32::<0>(vreinterpret_u32_s8(n8))
}

/// The output zero point and activation bounds, broadcast.
#[derive(Clone, Copy)]
pub(super) struct Vq {
    pub(super) zp: int32x4_t,
    pub(super) lo: int32x4_t,
    pub(super) hi: int32x4_t,
}

impl Vq {
    #[inline]
    #[target_feature(enable = "neon")]
    pub(super) fn new(q: &QuantIo) -> Self {
        Vq {
            zp: vdupq_n_s32(q.out_zp),
            lo: vdupq_n_s32(q.act_min),
            hi: vdupq_n_s32(q.act_max),
        }
    }
}

/// Writes the four bytes of `word` to `out[at..at + 4]`.
#[inline(always)]
pub(super) fn put4(out: &mut [i8], at: usize, word: u32) {
    if let Some(o) = out.get_mut(at..at + 4) {
        for (d, b) in o.iter_mut().zip(word.to_le_bytes()) {
            *d = b as i8;
        }
    }
}

/// Copies `src` into `dst` (equal lengths) with 16- and 8-byte vector
/// moves, the last one overlapping the previous instead of a byte tail:
/// receptive-field rows are a few dozen bytes, where a `memcpy` call costs
/// more than the copy.
#[target_feature(enable = "neon")]
pub fn copy_run(dst: &mut [i8], src: &[i8]) {
    let n = dst.len().min(src.len());
    let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
    if n >= 16 {
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: `i + 16 <= n`, within both slices.
            unsafe { vst1q_s8(d.add(i), ld16(s.add(i))) };
            i += 16;
        }
        if i < n {
            // SAFETY: `n >= 16`, so `n − 16..n` is within both.
            unsafe { vst1q_s8(d.add(n - 16), ld16(s.add(n - 16))) };
        }
    } else if n >= 8 {
        // SAFETY: `8 <= n`: `0..8` and `n − 8..n` are within both.
        unsafe {
            vst1_s8(d, ld8(s));
            vst1_s8(d.add(n - 8), ld8(s.add(n - 8)));
        }
    } else {
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = v;
        }
    }
}
