//! int8 depthwise convolution with depth multiplier 1: channels in blocks
//! of 16, 8 and 4, all `Kh·Kw` taps of a block accumulated in vector
//! registers before one requantization. Taps in the implicit padding read
//! a row of input zero points kept in scratch.
//!
//! The one place a depthwise convolution picks its instruction set: the
//! loop here asks the build's `Depthwise` (`mve/depthwise.rs`,
//! `dsp/depthwise.rs`, `neon/depthwise.rs`, or the portable one here) for a run of
//! interior pixels and for each pixel's vector blocks, and does the rest.

use super::super::{check_len, check_requant, taps, QuantIo, Requant, Shape4, Window};
use super::epilogue::Epilogue;
use super::taps::MAX_TAPS;
use crate::error::{Error, Result};

/// Scratch bytes [`depthwise_conv2d_s8_opt`] needs: one row of zero points
/// as long as the channel count.
pub fn depthwise_conv2d_s8_opt_scratch_size(channels: usize) -> usize {
    channels
}

/// Adds `Σ_t rows[t][c0..c0+B] · w_t[c0..c0+B]` to `acc`, where `w_t` is
/// the `t`-th row of `w_rows` (channel-last filter rows of length C).
/// Kept out of line: on its own LLVM's SLP vectorizer keeps the `B`
/// accumulators in vector registers across all taps (widening loads,
/// multiplies and adds on Helium and NEON); inlined into the pixel loop it
/// was left scalar.
#[inline(never)]
fn mac_taps<'w, const B: usize>(
    acc: &mut [i32; B],
    rows: &[&[i8]],
    w_rows: impl Iterator<Item = &'w [i8]>,
    c0: usize,
) {
    let mut a = *acc;
    for (r, wr) in rows.iter().zip(w_rows) {
        let (Some(xr), Some(wr)) = (r.get(c0..c0 + B), wr.get(c0..c0 + B)) else {
            continue;
        };
        if let (Ok(xa), Ok(wa)) = (<&[i8; B]>::try_from(xr), <&[i8; B]>::try_from(wr)) {
            for j in 0..B {
                a[j] = a[j].wrapping_add((xa[j] as i32).wrapping_mul(wa[j] as i32));
            }
        }
    }
    *acc = a;
}

/// Channels `c0..c0+B` of one output pixel: all taps, then four
/// requantizations of four channels. `B` is a multiple of 4.
#[inline(always)]
fn block<const B: usize, E: Epilogue>(
    rows: &[&[i8]],
    w: &[i8],
    c: usize,
    c0: usize,
    folded_bias: &[i32],
    e: E,
    out: &mut [i8],
) {
    let mut acc = [0i32; B];
    acc.copy_from_slice(&folded_bias[c0..c0 + B]);
    by_isa!(
        neon: match <&mut [i32; 16]>::try_from(&mut acc[..]) {
            // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
            // condition for this arm).
            Ok(a16) => unsafe {
                super::neon::depthwise::mac_taps16(a16, rows, w.chunks_exact(c), c0)
            },
            Err(_) => mac_taps::<B>(&mut acc, rows, w.chunks_exact(c), c0),
        },
        else: mac_taps::<B>(&mut acc, rows, w.chunks_exact(c), c0),
    );
    for (j, (a, o)) in acc
        .chunks_exact(4)
        .zip(out[c0..c0 + B].chunks_exact_mut(4))
        .enumerate()
    {
        if let (Ok(a), Ok(o)) = (<[i32; 4]>::try_from(a), <&mut [i8; 4]>::try_from(o)) {
            e.apply4(a, c0 + 4 * j, o);
        }
    }
}

/// The run of output pixels from `ox` on row `oy` of batch `b` whose
/// windows lie wholly inside the input (the caller checked that pixel
/// `ox`'s does; its tap 0 is at input `(iy0, ix0)`): how many, the input
/// offset of the first one's tap 0 and the output offset of the first one.
#[inline(always)]
fn interior_run(
    xs: Shape4,
    ys: Shape4,
    win: &Window,
    kw: usize,
    [b, oy, ox, iy0, ix0]: [usize; 5],
) -> (usize, usize, usize) {
    let c = xs.c;
    let span = (kw - 1) * win.dil_w;
    let last = (xs.w - 1 + win.pad_left - span) / win.stride_w;
    let count = (last + 1).min(ys.w).saturating_sub(ox);
    let base = ((b * xs.h + iy0) * xs.w + ix0) * c;
    let ybase = ((b * ys.h + oy) * ys.w + ox) * c;
    (count, base, ybase)
}

/// Depthwise convolution (multiplier 1), bit-exact with
/// [`crate::kernels::depthwise_conv::depthwise_conv2d_s8`] given
/// `folded_bias = fold_bias(bias, w, C, in_zp, true)`. `xs = [N, H, W, C]`,
/// `ws = [1, Kh, Kw, C]`, `ys = [N, Ho, Wo, C]`; `scratch` holds at least
/// [`depthwise_conv2d_s8_opt_scratch_size`] bytes.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_s8_opt(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    folded_bias: &[i32],
    rq: Requant<'_>,
    q: QuantIo,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    depthwise_conv2d_s8_opt_for::<crate::AllKernels>(
        x,
        xs,
        w,
        ws,
        folded_bias,
        rq,
        q,
        win,
        scratch,
        y,
        ys,
    )
}

/// [`depthwise_conv2d_s8_opt`] with only the epilogues `S` has
/// compiled in: the fixed-point one for [`crate::Kernel::DepthwiseS8Opt`]
/// (TFLite rounding), the general one for
/// [`crate::Kernel::DepthwiseS8OptFloat`] (see `with_epilogue!`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn depthwise_conv2d_s8_opt_for<S: crate::KernelSet>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    folded_bias: &[i32],
    rq: Requant<'_>,
    q: QuantIo,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    super::check_depthwise_geometry(xs, ws, win, ys, [x.len(), w.len(), y.len()])?;
    check_len(
        folded_bias.len(),
        Some(ws.c),
        "depthwise conv: folded bias length",
    )?;
    check_requant(&rq, ws.c, "depthwise conv: requant channels")?;
    let (xs, ws, ys, win) = &columns_as_rows(xs, ws, ys, win);
    let (xs, ws, ys) = (*xs, *ws, *ys);
    with_epilogue!(rq, q, fixed: S::KERNELS.contains(crate::Kernel::DepthwiseS8Opt), any: S::KERNELS.contains(crate::Kernel::DepthwiseS8OptFloat), e => run(x, xs, w, ws, folded_bias, e, q.in_zp, win, scratch, y, ys))
}

/// A one-column problem (`W = Kw = Wo = 1`, a 1-D signal along H such
/// as an audio model's) restated along W: `[N, H, 1, C]` and `[N, 1, H,
/// C]` are the same bytes, and so are the filters `[1, Kh, 1, C]` and
/// `[1, 1, Kh, C]`, with the window's vertical stride, dilation and
/// padding moved to the horizontal ones. The kernels run whole rows of
/// interior pixels per call, so a column of `H` pixels becomes one run
/// instead of `H` runs of one. Anything else is returned unchanged.
fn columns_as_rows(
    xs: Shape4,
    ws: Shape4,
    ys: Shape4,
    win: &Window,
) -> (Shape4, Shape4, Shape4, Window) {
    if xs.w != 1 || ws.w != 1 || ys.w != 1 || win.pad_left != 0 || win.pad_right != 0 {
        return (xs, ws, ys, *win);
    }
    let t = |s: Shape4| Shape4::new(s.n, s.w, s.h, s.c);
    let w = Window {
        stride_h: win.stride_w,
        stride_w: win.stride_h,
        dil_h: win.dil_w,
        dil_w: win.dil_h,
        pad_top: 0,
        pad_left: win.pad_top,
        pad_bottom: 0,
        pad_right: win.pad_bottom,
    };
    (t(xs), t(ws), t(ys), w)
}

#[allow(clippy::too_many_arguments)]
fn run<'a, E: Epilogue>(
    x: &'a [i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    folded_bias: &[i32],
    e: E,
    in_zp: i32,
    win: &Window,
    scratch: &'a mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    let c = xs.c;
    let zrow = scratch
        .get_mut(..c)
        .ok_or(Error::ShapeMismatch("depthwise conv: scratch too small"))?;
    zrow.fill(in_zp as i8); // validated int8 zero point: no truncation
    let zrow: &'a [i8] = zrow;
    let (kh, kw) = (ws.h, ws.w);
    let taps_n = kh * kw;
    // Offsets of the taps from the first one, for pixels whose window lies
    // inside the input (most of them): their rows need no bounds logic.
    let mut offs = [0usize; MAX_TAPS];
    for (t, o) in offs.iter_mut().enumerate().take(taps_n) {
        *o = ((t / kw) * win.dil_h * xs.w + (t % kw) * win.dil_w) * c;
    }
    // This build's instruction set's parts of the loop.
    let taps_max = taps_n.min(MAX_TAPS);
    let mut isa = by_isa!(
        mve: super::mve::depthwise::Depthwise::new(&offs[..taps_max], c, &e),
        dsp: super::dsp::depthwise::Depthwise::new(&offs[..taps_max], c, &e),
        neon: super::neon::depthwise::Depthwise::new(&offs[..taps_max], c, &e),
        portable: Portable::new(&offs[..taps_max], c, &e),
    );
    // The taps' input rows of the current pixel (the zero-point row in the
    // padding), overwritten per pixel.
    let mut rows: [&[i8]; MAX_TAPS] = [&[]; MAX_TAPS];
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, kh, xs.h);
            let mut ox = 0;
            while ox < ys.w {
                let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, kw, xs.w);
                // The run of pixels from here whose windows lie wholly
                // inside the input, in one call where the instruction set
                // has one.
                if ky0 == 0
                    && ky1 == kh
                    && kx0 == 0
                    && kx1 == kw
                    && kw > 0
                    && win.stride_w > 0
                    && taps_n <= MAX_TAPS
                {
                    let run = interior_run(xs, ys, win, kw, [b, oy, ox, iy0, ix0]);
                    let step = win.stride_w * c;
                    let taps = &offs[..taps_n];
                    let done = isa.interior(x, run, step, taps, w, c, folded_bias, e, y);
                    if done > 0 {
                        ox += done;
                        continue;
                    }
                }
                // Input offset of tap (ky, kx), or None in the padding.
                let at = |ky: usize, kx: usize| -> Option<usize> {
                    if ky < ky0 || ky >= ky1 || kx < kx0 || kx >= kx1 {
                        return None;
                    }
                    let iy = iy0 + (ky - ky0) * win.dil_h;
                    let ix = ix0 + (kx - kx0) * win.dil_w;
                    Some(((b * xs.h + iy) * xs.w + ix) * c)
                };
                let ybase = ((b * ys.h + oy) * ys.w + ox) * c;
                let out = &mut y[ybase..ybase + c];
                let mut c0 = 0;
                if taps_n <= MAX_TAPS {
                    if ky0 == 0 && ky1 == kh && kx0 == 0 && kx1 == kw {
                        let base = ((b * xs.h + iy0) * xs.w + ix0) * c;
                        for (slot, &o) in rows.iter_mut().zip(&offs[..taps_n]) {
                            *slot = &x[base + o..base + o + c];
                        }
                    } else {
                        let mut slots = rows.iter_mut();
                        for ky in 0..kh {
                            for kx in 0..kw {
                                if let Some(slot) = slots.next() {
                                    *slot = match at(ky, kx) {
                                        Some(s) => &x[s..s + c],
                                        None => zrow,
                                    };
                                }
                            }
                        }
                    }
                    let rows = &rows[..taps_n];
                    // The instruction set's vector blocks, then the
                    // portable ones for the channels they leave.
                    c0 = isa.pixel(rows, w, c, folded_bias, e, out);
                    while c0 + 16 <= c {
                        block::<16, E>(rows, w, c, c0, folded_bias, e, out);
                        c0 += 16;
                    }
                    if c0 + 8 <= c {
                        block::<8, E>(rows, w, c, c0, folded_bias, e, out);
                        c0 += 8;
                    }
                    if c0 + 4 <= c {
                        block::<4, E>(rows, w, c, c0, folded_bias, e, out);
                        c0 += 4;
                    }
                }
                for ch in c0..c {
                    let mut acc = folded_bias[ch];
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let xv = match at(ky, kx) {
                                Some(s) => x[s + ch],
                                None => zrow[ch],
                            };
                            let wv = w[(ky * kw + kx) * c + ch];
                            acc = acc.wrapping_add((xv as i32).wrapping_mul(wv as i32));
                        }
                    }
                    out[ch] = e.apply(acc, ch);
                }
                ox += 1;
            }
        }
    }
    Ok(())
}

by_isa! {
    portable items:

    /// The portable build's parts of the depthwise loop: none (every
    /// pixel through the portable blocks).
    struct Portable;

    impl Portable {
        #[inline(always)]
        fn new<E: Epilogue>(_offs: &[usize], _c: usize, _e: &E) -> Self {
            Portable
        }

        #[allow(clippy::too_many_arguments)]
        #[inline(always)]
        fn interior<E: Epilogue>(
            &mut self,
            _x: &[i8],
            _run: (usize, usize, usize),
            _step: usize,
            _offs: &[usize],
            _w: &[i8],
            _c: usize,
            _folded_bias: &[i32],
            _e: E,
            _y: &mut [i8],
        ) -> usize {
            0
        }

        #[inline(always)]
        fn pixel<E: Epilogue>(
            &mut self,
            _rows: &[&[i8]],
            _w: &[i8],
            _c: usize,
            _folded_bias: &[i32],
            _e: E,
            _out: &mut [i8],
        ) -> usize {
            0
        }
    }
}
