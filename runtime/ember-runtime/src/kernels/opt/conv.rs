//! int8 convolution (groups = 1) as a matrix product: each output pixel's
//! receptive field is one row of `Kh·Kw·Ci` bytes — the input pixel itself
//! for a pointwise 1×1 convolution, otherwise gathered into scratch
//! ("im2col" one pixel at a time, implicit padding filled with the input
//! zero point) — multiplied by the filter rows `[Co, Kh·Kw·Ci]`, four
//! output channels per pass over the row.
//!
//! `run` is the one place a convolution picks its instruction set: the
//! Helium, DSP and NEON loops live with their kernels (`mve/conv.rs`,
//! `dsp/conv.rs`, `neon/conv.rs`); the portable one is here.

use super::super::{check_len, check_requant, QuantIo, Requant, Shape4, Window};
use super::epilogue::Epilogue;
use super::im2col::field;
pub use super::im2col::is_pointwise;
use super::rows::row_times_filters;
use crate::error::{Error, Result};

/// Scratch bytes [`conv2d_s8_opt`] needs: one receptive field
/// (`Kh·Kw·Ci`, nothing for a pointwise convolution); with `wide` (the
/// two-pixel paths), also two widened copies of it (halfword pairs,
/// `K/2 + 4` words each, the DSP build's form) at the next 4-byte
/// boundary, room the NEON build uses for a second field. The kernel takes the wide path only when the
/// scratch is that large, so a blob planned without it still runs.
pub fn conv2d_s8_opt_scratch_size(ws: Shape4, win: &Window, wide: bool) -> usize {
    let k = ws.h.saturating_mul(ws.w).saturating_mul(ws.c);
    let patch = if is_pointwise(ws, win) { 0 } else { k };
    if wide {
        // Two packed fields of `k / 2 + 4` words each.
        let words = (k / 2).saturating_add(4);
        patch
            .next_multiple_of(4)
            .saturating_add(words.saturating_mul(8))
    } else {
        patch
    }
}

/// int8 convolution with one group, bit-exact with
/// [`crate::kernels::conv::conv2d_s8`] given
/// `folded_bias = fold_bias(bias, w, Co, in_zp)`.
///
/// `scratch` must hold [`conv2d_s8_opt_scratch_size`] bytes (it may be
/// longer). Shapes as the reference kernel's, `groups` = 1. `packed` is
/// either empty or [`super::pack_weights_s16`] of `w` (the NEON build uses
/// it on cores without `SDOT`; others ignore it).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8_opt(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    packed: &[i16],
    folded_bias: &[i32],
    rq: Requant<'_>,
    q: QuantIo,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    conv2d_s8_opt_for::<crate::AllKernels>(
        x,
        xs,
        w,
        ws,
        packed,
        folded_bias,
        rq,
        q,
        win,
        scratch,
        y,
        ys,
    )
}

/// [`conv2d_s8_opt`] with only the epilogues `S` has compiled in: the
/// fixed-point one for [`crate::Kernel::ConvS8Opt`] (TFLite rounding), the
/// general one for [`crate::Kernel::ConvS8OptFloat`] (see `with_epilogue!`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d_s8_opt_for<S: crate::KernelSet>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    packed: &[i16],
    folded_bias: &[i32],
    rq: Requant<'_>,
    q: QuantIo,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    super::check_conv_geometry(xs, ws, win, ys, [x.len(), w.len(), y.len()])?;
    check_len(folded_bias.len(), Some(ws.n), "conv: folded bias length")?;
    check_requant(&rq, ws.n, "conv: requant channels")?;
    if ws.n == 0 {
        return Ok(());
    }
    with_epilogue!(rq, q, fixed: S::KERNELS.contains(crate::Kernel::ConvS8Opt), any: S::KERNELS.contains(crate::Kernel::ConvS8OptFloat), e => run(x, xs, w, ws, packed, folded_bias, e, q.in_zp, win, scratch, y, ys))
}

/// Runs the convolution on this build's instruction set: its own loop
/// takes the layer when it can (NEON always), the portable loop below
/// otherwise.
#[allow(clippy::too_many_arguments)]
fn run<E: Epilogue>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    packed: &[i16],
    folded_bias: &[i32],
    e: E,
    in_zp: i32,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    let zp = in_zp as i8; // validated int8 zero point: no truncation
    let patch_len = conv2d_s8_opt_scratch_size(ws, win, false);
    if scratch.len() < patch_len {
        return Err(Error::ShapeMismatch("conv: scratch too small"));
    }
    let done = by_isa!(
        mve: {
            let _ = packed;
            let patch = &mut scratch[..patch_len];
            super::mve::conv::run(x, xs, w, ws, folded_bias, e, zp, win, patch, y, ys)
        },
        dsp: {
            let (patch, wide) = scratch.split_at_mut(patch_len);
            super::dsp::conv::run(x, xs, w, ws, packed, folded_bias, e, zp, win, patch, wide, y, ys)
        },
        neon: {
            super::neon::conv::run(x, xs, w, ws, packed, folded_bias, e, zp, win, scratch, y, ys)?;
            true
        },
        portable: {
            let _ = packed;
            false
        },
    );
    if done {
        return Ok(());
    }
    let co = ws.n;
    let k = ws.h * ws.w * xs.c;
    let npix = ys.n * ys.h * ys.w;
    let patch = &mut scratch[..patch_len];
    // Indexed over pixels so that Ci = 0 still writes the outputs.
    for pix in 0..npix {
        let f = field(x, xs, ws, win, zp, ys, pix, patch);
        row_times_filters(f, w, k, folded_bias, e, &mut y[pix * co..(pix + 1) * co]);
    }
    Ok(())
}
