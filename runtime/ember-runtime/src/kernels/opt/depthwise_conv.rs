//! int8 depthwise convolution with depth multiplier 1: channels in blocks
//! of 16, 8 and 4, all `Kh·Kw` taps of a block accumulated in vector
//! registers before one requantization. Taps in the implicit padding read
//! a row of input zero points kept in scratch.

use super::super::{check_len, check_requant, taps, QuantIo, Requant, Shape4, Window};
use super::Epilogue;
use crate::error::{Error, Result};

/// Scratch bytes [`depthwise_conv2d_s8_opt`] needs: one row of zero points
/// as long as the channel count.
pub fn depthwise_conv2d_s8_opt_scratch_size(channels: usize) -> usize {
    channels
}

/// Most taps the blocked path takes (5×5); larger kernels run channel by
/// channel.
pub(crate) const MAX_TAPS: usize = 25;

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
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    if let Ok(a16) = <&mut [i32; 16]>::try_from(&mut acc[..]) {
        // SAFETY: NEON is enabled for the whole build (the cfg above).
        unsafe { super::neon::depthwise::mac_taps16(a16, rows, w.chunks_exact(c), c0) };
    } else {
        mac_taps::<B>(&mut acc, rows, w.chunks_exact(c), c0);
    }
    #[cfg(not(all(target_arch = "aarch64", target_feature = "neon")))]
    mac_taps::<B>(&mut acc, rows, w.chunks_exact(c), c0);
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
#[cfg(any(
    all(target_arch = "aarch64", target_feature = "neon"),
    all(target_arch = "arm", any(feature = "mve", feature = "dsp"))
))]
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
    // DSP: `[input offset, weight offset]` of every tap.
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    let mut dsp_pairs = [[0usize; 2]; MAX_TAPS];
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    for (t, (p, &o)) in dsp_pairs.iter_mut().zip(&offs).enumerate().take(taps_n) {
        *p = [o, t * c];
    }
    // DSP: the blocked table's epilogue bounds, read once for the layer.
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    let bounds = e
        .blocks()
        .map(|(t, q)| super::dsp::shared::OutBounds::for_table(q.out_zp, q.act_min, q.act_max, t));
    // The taps' input rows of the current pixel (the zero-point row in the
    // padding), overwritten per pixel.
    let mut rows: [&[i8]; MAX_TAPS] = [&[]; MAX_TAPS];
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    let mut ptrs = [0usize; MAX_TAPS];
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, kh, xs.h);
            let mut ox = 0;
            while ox < ys.w {
                let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, kw, xs.w);
                // NEON: the run of pixels from here whose windows lie
                // wholly inside the input, in one call.
                #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
                if let (Some((blocks, q)), true) = (
                    e.blocks(),
                    ky0 == 0
                        && ky1 == kh
                        && kx0 == 0
                        && kx1 == kw
                        && kw > 0
                        && win.stride_w > 0
                        && taps_n <= MAX_TAPS,
                ) {
                    let (count, base, ybase) = interior_run(xs, ys, win, kw, [b, oy, ox, iy0, ix0]);
                    let out = &mut y[ybase..ybase + count * c];
                    // SAFETY: NEON is enabled for the whole build (the cfg
                    // above).
                    let done = unsafe {
                        super::neon::depthwise::depthwise_row(
                            x,
                            base,
                            win.stride_w * c,
                            &offs[..taps_n],
                            count,
                            w,
                            c,
                            folded_bias,
                            blocks,
                            q,
                            out,
                        )
                    };
                    if done > 0 {
                        ox += done;
                        continue;
                    }
                }
                // Helium: the same for the run of interior pixels, whole
                // blocks of four channels; the rest of the channels below.
                #[cfg(all(feature = "mve", target_arch = "arm"))]
                if let (Some((blocks, q)), true) = (
                    e.blocks(),
                    ky0 == 0
                        && ky1 == kh
                        && kx0 == 0
                        && kx1 == kw
                        && kw > 0
                        && win.stride_w > 0
                        && taps_n <= MAX_TAPS
                        && c >= 4,
                ) {
                    let (count, base, ybase) = interior_run(xs, ys, win, kw, [b, oy, ox, iy0, ix0]);
                    let out = &mut y[ybase..ybase + count * c];
                    let done = super::mve::depthwise::depthwise_run(
                        x,
                        base,
                        win.stride_w * c,
                        &offs[..taps_n],
                        count,
                        w,
                        c,
                        folded_bias,
                        blocks,
                        q,
                        e.plain_table(),
                        out,
                    );
                    if done > 0 && count > 0 {
                        if done < c {
                            for (i, o) in out.chunks_exact_mut(c).enumerate() {
                                let px = base + i * win.stride_w * c;
                                let taps = &offs[..taps_n];
                                interior_rest(x, px, taps, w, c, done, folded_bias, e, o);
                            }
                        }
                        ox += count;
                        continue;
                    }
                }
                // DSP: the same run of interior pixels, four channels per
                // `SMLABB`/`SMLATT` block, the rest of the channels below.
                #[cfg(all(feature = "dsp", target_arch = "arm"))]
                if taps_n > 0
                    && ky0 == 0
                    && ky1 == kh
                    && kx0 == 0
                    && kx1 == kw
                    && kw > 0
                    && win.stride_w > 0
                    && taps_n <= MAX_TAPS
                {
                    let (count, base, ybase) = interior_run(xs, ys, win, kw, [b, oy, ox, iy0, ix0]);
                    let step = win.stride_w * c;
                    let out = &mut y[ybase..ybase + count * c];
                    let reach = count
                        .saturating_sub(1)
                        .checked_mul(step)
                        .and_then(|v| v.checked_add(base))
                        .and_then(|v| v.checked_add(offs[taps_n - 1]))
                        .and_then(|v| v.checked_add(c));
                    let fits = reach.is_some_and(|r| r <= x.len());
                    if count > 0 && fits && w.len() >= taps_n.saturating_mul(c) {
                        for (i, o) in out.chunks_exact_mut(c).enumerate() {
                            let px = base + i * step;
                            // SAFETY: tap `t` reads channels `0..c` at
                            // `x[px + offs[t]..]` (the last tap's offset is
                            // the largest and `px + offs[t] + c ≤ reach ≤
                            // x.len()`, computed without overflow) and at
                            // `w[t·c..]` (`taps·c ≤ w.len()`).
                            let c0 = unsafe {
                                dsp_blocks(
                                    &dsp_pairs[..taps_n],
                                    bounds.as_ref(),
                                    x.as_ptr() as usize + px,
                                    w,
                                    c,
                                    folded_bias,
                                    e,
                                    o,
                                )
                            };
                            let taps = &offs[..taps_n];
                            interior_rest(x, px, taps, w, c, c0, folded_bias, e, o);
                        }
                        ox += count;
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
                    // DSP: four channels per block from the rows'
                    // addresses (every row holds `c` bytes).
                    #[cfg(all(feature = "dsp", target_arch = "arm"))]
                    if w.len() >= taps_n.saturating_mul(c) && rows.iter().all(|r| r.len() >= c) {
                        let mut pairs = [[0usize; 2]; MAX_TAPS];
                        for (t, (p, r)) in pairs.iter_mut().zip(rows).enumerate() {
                            *p = [r.as_ptr() as usize, t * c];
                        }
                        // SAFETY: tap `t` reads channels `0..c` of
                        // `rows[t]` and `w[t·c..]`, inside both (`c ≤
                        // rows[t].len()`, `taps·c ≤ w.len()`, checked
                        // above).
                        c0 = unsafe {
                            dsp_blocks(
                                &pairs[..taps_n],
                                bounds.as_ref(),
                                0,
                                w,
                                c,
                                folded_bias,
                                e,
                                out,
                            )
                        };
                    }
                    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
                    if let Some((blocks, q)) = e.blocks() {
                        // SAFETY: NEON is enabled for the whole build (the
                        // cfg above).
                        c0 = unsafe {
                            super::neon::depthwise::depthwise_pixel(
                                rows,
                                w,
                                c,
                                folded_bias,
                                blocks,
                                q,
                                out,
                            )
                        };
                    }
                    #[cfg(all(feature = "mve", target_arch = "arm"))]
                    if let Some((blocks, q)) = e.blocks() {
                        c0 = super::mve::depthwise::depthwise_pixel(
                            rows,
                            &mut ptrs,
                            w,
                            c,
                            folded_bias,
                            blocks,
                            q,
                            e.plain_table(),
                            out,
                        );
                    }
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

/// DSP: the whole blocks of four channels of one output pixel, tap `t`'s
/// input at `pairs[t][0] + addend` and weights at `w[pairs[t][1]..]`: with
/// the blocked table (`bounds` made from it for the layer) all in one
/// [`super::dsp::depthwise::depthwise_blocks`], otherwise through
/// [`super::dsp::depthwise::depthwise_sums4`] and the epilogue four at a time.
/// Returns how many channels it wrote.
///
/// # Safety
/// For every tap, `c` bytes at `pairs[t][0] + addend` are readable and
/// `pairs[t][1] + c ≤ w.len()`; `folded_bias` and `out` hold `c` values.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dsp_blocks<E: Epilogue>(
    pairs: &[[usize; 2]],
    bounds: Option<&super::dsp::shared::OutBounds>,
    addend: usize,
    w: &[i8],
    c: usize,
    folded_bias: &[i32],
    e: E,
    out: &mut [i8],
) -> usize {
    // Fixed-point blocked requantization: every block in one `asm!`.
    if let (Some((table, _)), Some(bounds)) = (e.blocks(), bounds) {
        // SAFETY: the caller's contract: channels `0..c` (`4·(c/4) ≤ c`) of
        // every tap's input and weights are readable.
        let done = unsafe {
            super::dsp::depthwise::depthwise_blocks(
                pairs,
                addend,
                w.as_ptr(),
                c / 4,
                folded_bias,
                table,
                bounds,
                out,
            )
        };
        if done > 0 {
            return done;
        }
    }
    let mut c0 = 0;
    while c0 + 4 <= c {
        let mut acc = [0i32; 4];
        acc.copy_from_slice(&folded_bias[c0..c0 + 4]);
        // SAFETY: four bytes at channel `c0 + 4 ≤ c` of every tap's input
        // and weights, covered by the caller's contract.
        unsafe {
            super::dsp::depthwise::depthwise_sums4(
                pairs.as_ptr().cast(),
                pairs.len(),
                addend + c0,
                w.as_ptr().add(c0),
                &mut acc,
            )
        };
        if let Ok(o4) = <&mut [i8; 4]>::try_from(&mut out[c0..c0 + 4]) {
            e.apply4(acc, c0, o4);
        }
        c0 += 4;
    }
    c0
}

/// Channels `from..c` of an interior output pixel one at a time: tap `t`'s
/// input at `x[px + offs[t]..]`, its weights at `w[t·c..]`.
#[cfg(all(target_arch = "arm", any(feature = "mve", feature = "dsp")))]
#[allow(clippy::too_many_arguments)]
fn interior_rest<E: Epilogue>(
    x: &[i8],
    px: usize,
    offs: &[usize],
    w: &[i8],
    c: usize,
    from: usize,
    folded_bias: &[i32],
    e: E,
    o: &mut [i8],
) {
    for ch in from..c {
        let mut acc = folded_bias[ch];
        for (t, &off) in offs.iter().enumerate() {
            let (xv, wv) = (x[px + off + ch], w[t * c + ch]);
            acc = acc.wrapping_add((xv as i32).wrapping_mul(wv as i32));
        }
        o[ch] = e.apply(acc, ch);
    }
}
