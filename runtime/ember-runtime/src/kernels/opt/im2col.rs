//! Receptive fields for the convolution kernels of every instruction set:
//! whether a convolution needs them at all ([`is_pointwise`]), and one
//! output pixel's field gathered into scratch ("im2col" one pixel at a
//! time, implicit padding filled with the input zero point).

use super::super::{taps, Shape4, Window};

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

/// Fills `dst` with `v`: Helium and DSP by inline stores (runs are short;
/// no library call), elsewhere the library's fill.
#[inline(always)]
fn fill(dst: &mut [i8], v: i8) {
    by_isa!(
        mve: super::mve::shared::fill_bytes(dst, v),
        dsp: super::dsp::shared::fill_bytes(dst, v),
        neon: dst.fill(v),
        portable: dst.fill(v),
    )
}

/// Copies `src` to `dst` (equal lengths): by vector or inline copies where
/// the instruction set has them.
#[inline(always)]
fn copy(dst: &mut [i8], src: &[i8]) {
    by_isa!(
        mve: super::mve::shared::copy_bytes(dst, src),
        dsp: super::dsp::shared::copy_bytes(dst, src),
        // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
        // condition for this arm).
        neon: unsafe { super::neon::shared::copy_run(dst, src) },
        portable: dst.copy_from_slice(src),
    )
}

/// The receptive field of output pixel `pix` (row-major over `[N, Ho,
/// Wo]`): the input row itself for a pointwise convolution, otherwise
/// gathered into `patch` with the padding filled by the zero point.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn field<'a>(
    x: &'a [i8],
    xs: Shape4,
    ws: Shape4,
    win: &Window,
    zp: i8,
    ys: Shape4,
    pix: usize,
    patch: &'a mut [i8],
) -> &'a [i8] {
    let ci = xs.c;
    if is_pointwise(ws, win) {
        return &x[pix * ci..(pix + 1) * ci];
    }
    let (b, rest) = (pix / (ys.h * ys.w), pix % (ys.h * ys.w));
    let (oy, ox) = (rest / ys.w, rest % ys.w);
    let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
    let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
    let run = ws.w * ci;
    for ky in 0..ws.h {
        let dst = &mut patch[ky * run..(ky + 1) * run];
        if ky < ky0 || ky >= ky1 {
            fill(dst, zp);
            continue;
        }
        let iy = iy0 + (ky - ky0) * win.dil_h;
        let row = ((b * xs.h + iy) * xs.w) * ci;
        fill(&mut dst[..kx0 * ci], zp);
        fill(&mut dst[kx1 * ci..], zp);
        if win.dil_w == 1 && kx1 > kx0 {
            let s = row + ix0 * ci;
            copy(&mut dst[kx0 * ci..kx1 * ci], &x[s..s + (kx1 - kx0) * ci]);
        } else {
            for kx in kx0..kx1 {
                let s = row + (ix0 + (kx - kx0) * win.dil_w) * ci;
                dst[kx * ci..(kx + 1) * ci].copy_from_slice(&x[s..s + ci]);
            }
        }
    }
    patch
}
