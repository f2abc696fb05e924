//! Convolution (and fully connected) rows: `P` receptive fields against
//! the filter rows with requantization in vector registers
//! ([`rows_times_filters`] and its `SDOT` and paired forms), and the
//! lane-per-channel kernel on the compiler's int16 filter
//! ([`packed_times_filters`]); the generic wrappers that add the
//! epilogue's rest ([`pixels_times_filters`],
//! [`packed_pixels_times_filters`]) and the convolution loop ([`run`]).

use super::super::dot::{dot_s8, has_dotprod};
use super::super::epilogue::Epilogue;
use super::super::im2col::{field, is_pointwise};
use super::super::packed_weights_len;
use super::super::rows::row_times_filters;
use super::shared::{
    ld16, ld8, mac16, mac16_paired, mac8, put4, reduce4, requant_i32, requant_v, sdot, tail, Vq,
};
use crate::error::{Error, Result};
use crate::kernels::opt::REQUANT_BLOCK_WORDS;
use crate::kernels::QuantIo;
use crate::kernels::{Shape4, Window};
use core::arch::aarch64::*;

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
/// filter packed by [`super::super::pack_weights_s16`]: eight output channels per
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

/// [`row_times_filters`] for `P` input rows at once (`P` output pixels):
/// each filter vector is loaded once for all of them. The rows hold at
/// least `len >= k` bytes, zeros past `k`: the vector kernel multiplies
/// `len` bytes (reading past the end of a filter row, times zero) where
/// the filter allows it.
///
/// `paired`: the filter holds no −128, so the `SMULL`/`SMLAL2` pairing is
/// exact (cores without `SDOT`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pixels_times_filters<E: Epilogue, const P: usize>(
    p: [&[i8]; P],
    w: &[i8],
    k: usize,
    len: usize,
    fb: &[i32],
    e: E,
    out: [&mut [i8]; P],
    paired: bool,
) {
    let co = out.iter().map(|o| o.len()).min().unwrap_or(0);
    let mut out = out;
    let mut oc = 0;
    if let (Some((blocks, q)), true) = (e.blocks(), k > 0) {
        let o = out.each_mut().map(|o| &mut **o);
        // SAFETY: NEON is enabled for the whole build (this module is only compiled then) and
        // `SDOT` only after `has_dotprod` found it on this core.
        oc = unsafe {
            if has_dotprod() {
                rows_times_filters_dotprod(p, w, k, len, fb, blocks, q, o)
            } else if paired {
                rows_times_filters_paired(p, w, k, len, fb, blocks, q, o)
            } else {
                rows_times_filters(p, w, k, len, fb, blocks, q, o)
            }
        };
    }
    for (f, o) in p.iter().zip(out.iter_mut()) {
        let f = &f[..k.min(f.len())];
        if oc == 0 {
            row_times_filters(f, w, k, fb, e, o);
            continue;
        }
        for c in oc..co {
            let r = &w[c * k..(c + 1) * k];
            o[c] = e.apply(dot_s8(f, r).wrapping_add(fb[c]), c);
        }
    }
}

/// [`pixels_times_filters`] with the filter packed by [`crate::kernels::opt::pack_weights_s16`]
/// (lanes are output channels: no horizontal sums). Channels the packed
/// kernel does not cover are computed from `w`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn packed_pixels_times_filters<E: Epilogue, const P: usize>(
    p: [&[i8]; P],
    packed: &[i16],
    w: &[i8],
    k: usize,
    fb: &[i32],
    e: E,
    out: [&mut [i8]; P],
) {
    let co = out.iter().map(|o| o.len()).min().unwrap_or(0);
    let mut out = out;
    let done = match e.blocks() {
        Some((blocks, q)) => {
            let o = out.each_mut().map(|o| &mut **o);
            // SAFETY: NEON is enabled for the whole build (this module is only compiled then).
            unsafe { packed_times_filters(p, packed, k, fb, blocks, q, o) }
        }
        None => 0,
    };
    if done == 0 {
        return pixels_times_filters(p, w, k, k, fb, e, out, false);
    }
    for (f, o) in p.iter().zip(out.iter_mut()) {
        let f = &f[..k.min(f.len())];
        for c in done..co {
            let r = &w[c * k..(c + 1) * k];
            o[c] = e.apply(dot_s8(f, r).wrapping_add(fb[c]), c);
        }
    }
}

/// Longest receptive field the packed lane-per-channel kernel takes when
/// a row kernel could (`SDOT`, or the paired `SMLAL2` one); measured on the
/// MLPerf Tiny models, shorter rows favour the packed kernel.
const PACKED_MAX_K: usize = 32;

/// Without `SDOT`: rows longer than this go to the paired row kernel
/// (when the filter allows it), shorter ones to the packed kernel.
const PAIRED_MIN_K: usize = 128;

/// The NEON convolution: four output pixels per pass over the filters
/// (each weight vector loaded once for all four). Gathered fields are
/// stored `kp` bytes apart, `k` rounded up to 8 when four such slots fit
/// the scratch, with zeros past `k`: the vector loop then runs
/// to `kp` with no scalar tail, the padding multiplying whatever follows
/// each filter row by zero.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<E: Epilogue>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    packed: &[i16],
    folded_bias: &[i32],
    e: E,
    zp: i8,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    let co = ws.n;
    let k = ws.h * ws.w * xs.c;
    let npix = ys.n * ys.h * ys.w;
    let pointwise = is_pointwise(ws, win);
    let kp = if pointwise {
        k
    } else {
        [8, 1]
            .iter()
            .map(|&m| k.next_multiple_of(m))
            .find(|&kp| 4 * kp <= scratch.len())
            .unwrap_or(k)
    };
    if !pointwise && scratch.len() < k {
        return Err(Error::ShapeMismatch("conv: scratch too small"));
    }
    let mut s = scratch.chunks_exact_mut(kp.max(1));
    let mut slot = [s.next(), s.next(), s.next(), s.next()];
    for t in slot.iter_mut().flatten() {
        t[k.min(kp)..].fill(0);
    }
    // The packed filter (lanes are channels) where the compiler stored one,
    // unless the core has `SDOT` and the rows are long enough for its
    // row kernel's horizontal sums to pay off (measured on the MLPerf
    // Tiny models: short rows favour the packed kernel either way).
    let dotprod = has_dotprod();
    // (A Cortex-M DSP blob's packed filter has another length: unused.)
    let neon_layout = packed.len() == packed_weights_len(co, k) && !packed.is_empty();
    let use_packed = neon_layout && (k <= PACKED_MAX_K || !dotprod);
    // Without SDOT, long rows go to the paired row kernel when the filter
    // allows it (no −128: one scan of the weights, small next to the
    // products).
    let paired = !dotprod && k > PAIRED_MIN_K && !w.contains(&i8::MIN);
    let use_packed = use_packed && !paired;
    let mut pix = 0;
    if pointwise {
        while pix + 4 <= npix {
            let (o0, rest) = y[pix * co..(pix + 4) * co].split_at_mut(co);
            let (o1, rest) = rest.split_at_mut(co);
            let (o2, o3) = rest.split_at_mut(co);
            let f = [
                &x[pix * k..(pix + 1) * k],
                &x[(pix + 1) * k..(pix + 2) * k],
                &x[(pix + 2) * k..(pix + 3) * k],
                &x[(pix + 3) * k..(pix + 4) * k],
            ];
            if use_packed {
                packed_pixels_times_filters(f, packed, w, k, folded_bias, e, [o0, o1, o2, o3]);
            } else {
                pixels_times_filters(f, w, k, k, folded_bias, e, [o0, o1, o2, o3], paired);
            }
            pix += 4;
        }
    } else if let [Some(s0), Some(s1), Some(s2), Some(s3)] = &mut slot {
        while pix + 4 <= npix {
            let (o0, rest) = y[pix * co..(pix + 4) * co].split_at_mut(co);
            let (o1, rest) = rest.split_at_mut(co);
            let (o2, o3) = rest.split_at_mut(co);
            // Gathered into the slots (bytes `k..kp` stay zero).
            field(x, xs, ws, win, zp, ys, pix, &mut s0[..k]);
            field(x, xs, ws, win, zp, ys, pix + 1, &mut s1[..k]);
            field(x, xs, ws, win, zp, ys, pix + 2, &mut s2[..k]);
            field(x, xs, ws, win, zp, ys, pix + 3, &mut s3[..k]);
            let f: [&[i8]; 4] = [s0, s1, s2, s3];
            if use_packed {
                packed_pixels_times_filters(f, packed, w, k, folded_bias, e, [o0, o1, o2, o3]);
            } else {
                pixels_times_filters(f, w, k, kp, folded_bias, e, [o0, o1, o2, o3], paired);
            }
            pix += 4;
        }
    }
    while pix < npix {
        let o = &mut y[pix * co..(pix + 1) * co];
        match (&mut slot[0], pointwise) {
            (Some(s0), false) => {
                field(x, xs, ws, win, zp, ys, pix, &mut s0[..k]);
                if use_packed {
                    packed_pixels_times_filters([&s0[..]], packed, w, k, folded_bias, e, [o]);
                } else {
                    pixels_times_filters([&s0[..]], w, k, kp, folded_bias, e, [o], paired);
                }
            }
            // Unreachable: the scratch was checked to hold a field.
            (None, false) => return Err(Error::ShapeMismatch("conv: scratch too small")),
            (_, true) => {
                let f = &x[pix * k..(pix + 1) * k];
                if use_packed {
                    packed_pixels_times_filters([f], packed, w, k, folded_bias, e, [o]);
                } else {
                    pixels_times_filters([f], w, k, k, folded_bias, e, [o], paired);
                }
            }
        }
        pix += 1;
    }
    Ok(())
}
