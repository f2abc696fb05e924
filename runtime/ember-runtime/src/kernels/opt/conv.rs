//! int8 convolution (groups = 1) as a matrix product: each output pixel's
//! receptive field is one row of `Kh·Kw·Ci` bytes — the input pixel itself
//! for a pointwise 1×1 convolution, otherwise gathered into scratch
//! ("im2col" one pixel at a time, implicit padding filled with the input
//! zero point) — multiplied by the filter rows `[Co, Kh·Kw·Ci]`, four
//! output channels per pass over the row.

use super::super::{check_len, check_requant, taps, QuantIo, Requant, Shape4, Window};
use super::{row_times_filters, Epilogue};
use crate::error::{Error, Result};

/// `true` when a convolution needs no gathering: 1×1 filter, stride 1, no
/// padding (dilation is irrelevant for a single tap).
pub fn is_pointwise(ws: Shape4, win: &Window) -> bool {
    ws.h == 1
        && ws.w == 1
        && win.stride_h == 1
        && win.stride_w == 1
        && win.pad_top == 0
        && win.pad_left == 0
        && win.pad_bottom == 0
        && win.pad_right == 0
}

/// Scratch bytes [`conv2d_s8_opt`] needs: one receptive field
/// (`Kh·Kw·Ci`), or nothing for a pointwise convolution.
pub fn conv2d_s8_opt_scratch_size(ws: Shape4, win: &Window) -> usize {
    if is_pointwise(ws, win) {
        0
    } else {
        ws.h.saturating_mul(ws.w).saturating_mul(ws.c)
    }
}

/// int8 convolution with one group, bit-exact with
/// [`crate::kernels::conv::conv2d_s8`] given
/// `folded_bias = fold_bias(bias, w, Co, in_zp)`.
///
/// `scratch` must hold [`conv2d_s8_opt_scratch_size`] bytes (it may be
/// longer). Shapes as the reference kernel's, `groups` = 1.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8_opt(
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
    if ws.c != xs.c || ys.c != ws.n || ys.n != xs.n {
        return Err(Error::ShapeMismatch("conv: channels or batch"));
    }
    if win.out_hw(xs.h, xs.w, ws.h, ws.w) != Some((ys.h, ys.w)) {
        return Err(Error::ShapeMismatch("conv: output size"));
    }
    check_len(x.len(), xs.numel(), "conv: input length")?;
    check_len(w.len(), ws.numel(), "conv: filter length")?;
    check_len(y.len(), ys.numel(), "conv: output length")?;
    check_len(folded_bias.len(), Some(ws.n), "conv: folded bias length")?;
    check_requant(&rq, ws.n, "conv: requant channels")?;
    if ws.n == 0 {
        return Ok(());
    }
    with_epilogue!(rq, q, e => run(x, xs, w, ws, folded_bias, e, q.in_zp, win, scratch, y, ys))
}

#[allow(clippy::too_many_arguments)]
fn run<E: Epilogue>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    folded_bias: &[i32],
    e: E,
    in_zp: i32,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    let (co, ci) = (ws.n, xs.c);
    let k = ws.h * ws.w * ci;
    if is_pointwise(ws, win) {
        // Indexed rather than chunked so that Ci = 0 still writes the outputs.
        for p in 0..xs.n * xs.h * xs.w {
            let out = &mut y[p * co..(p + 1) * co];
            row_times_filters(&x[p * ci..(p + 1) * ci], w, k, folded_bias, e, out);
        }
        return Ok(());
    }
    let patch = scratch
        .get_mut(..k)
        .ok_or(Error::ShapeMismatch("conv: scratch too small"))?;
    let zp = in_zp as i8; // validated int8 zero point: no truncation
    let run = ws.w * ci;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
                for ky in 0..ws.h {
                    let dst = &mut patch[ky * run..(ky + 1) * run];
                    if ky < ky0 || ky >= ky1 {
                        dst.fill(zp);
                        continue;
                    }
                    let iy = iy0 + (ky - ky0) * win.dil_h;
                    let row = ((b * xs.h + iy) * xs.w) * ci;
                    dst[..kx0 * ci].fill(zp);
                    dst[kx1 * ci..].fill(zp);
                    if win.dil_w == 1 && kx1 > kx0 {
                        let s = row + ix0 * ci;
                        dst[kx0 * ci..kx1 * ci].copy_from_slice(&x[s..s + (kx1 - kx0) * ci]);
                    } else {
                        for kx in kx0..kx1 {
                            let s = row + (ix0 + (kx - kx0) * win.dil_w) * ci;
                            dst[kx * ci..(kx + 1) * ci].copy_from_slice(&x[s..s + ci]);
                        }
                    }
                }
                let ybase = ((b * ys.h + oy) * ys.w + ox) * co;
                row_times_filters(patch, w, k, folded_bias, e, &mut y[ybase..ybase + co]);
            }
        }
    }
    Ok(())
}
