//! The shape checks the convolution kernels of every instruction set
//! share.

use super::super::{check_len, Shape4, Window};
use crate::error::{Error, Result};

/// The shape checks every one-group convolution kernel makes: channels and
/// batch agree, the window gives the output size, and `lens` (input,
/// filter, output) match the shapes.
pub(crate) fn check_conv_geometry(
    xs: Shape4,
    ws: Shape4,
    win: &Window,
    ys: Shape4,
    lens: [usize; 3],
) -> Result<()> {
    if ws.c != xs.c || ys.c != ws.n || ys.n != xs.n {
        return Err(Error::ShapeMismatch("conv: channels or batch"));
    }
    if win.out_hw(xs.h, xs.w, ws.h, ws.w) != Some((ys.h, ys.w)) {
        return Err(Error::ShapeMismatch("conv: output size"));
    }
    check_len(lens[0], xs.numel(), "conv: input length")?;
    check_len(lens[1], ws.numel(), "conv: filter length")?;
    check_len(lens[2], ys.numel(), "conv: output length")
}

/// [`check_conv_geometry`] for depthwise kernels (multiplier 1, filter
/// `[1, Kh, Kw, C]`).
pub(crate) fn check_depthwise_geometry(
    xs: Shape4,
    ws: Shape4,
    win: &Window,
    ys: Shape4,
    lens: [usize; 3],
) -> Result<()> {
    if ws.n != 1 || ws.c != xs.c || ys.c != xs.c || ys.n != xs.n {
        return Err(Error::ShapeMismatch("depthwise conv: channels"));
    }
    if win.out_hw(xs.h, xs.w, ws.h, ws.w) != Some((ys.h, ys.w)) {
        return Err(Error::ShapeMismatch("depthwise conv: output size"));
    }
    check_len(lens[0], xs.numel(), "depthwise conv: input length")?;
    check_len(lens[1], ws.numel(), "depthwise conv: filter length")?;
    check_len(lens[2], ys.numel(), "depthwise conv: output length")
}
