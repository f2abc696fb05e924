//! Depthwise convolution: 16 channels per tap (`SMULL` + `SADDW`), one
//! pixel or a run of interior pixels, requantized in vector registers; and
//! the NEON parts of the depthwise loop ([`Depthwise`]).

use super::shared::{ld16, ld8, requant_i32, Vq};
use crate::kernels::opt::epilogue::Epilogue;
use crate::kernels::opt::REQUANT_BLOCK_WORDS;
use crate::kernels::QuantIo;
use core::arch::aarch64::*;

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

/// The NEON parts of the depthwise loop (see
/// [`crate::kernels::opt::depthwise_conv`]): with the blocked table, 16
/// channels per tap over a run of interior pixels or one pixel's rows.
pub(crate) struct Depthwise;

impl Depthwise {
    /// For a layer (the arguments are the other instruction sets').
    #[inline(always)]
    pub(crate) fn new<E: Epilogue>(_offs: &[usize], _c: usize, _e: &E) -> Self {
        Depthwise
    }

    /// The run of `count` interior pixels `(count, base, ybase)` (input
    /// offset of the first one's tap 0, output offset), `step` input bytes
    /// apart, taps `offs` from the first one. Returns the pixels written
    /// (0: none, the caller takes them one at a time).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn interior<E: Epilogue>(
        &mut self,
        x: &[i8],
        (count, base, ybase): (usize, usize, usize),
        step: usize,
        offs: &[usize],
        w: &[i8],
        c: usize,
        folded_bias: &[i32],
        e: E,
        y: &mut [i8],
    ) -> usize {
        let Some((blocks, q)) = e.blocks() else {
            return 0;
        };
        let out = &mut y[ybase..ybase + count * c];
        // SAFETY: NEON is enabled for the whole build (this module is only
        // compiled then).
        unsafe {
            depthwise_row(
                x,
                base,
                step,
                offs,
                count,
                w,
                c,
                folded_bias,
                blocks,
                q,
                out,
            )
        }
    }

    /// One output pixel's channels from its taps' input rows, in vector
    /// registers. Returns the channels written.
    #[inline(always)]
    pub(crate) fn pixel<E: Epilogue>(
        &mut self,
        rows: &[&[i8]],
        w: &[i8],
        c: usize,
        folded_bias: &[i32],
        e: E,
        out: &mut [i8],
    ) -> usize {
        match e.blocks() {
            // SAFETY: NEON is enabled for the whole build (this module is
            // only compiled then).
            Some((blocks, q)) => unsafe {
                depthwise_pixel(rows, w, c, folded_bias, blocks, q, out)
            },
            None => 0,
        }
    }
}
