//! AArch64 Advanced SIMD (NEON) kernels for every ARMv8-A core (Cortex-A53
//! and up), plus `SDOT` paths for cores with the ARMv8.2 dot-product
//! extension (Cortex-A55/A76 and later). int8 kernels are bit-exact with
//! the reference; the f32 ones are within the bound stated in
//! [`super::conv_f32`].
//!
//! int8 products, three ways:
//! - rows (a receptive field against filter rows): 16 int8 pairs per step
//!   multiplied into int16 lanes (`SMULL`/`SMULL2`: one int8 product
//!   always fits int16) and folded pairwise into four int32 lanes
//!   (`SADALP`), so the int32 accumulation wraps exactly as the
//!   reference's; the lanes are summed at the end (`ADDP`). The paired
//!   variant adds two products in int16 first (`SMLAL2`), exact when the
//!   filter has no −128. `SDOT` (`asm!`: stable Rust has no dot-product
//!   intrinsics) adds four products per lane in one instruction;
//! - lane per channel, on the compiler's int16 copy of the filter
//!   ([`super::pack_weights_s16`]): `SMLAL`/`SMLAL2` by element multiply
//!   eight channels by one input value, no horizontal sums;
//! - depthwise: per tap, 16 channels' products widened (`SMULL`) and added
//!   into int32 (`SADDW`).
//!
//! `SDOT` is used when the core has it: `is_aarch64_feature_detected!`
//! with the `std` feature (Linux), the `dotprod` target feature otherwise
//! (bare metal, decided at build time); see [`super::dot::has_dotprod`].
//! Each kernel is compiled with exactly the target features its
//! instructions need, so LLVM never introduces `SDOT` into baseline code.
//!
//! Requantization is gemmlowp's double rounding, four channels at a time,
//! reading the compiler's blocked table `[mult ×4, left ×4, −right ×4]`
//! (the same sequence as the Helium epilogue, whose module comment argues
//! each step): `SSHL` by the left shift, `SQRDMULH`, the sign fix-up
//! (`AND`, `SSHR #31`, `SQADD`) and `SRSHL` by the negated right shift,
//! then `SQADD` of the output zero point, `SMAX`/`SMIN` and saturating
//! narrows to int8. Fully connected layers use TFLite's single rounding
//! (64-bit `SMULL`, `SRSHL`, `SQXTN`).

use core::arch::aarch64::*;

use super::super::QuantIo;
use super::REQUANT_BLOCK_WORDS;

/// Loads 16 int8 values at `p`.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn ld16(p: *const i8) -> int8x16_t {
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
unsafe fn ld8(p: *const i8) -> int8x8_t {
    // SAFETY: the caller guarantees 8 readable bytes.
    unsafe { vld1_s8(p) }
}

/// `acc += Σ` of the 16 products `x·w`, folded into four int32 lanes.
#[inline]
#[target_feature(enable = "neon")]
fn mac16(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
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
fn mac16_paired(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    let pairs = vmlal_high_s8(vmull_s8(vget_low_s8(x), vget_low_s8(w)), x, w);
    vpadalq_s16(acc, pairs)
}

/// `acc += Σ` of the 8 products `x·w`, folded into four int32 lanes.
#[inline]
#[target_feature(enable = "neon")]
fn mac8(acc: int32x4_t, x: int8x8_t, w: int8x8_t) -> int32x4_t {
    vpadalq_s16(acc, vmull_s8(x, w))
}

/// The sums of the lanes of four accumulators, as one vector.
#[inline]
#[target_feature(enable = "neon")]
fn reduce4(a0: int32x4_t, a1: int32x4_t, a2: int32x4_t, a3: int32x4_t) -> int32x4_t {
    vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3))
}

/// The four lanes of `v`.
#[inline]
#[target_feature(enable = "neon")]
fn lanes(v: int32x4_t) -> [i32; 4] {
    let mut out = [0i32; 4];
    // SAFETY: `out` holds exactly four i32.
    unsafe { vst1q_s32(out.as_mut_ptr(), v) };
    out
}

/// Shortest of the slices: the length every dot product runs over.
#[inline]
#[target_feature(enable = "neon")]
fn common_len(x: &[i8], w: [&[i8]; 4]) -> usize {
    w.iter().fold(x.len(), |n, r| n.min(r.len()))
}

/// Scalar products of the elements `from..n` (the tail past the vectors).
#[inline]
#[target_feature(enable = "neon")]
fn tail(x: &[i8], w: &[i8], from: usize, n: usize) -> i32 {
    let (Some(x), Some(w)) = (x.get(from..n), w.get(from..n)) else {
        return 0;
    };
    x.iter().zip(w).fold(0i32, |a, (&x, &w)| {
        a.wrapping_add((x as i32).wrapping_mul(w as i32))
    })
}

/// `Σ x·w`, one input row against one weight row.
#[inline]
#[target_feature(enable = "neon")]
pub fn dot_s8(x: &[i8], w: &[i8]) -> i32 {
    let n = x.len().min(w.len());
    let mut acc = vdupq_n_s32(0);
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: `i + 16 <= n`, and `n` is at most either slice's length.
        let (xv, wv) = unsafe { (ld16(x.as_ptr().add(i)), ld16(w.as_ptr().add(i))) };
        acc = mac16(acc, xv, wv);
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: as above, for 8 bytes.
        let (xv, wv) = unsafe { (ld8(x.as_ptr().add(i)), ld8(w.as_ptr().add(i))) };
        acc = mac8(acc, xv, wv);
        i += 8;
    }
    vaddvq_s32(acc).wrapping_add(tail(x, w, i, n))
}

/// Stamps out [`dot4_s8`]-shaped functions for one multiply-add sequence,
/// each compiled with exactly the target features it needs.
macro_rules! dot4_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $mac:ident) => {
        $(#[$doc])*
        #[inline]
        #[target_feature(enable = $features)]
        pub fn $name(x: &[i8], w0: &[i8], w1: &[i8], w2: &[i8], w3: &[i8]) -> [i32; 4] {
            let w = [w0, w1, w2, w3];
            let n = common_len(x, w);
            let mut a = [vdupq_n_s32(0); 4];
            let mut i = 0;
            while i + 16 <= n {
                // SAFETY: `i + 16 <= n <= len` of `x` and of every row.
                let xv = unsafe { ld16(x.as_ptr().add(i)) };
                for j in 0..4 {
                    // SAFETY: as above.
                    let wv = unsafe { ld16(w[j].as_ptr().add(i)) };
                    a[j] = $mac(a[j], xv, wv);
                }
                i += 16;
            }
            if i + 8 <= n {
                // SAFETY: `i + 8 <= n`, as above.
                let xv = unsafe { ld8(x.as_ptr().add(i)) };
                for j in 0..4 {
                    // SAFETY: as above.
                    let wv = unsafe { ld8(w[j].as_ptr().add(i)) };
                    a[j] = mac8(a[j], xv, wv);
                }
                i += 8;
            }
            let mut out = lanes(reduce4(a[0], a[1], a[2], a[3]));
            for (o, r) in out.iter_mut().zip(w) {
                *o = o.wrapping_add(tail(x, r, i, n));
            }
            out
        }
    };
}

dot4_kernel!(
    /// `Σ x·w_j` for four weight rows, the input read once.
    dot4_s8, "neon", mac16
);
dot4_kernel!(
    /// [`dot4_s8`] with `SDOT`. Call only when [`super::dot::has_dotprod`].
    dot4_s8_dotprod, "neon,dotprod", sdot
);

/// Stamps out [`dot4x4_s8`]-shaped functions: four input rows times four
/// weight rows, sixteen accumulators in vector registers, every vector
/// loaded once per 16 bytes.
macro_rules! dot4x4_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $mac:ident) => {
        $(#[$doc])*
        #[inline]
        #[target_feature(enable = $features)]
        pub fn $name(x: [&[i8]; 4], w: [&[i8]; 4]) -> [[i32; 4]; 4] {
            let n = x.iter().fold(common_len(x[0], w), |m, r| m.min(r.len()));
            let mut a = [[vdupq_n_s32(0); 4]; 4];
            let mut i = 0;
            while i + 16 <= n {
                let mut xv = [vdupq_n_s8(0); 4];
                for (v, r) in xv.iter_mut().zip(&x) {
                    // SAFETY: `i + 16 <= n <=` every row's length.
                    *v = unsafe { ld16(r.as_ptr().add(i)) };
                }
                for j in 0..4 {
                    // SAFETY: as above.
                    let wv = unsafe { ld16(w[j].as_ptr().add(i)) };
                    for (acc, &v) in a.iter_mut().zip(&xv) {
                        acc[j] = $mac(acc[j], v, wv);
                    }
                }
                i += 16;
            }
            if i + 8 <= n {
                let mut xv = [vdup_n_s8(0); 4];
                for (v, r) in xv.iter_mut().zip(&x) {
                    // SAFETY: `i + 8 <= n`, as above.
                    *v = unsafe { ld8(r.as_ptr().add(i)) };
                }
                for j in 0..4 {
                    // SAFETY: as above.
                    let wv = unsafe { ld8(w[j].as_ptr().add(i)) };
                    for (acc, &v) in a.iter_mut().zip(&xv) {
                        acc[j] = mac8(acc[j], v, wv);
                    }
                }
                i += 8;
            }
            let mut out = [[0i32; 4]; 4];
            for ((o, acc), r) in out.iter_mut().zip(&a).zip(&x) {
                *o = lanes(reduce4(acc[0], acc[1], acc[2], acc[3]));
                for (oj, wj) in o.iter_mut().zip(w) {
                    *oj = oj.wrapping_add(tail(r, wj, i, n));
                }
            }
            out
        }
    };
}

dot4x4_kernel!(
    /// `Σ x_p·w_j` for four input rows and four weight rows.
    dot4x4_s8, "neon", mac16
);
dot4x4_kernel!(
    /// [`dot4x4_s8`] with `SDOT`. Call only when [`super::dot::has_dotprod`].
    dot4x4_s8_dotprod, "neon,dotprod", sdot
);
dot4x4_kernel!(
    /// [`dot4x4_s8`] with two products per int16 lane (`SMULL` +
    /// `SMLAL2`): exact only when no weight is −128.
    dot4x4_s8_paired, "neon", mac16_paired
);

/// `SDOT`: `acc` lane `l += Σ_{k<4} x[4l+k]·w[4l+k]`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
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

/// Depthwise taps for 16 channels: `acc[c] += Σ_t rows[t][c0 + c] ·
/// w_t[c0 + c]`, products widened to int16 (`SMULL`/`SMULL2`, exact) and
/// added into four int32 vectors (`SADDW`/`SADDW2`).
#[inline(never)]
#[target_feature(enable = "neon")]
pub fn mac_taps16<'w>(
    acc: &mut [i32; 16],
    rows: &[&[i8]],
    w_rows: impl Iterator<Item = &'w [i8]>,
    c0: usize,
) {
    // SAFETY (loads/stores of `acc`): `acc` is 16 i32 = four vectors.
    let mut a = unsafe {
        [
            vld1q_s32(acc.as_ptr()),
            vld1q_s32(acc.as_ptr().add(4)),
            vld1q_s32(acc.as_ptr().add(8)),
            vld1q_s32(acc.as_ptr().add(12)),
        ]
    };
    for (r, wr) in rows.iter().zip(w_rows) {
        let (Some(xr), Some(wr)) = (r.get(c0..c0 + 16), wr.get(c0..c0 + 16)) else {
            continue;
        };
        // SAFETY: both slices are exactly 16 bytes long.
        let (xv, wv) = unsafe { (ld16(xr.as_ptr()), ld16(wr.as_ptr())) };
        let lo = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
        let hi = vmull_high_s8(xv, wv);
        a[0] = vaddw_s16(a[0], vget_low_s16(lo));
        a[1] = vaddw_high_s16(a[1], lo);
        a[2] = vaddw_s16(a[2], vget_low_s16(hi));
        a[3] = vaddw_high_s16(a[3], hi);
    }
    // SAFETY: as above.
    unsafe {
        vst1q_s32(acc.as_mut_ptr(), a[0]);
        vst1q_s32(acc.as_mut_ptr().add(4), a[1]);
        vst1q_s32(acc.as_mut_ptr().add(8), a[2]);
        vst1q_s32(acc.as_mut_ptr().add(12), a[3]);
    }
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
unsafe fn requant_i32(x: int32x4_t, p: *const i32, q: &Vq) -> int32x4_t {
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
unsafe fn requant_v(x: int32x4_t, p: *const i32, q: &Vq) -> u32 {
    // SAFETY: forwarded from the caller.
    let x = unsafe { requant_i32(x, p, q) };
    let n16 = vqmovn_s32(x);
    let n8 = vqmovn_s16(vcombine_s16(n16, n16));
    vget_lane_u32::<0>(vreinterpret_u32_s8(n8))
}

/// The output zero point and activation bounds, broadcast.
#[derive(Clone, Copy)]
struct Vq {
    zp: int32x4_t,
    lo: int32x4_t,
    hi: int32x4_t,
}

impl Vq {
    #[inline]
    #[target_feature(enable = "neon")]
    fn new(q: &QuantIo) -> Self {
        Vq {
            zp: vdupq_n_s32(q.out_zp),
            lo: vdupq_n_s32(q.act_min),
            hi: vdupq_n_s32(q.act_max),
        }
    }
}

/// Writes the four bytes of `word` to `out[at..at + 4]`.
#[inline(always)]
fn put4(out: &mut [i8], at: usize, word: u32) {
    if let Some(o) = out.get_mut(at..at + 4) {
        for (d, b) in o.iter_mut().zip(word.to_le_bytes()) {
            *d = b as i8;
        }
    }
}

/// Stamps out the fused matrix kernel for one multiply-add instruction
/// sequence (`SMULL`+`SADALP` or `SDOT`): each copy compiled with exactly
/// the target features its instructions need, so LLVM never introduces
/// `SDOT` into the baseline kernel.
macro_rules! rows_kernel {
    ($name:ident, $features:literal, $mac:ident) => {
        /// `P` output pixels' receptive fields `p[i]` times every filter
        /// row of `w` (`[Co, k]`): folded bias, blocked requantization and
        /// int8 store into `out[i]`, four channels per step, all in vector
        /// registers; each weight vector is loaded once for the `P`
        /// pixels. The products run over `len >= k` bytes: bytes `k..len`
        /// of every field must be zero (they meet the start of the next
        /// filter row). Returns how many output channels it wrote (the
        /// whole blocks of four the table covers whose rows can be read to
        /// `len`); the caller finishes the rest.
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $features)]
        pub fn $name<const P: usize>(
            p: [&[i8]; P],
            w: &[i8],
            k: usize,
            len: usize,
            fb: &[i32],
            blocks: &[i32],
            q: &QuantIo,
            out: [&mut [i8]; P],
        ) -> usize {
            if k == 0 || len < k || p.iter().any(|f| f.len() < len) {
                return 0;
            }
            let co = out.iter().fold(fb.len(), |n, o| n.min(o.len()));
            let nblk = (co / 4)
                .min(blocks.len() / REQUANT_BLOCK_WORDS)
                .min(w.len() / (4 * k));
            let vq = Vq::new(q);
            let mut out = out;
            for blk in 0..nblk {
                let oc = 4 * blk;
                // Block `blk` reads rows `oc..oc + 4`; the last one for
                // `len` bytes if `w` goes that far (all but the last block
                // of a padded field), else for its own `k`.
                let len = if (oc + 3) * k + len <= w.len() {
                    len
                } else {
                    k
                };
                // SAFETY: rows `oc..oc + 4` lie inside `w` (`nblk·4k <=
                // w.len()`), the last readable for `len` bytes (above).
                let r = unsafe {
                    [
                        w.as_ptr().add(oc * k),
                        w.as_ptr().add((oc + 1) * k),
                        w.as_ptr().add((oc + 2) * k),
                        w.as_ptr().add((oc + 3) * k),
                    ]
                };
                let mut a = [[vdupq_n_s32(0); 4]; P];
                let mut i = 0;
                while i + 16 <= len {
                    let mut x = [vdupq_n_s8(0); P];
                    for (xv, f) in x.iter_mut().zip(&p) {
                        // SAFETY: `i + 16 <= len <=` every field's length.
                        *xv = unsafe { ld16(f.as_ptr().add(i)) };
                    }
                    for j in 0..4 {
                        // SAFETY: `i + 16 <= len`, readable from each row.
                        let wv = unsafe { ld16(r[j].add(i)) };
                        for (acc, &xv) in a.iter_mut().zip(&x) {
                            acc[j] = $mac(acc[j], xv, wv);
                        }
                    }
                    i += 16;
                }
                if i + 8 <= len {
                    let mut x = [vdup_n_s8(0); P];
                    for (xv, f) in x.iter_mut().zip(&p) {
                        // SAFETY: `i + 8 <= len`, as above.
                        *xv = unsafe { ld8(f.as_ptr().add(i)) };
                    }
                    for j in 0..4 {
                        // SAFETY: as above.
                        let wv = unsafe { ld8(r[j].add(i)) };
                        for (acc, &xv) in a.iter_mut().zip(&x) {
                            acc[j] = mac8(acc[j], xv, wv);
                        }
                    }
                    i += 8;
                }
                // SAFETY: `oc + 4 <= co <= fb.len()`, and block `blk` of
                // the table is whole (`nblk <= blocks.len() / 12`).
                let (bias, params) = unsafe {
                    (
                        vld1q_s32(fb.as_ptr().add(oc)),
                        blocks.as_ptr().add(blk * REQUANT_BLOCK_WORDS),
                    )
                };
                for ((acc, f), o) in a.iter().zip(&p).zip(out.iter_mut()) {
                    let mut s = vaddq_s32(reduce4(acc[0], acc[1], acc[2], acc[3]), bias);
                    if i < len {
                        let mut t = [0i32; 4];
                        for (tj, rj) in t.iter_mut().zip(r) {
                            // SAFETY: each row can be read for `len` bytes.
                            let row = unsafe { core::slice::from_raw_parts(rj, len) };
                            *tj = tail(f, row, i, len);
                        }
                        // SAFETY: `t` holds four i32.
                        s = vaddq_s32(s, unsafe { vld1q_s32(t.as_ptr()) });
                    }
                    // SAFETY: `params` points at a whole table block.
                    let y = unsafe { requant_v(s, params, &vq) };
                    put4(o, oc, y);
                }
            }
            4 * nblk
        }
    };
}

rows_kernel!(rows_times_filters, "neon", mac16);
rows_kernel!(rows_times_filters_paired, "neon", mac16_paired);
rows_kernel!(rows_times_filters_dotprod, "neon,dotprod", sdot);

/// One output pixel of a depthwise convolution (multiplier 1) over
/// `c` channels: `rows[t]` is tap `t`'s input row (length ≥ `c`), `w` the
/// channel-last filter `[taps, c]`. Channels in blocks of 16 (products
/// widened to int16 by `SMULL`/`SMULL2`, added into int32 by
/// `SADDW`/`SADDW2`), folded bias, blocked requantization, int8 store.
/// Returns how many channels it wrote (whole blocks of 16 the table
/// covers); the caller finishes the rest.
#[target_feature(enable = "neon")]
pub fn depthwise_pixel(
    rows: &[&[i8]],
    w: &[i8],
    c: usize,
    fb: &[i32],
    blocks: &[i32],
    q: &QuantIo,
    out: &mut [i8],
) -> usize {
    let taps = rows.len();
    if rows.iter().any(|r| r.len() < c) || w.len() < taps.saturating_mul(c) {
        return 0;
    }
    // Channels this pass may write (`c` stays the weight-row stride).
    let end = c
        .min(out.len())
        .min(fb.len())
        .min(blocks.len() / REQUANT_BLOCK_WORDS * 4);
    // SAFETY: every row holds at least `c >= end` bytes, `w` at least
    // `taps·c`, `fb`, the table and `out` at least `end` channels (above).
    unsafe {
        depthwise_channels(
            |t| rows[t].as_ptr(),
            taps,
            w.as_ptr(),
            c,
            end,
            fb.as_ptr(),
            blocks.as_ptr(),
            &Vq::new(q),
            out.as_mut_ptr(),
        )
    }
}

/// Channels `0..end` of one depthwise output pixel, in blocks of 16 then
/// one of 8: tap `t` reads its input at `tap(t)` and its weights at `w + t·c`;
/// products widened to int16 (`SMULL`/`SMULL2`) and added into int32
/// (`SADDW`/`SADDW2`) on top of the folded bias `fb`, then the blocked
/// requantization and one store per block. Returns the channels written.
///
/// # Safety
/// For every `t < taps`, `tap(t)..tap(t) + end` is readable; `w..w + taps·c`
/// is readable with `end <= c`; `fb` holds `end` values and `blocks`
/// `end / 4` whole table blocks; `out..out + end` is writable.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "neon")]
unsafe fn depthwise_channels(
    tap: impl Fn(usize) -> *const i8,
    taps: usize,
    w: *const i8,
    c: usize,
    end: usize,
    fb: *const i32,
    blocks: *const i32,
    vq: &Vq,
    out: *mut i8,
) -> usize {
    let mut c0 = 0;
    while c0 + 16 <= end {
        // SAFETY (this block): every access is within the ranges the
        // caller guarantees, since `c0 + 16 <= end <= c`.
        unsafe {
            let b = fb.add(c0);
            let mut a = [
                vld1q_s32(b),
                vld1q_s32(b.add(4)),
                vld1q_s32(b.add(8)),
                vld1q_s32(b.add(12)),
            ];
            for t in 0..taps {
                let (xv, wv) = (ld16(tap(t).add(c0)), ld16(w.add(t * c + c0)));
                let lo = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
                let hi = vmull_high_s8(xv, wv);
                a[0] = vaddw_s16(a[0], vget_low_s16(lo));
                a[1] = vaddw_high_s16(a[1], lo);
                a[2] = vaddw_s16(a[2], vget_low_s16(hi));
                a[3] = vaddw_high_s16(a[3], hi);
            }
            let p = blocks.add(c0 / 4 * REQUANT_BLOCK_WORDS);
            let r = [
                requant_i32(a[0], p, vq),
                requant_i32(a[1], p.add(REQUANT_BLOCK_WORDS), vq),
                requant_i32(a[2], p.add(2 * REQUANT_BLOCK_WORDS), vq),
                requant_i32(a[3], p.add(3 * REQUANT_BLOCK_WORDS), vq),
            ];
            let lo = vqmovn_high_s32(vqmovn_s32(r[0]), r[1]);
            let hi = vqmovn_high_s32(vqmovn_s32(r[2]), r[3]);
            vst1q_s8(out.add(c0), vqmovn_high_s16(vqmovn_s16(lo), hi));
        }
        c0 += 16;
    }
    if c0 + 8 <= end {
        // SAFETY (this block): as above, for `c0 + 8 <= end`.
        unsafe {
            let b = fb.add(c0);
            let mut a = [vld1q_s32(b), vld1q_s32(b.add(4))];
            for t in 0..taps {
                let prod = vmull_s8(ld8(tap(t).add(c0)), ld8(w.add(t * c + c0)));
                a[0] = vaddw_s16(a[0], vget_low_s16(prod));
                a[1] = vaddw_high_s16(a[1], prod);
            }
            let p = blocks.add(c0 / 4 * REQUANT_BLOCK_WORDS);
            let r = [
                requant_i32(a[0], p, vq),
                requant_i32(a[1], p.add(REQUANT_BLOCK_WORDS), vq),
            ];
            vst1_s8(
                out.add(c0),
                vqmovn_s16(vqmovn_high_s32(vqmovn_s32(r[0]), r[1])),
            );
        }
        c0 += 8;
    }
    c0
}

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
    let vq = Vq::new(&super::super::QuantIo {
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

/// One input element (`lane` of `x`) times eight channels' packed weights
/// `w`, added to the two accumulators of those channels (`SMLAL`/`SMLAL2`
/// by element).
macro_rules! mla_lane {
    ($lo:expr, $hi:expr, $w:expr, $x:expr, $lane:literal) => {
        $lo = vmlal_laneq_s16::<$lane>($lo, vget_low_s16($w), $x);
        $hi = vmlal_high_laneq_s16::<$lane>($hi, $w, $x);
    };
}

/// `P` output pixels' receptive fields (at least `k` bytes each) times the
/// filter packed by [`super::pack_weights_s16`]: eight output channels per
/// block, accumulated lane-per-channel (`SMLAL` by element: no horizontal
/// sums), then folded bias, blocked requantization and one 8-byte store
/// per pixel. Returns how many output channels it wrote (the whole blocks
/// of eight the packed filter and the table cover); the caller finishes
/// the rest.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
pub fn packed_times_filters<const P: usize>(
    p: [&[i8]; P],
    packed: &[i16],
    k: usize,
    fb: &[i32],
    blocks: &[i32],
    q: &QuantIo,
    out: [&mut [i8]; P],
) -> usize {
    if k == 0 || p.iter().any(|f| f.len() < k) {
        return 0;
    }
    let co = out.iter().fold(fb.len(), |n, o| n.min(o.len()));
    let nblk = (co / 8)
        .min(blocks.len() / (2 * REQUANT_BLOCK_WORDS))
        .min(packed.len() / (8 * k));
    let vq = Vq::new(q);
    let mut out = out;
    for blk in 0..nblk {
        let oc = 8 * blk;
        // SAFETY: block `blk` of the packed filter is `8k` elements inside
        // it (`nblk <= packed.len() / 8k`).
        let wb = unsafe { packed.as_ptr().add(blk * 8 * k) };
        let mut lo = [vdupq_n_s32(0); P];
        let mut hi = [vdupq_n_s32(0); P];
        let mut i = 0;
        while i + 8 <= k {
            let mut x = [vdupq_n_s16(0); P];
            for (xv, f) in x.iter_mut().zip(&p) {
                // SAFETY: `i + 8 <= k <=` every field's length.
                *xv = vmovl_s8(unsafe { ld8(f.as_ptr().add(i)) });
            }
            // SAFETY: elements `(i + j)·8 .. + 8` for `j < 8` lie in the
            // block (`i + 8 <= k`).
            let w = unsafe {
                let b = wb.add(i * 8);
                [
                    vld1q_s16(b),
                    vld1q_s16(b.add(8)),
                    vld1q_s16(b.add(16)),
                    vld1q_s16(b.add(24)),
                    vld1q_s16(b.add(32)),
                    vld1q_s16(b.add(40)),
                    vld1q_s16(b.add(48)),
                    vld1q_s16(b.add(56)),
                ]
            };
            for ((l, h), &xv) in lo.iter_mut().zip(hi.iter_mut()).zip(&x) {
                mla_lane!(*l, *h, w[0], xv, 0);
                mla_lane!(*l, *h, w[1], xv, 1);
                mla_lane!(*l, *h, w[2], xv, 2);
                mla_lane!(*l, *h, w[3], xv, 3);
                mla_lane!(*l, *h, w[4], xv, 4);
                mla_lane!(*l, *h, w[5], xv, 5);
                mla_lane!(*l, *h, w[6], xv, 6);
                mla_lane!(*l, *h, w[7], xv, 7);
            }
            i += 8;
        }
        while i < k {
            // SAFETY: element `i·8 .. + 8` lies in the block (`i < k`).
            let w = unsafe { vld1q_s16(wb.add(i * 8)) };
            for ((l, h), f) in lo.iter_mut().zip(hi.iter_mut()).zip(&p) {
                let xv = f.get(i).map_or(0, |&v| v as i16);
                *l = vmlal_n_s16(*l, vget_low_s16(w), xv);
                *h = vmlal_high_n_s16(*h, w, xv);
            }
            i += 1;
        }
        // SAFETY: `oc + 8 <= co <= fb.len()`; table blocks `oc / 4` and
        // `oc / 4 + 1` are whole (`nblk <= blocks.len() / 24`).
        let (b0, b1, p0, p1) = unsafe {
            let p0 = blocks.as_ptr().add(oc / 4 * REQUANT_BLOCK_WORDS);
            (
                vld1q_s32(fb.as_ptr().add(oc)),
                vld1q_s32(fb.as_ptr().add(oc + 4)),
                p0,
                p0.add(REQUANT_BLOCK_WORDS),
            )
        };
        for ((l, h), o) in lo.iter().zip(&hi).zip(out.iter_mut()) {
            // SAFETY: `p0`, `p1` point at whole table blocks (above).
            let (r0, r1) = unsafe {
                (
                    requant_i32(vaddq_s32(*l, b0), p0, &vq),
                    requant_i32(vaddq_s32(*h, b1), p1, &vq),
                )
            };
            let y = vqmovn_s16(vqmovn_high_s32(vqmovn_s32(r0), r1));
            if let Some(d) = o.get_mut(oc..oc + 8) {
                // SAFETY: `d` is exactly 8 bytes.
                unsafe { vst1_s8(d.as_mut_ptr(), y) };
            }
        }
    }
    8 * nblk
}

/// `P` f32 rows (at least `k` values each) times every filter row of `w`
/// (`[Co, k]`): four partial sums per row and channel (`FMLA`), added
/// pairwise, then bias and clamp (`FMAXNM`/`FMINNM`, as `f32::max`/`min`).
/// Four channels per step; returns how many channels it wrote (the whole
/// blocks of four), the caller finishes the rest.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
pub fn rows_times_filters_f32<const P: usize>(
    p: [&[f32]; P],
    w: &[f32],
    k: usize,
    bias: Option<&[f32]>,
    lo: f32,
    hi: f32,
    out: [&mut [f32]; P],
) -> usize {
    if p.iter().any(|f| f.len() < k) {
        return 0;
    }
    let co = out
        .iter()
        .fold(w.len().checked_div(k).unwrap_or(0), |n, o| n.min(o.len()));
    let co = bias.map_or(co, |b| co.min(b.len()));
    let nblk = co / 4;
    let (vlo, vhi) = (vdupq_n_f32(lo), vdupq_n_f32(hi));
    let mut out = out;
    for blk in 0..nblk {
        let oc = 4 * blk;
        // SAFETY: rows `oc..oc + 4` lie inside `w` (`co <= w.len() / k`).
        let r = unsafe {
            [
                w.as_ptr().add(oc * k),
                w.as_ptr().add((oc + 1) * k),
                w.as_ptr().add((oc + 2) * k),
                w.as_ptr().add((oc + 3) * k),
            ]
        };
        let mut a = [[vdupq_n_f32(0.0); 4]; P];
        let mut i = 0;
        while i + 4 <= k {
            let mut x = [vdupq_n_f32(0.0); P];
            for (xv, f) in x.iter_mut().zip(&p) {
                // SAFETY: `i + 4 <= k <=` every row's length.
                *xv = unsafe { vld1q_f32(f.as_ptr().add(i)) };
            }
            for j in 0..4 {
                // SAFETY: `i + 4 <= k`, the filter row length.
                let wv = unsafe { vld1q_f32(r[j].add(i)) };
                for (acc, &xv) in a.iter_mut().zip(&x) {
                    acc[j] = vfmaq_f32(acc[j], xv, wv);
                }
            }
            i += 4;
        }
        let b = match bias {
            // SAFETY: `oc + 4 <= co <= b.len()`.
            Some(b) => unsafe { vld1q_f32(b.as_ptr().add(oc)) },
            None => vdupq_n_f32(0.0),
        };
        for ((acc, f), o) in a.iter().zip(&p).zip(out.iter_mut()) {
            let mut s = vpaddq_f32(vpaddq_f32(acc[0], acc[1]), vpaddq_f32(acc[2], acc[3]));
            if i < k {
                let mut t = [0f32; 4];
                for (tj, rj) in t.iter_mut().zip(r) {
                    // SAFETY: each row has `k` elements.
                    let row = unsafe { core::slice::from_raw_parts(rj, k) };
                    for q in i..k {
                        *tj += f[q] * row[q];
                    }
                }
                // SAFETY: `t` holds four f32.
                s = vaddq_f32(s, unsafe { vld1q_f32(t.as_ptr()) });
            }
            let s = vminnmq_f32(vmaxnmq_f32(vaddq_f32(s, b), vlo), vhi);
            if let Some(d) = o.get_mut(oc..oc + 4) {
                // SAFETY: `d` is exactly four f32.
                unsafe { vst1q_f32(d.as_mut_ptr(), s) };
            }
        }
    }
    4 * nblk
}

/// One output pixel of an f32 depthwise convolution: tap `t` reads input
/// channels at `x[at[t]..]` and weights at `w[wt[t]..]`; four channels per
/// vector, one `FMLA` per tap in order, bias last, clamp. Returns how many
/// channels it wrote (whole blocks of four), the caller finishes the rest.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
pub fn depthwise_pixel_f32(
    x: &[f32],
    at: &[usize],
    w: &[f32],
    wt: &[usize],
    c: usize,
    bias: Option<&[f32]>,
    lo: f32,
    hi: f32,
    out: &mut [f32],
) -> usize {
    let fits = |base: &[usize], len: usize| {
        base.iter()
            .all(|&s| s.checked_add(c).is_some_and(|e| e <= len))
    };
    if at.len() != wt.len() || !fits(at, x.len()) || !fits(wt, w.len()) {
        return 0;
    }
    let end = bias.map_or(c, |b| c.min(b.len())).min(out.len());
    let (vlo, vhi) = (vdupq_n_f32(lo), vdupq_n_f32(hi));
    let mut c0 = 0;
    while c0 + 4 <= end {
        let mut acc = vdupq_n_f32(0.0);
        for (&xa, &wa) in at.iter().zip(wt) {
            // SAFETY: `xa + c <= x.len()`, `wa + c <= w.len()` (checked
            // above) and `c0 + 4 <= c`.
            let (xv, wv) = unsafe {
                (
                    vld1q_f32(x.as_ptr().add(xa + c0)),
                    vld1q_f32(w.as_ptr().add(wa + c0)),
                )
            };
            acc = vfmaq_f32(acc, xv, wv);
        }
        if let Some(b) = bias {
            // SAFETY: `c0 + 4 <= end <= b.len()`.
            acc = vaddq_f32(acc, unsafe { vld1q_f32(b.as_ptr().add(c0)) });
        }
        let v = vminnmq_f32(vmaxnmq_f32(acc, vlo), vhi);
        // SAFETY: `c0 + 4 <= end <= out.len()`.
        unsafe { vst1q_f32(out.as_mut_ptr().add(c0), v) };
        c0 += 4;
    }
    c0
}

/// A run of `count` output pixels of a depthwise convolution (depth
/// multiplier one) whose windows lie wholly inside the input: pixel `j`'s tap `t` reads
/// channels at `x[base + j·step + offs[t]..]`, its weights at `w[t·c..]`.
/// All `c` channels (a multiple of 8 the table covers) in blocks of 16,
/// then 8, as [`depthwise_pixel`]; outputs to `out[j·c..]`. Returns the
/// pixels written: `count`, or 0 when the arguments do not fit (the
/// caller then takes the per-pixel path).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
pub fn depthwise_row(
    x: &[i8],
    base: usize,
    step: usize,
    offs: &[usize],
    count: usize,
    w: &[i8],
    c: usize,
    fb: &[i32],
    blocks: &[i32],
    q: &QuantIo,
    out: &mut [i8],
) -> usize {
    let taps = offs.len();
    let last = offs.iter().copied().max().unwrap_or(0);
    let reach = count
        .checked_sub(1)
        .and_then(|n| n.checked_mul(step))
        .and_then(|v| v.checked_add(base))
        .and_then(|v| v.checked_add(last))
        .and_then(|v| v.checked_add(c));
    let fits = count > 0
        && c.is_multiple_of(8)
        && reach.is_some_and(|r| r <= x.len())
        && count.checked_mul(c).is_some_and(|n| n <= out.len())
        && taps.checked_mul(c).is_some_and(|n| n <= w.len())
        && c <= fb.len()
        && c / 4 * REQUANT_BLOCK_WORDS <= blocks.len();
    if !fits {
        return 0;
    }
    let vq = Vq::new(q);
    for j in 0..count {
        // SAFETY: pixel `j`'s taps read `x[base + j·step + offs[t]..][..c]`,
        // within `reach <= x.len()`; `w` holds `taps·c`, `fb` and the table
        // `c` channels, `out[j·c..][..c]` lies within `count·c <=
        // out.len()` (all checked above).
        unsafe {
            let xp = x.as_ptr().add(base + j * step);
            depthwise_channels(
                |t| xp.add(offs[t]),
                taps,
                w.as_ptr(),
                c,
                c,
                fb.as_ptr(),
                blocks.as_ptr(),
                &vq,
                out.as_mut_ptr().add(j * c),
            );
        }
    }
    count
}

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
/// dot products from [`super::dot::dot4_s8`], bias, requantization, zero
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
        let acc = super::dot::dot4_s8(&x[..k], row(oc), row(oc + 1), row(oc + 2), row(oc + 3));
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
