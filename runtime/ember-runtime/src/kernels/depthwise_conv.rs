//! Depthwise convolution over NHWC, filters `[1, Kh, Kw, Co]` with
//! `Co = Ci × depth_multiplier` (output channel `ic·M + m` reads input `ic`).

use super::conv::valid_taps;
use super::{check_len, QuantIo, Requant, Shape4, Window};
use crate::error::{Error, Result};

/// Scratch bytes the reference depthwise convolution needs (none).
pub fn depthwise_conv2d_scratch_size() -> usize {
    0
}

fn check_shapes(
    xs: Shape4,
    ws: Shape4,
    win: &Window,
    mult: usize,
    ys: Shape4,
    bias_len: Option<usize>,
) -> Result<()> {
    if ws.n != 1
        || mult == 0
        || xs.c.checked_mul(mult) != Some(ws.c)
        || ys.c != ws.c
        || ys.n != xs.n
    {
        return Err(Error::ShapeMismatch("depthwise conv: channels"));
    }
    let oh = Window::out_dim(
        xs.h,
        ws.h,
        win.stride_h,
        win.dil_h,
        win.pad_top,
        win.pad_bottom,
    );
    let ow = Window::out_dim(
        xs.w,
        ws.w,
        win.stride_w,
        win.dil_w,
        win.pad_left,
        win.pad_right,
    );
    if oh != Some(ys.h) || ow != Some(ys.w) {
        return Err(Error::ShapeMismatch("depthwise conv: output size"));
    }
    if bias_len.is_some_and(|b| b != ws.c) {
        return Err(Error::ShapeMismatch("depthwise conv: bias length"));
    }
    Ok(())
}

/// int8 depthwise convolution, TFLite `DepthwiseConvPerChannel` semantics.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_s8(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    bias: Option<&[i32]>,
    rq: Requant<'_>,
    q: QuantIo,
    win: &Window,
    depth_multiplier: usize,
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    check_shapes(xs, ws, win, depth_multiplier, ys, bias.map(|b| b.len()))?;
    check_len(x.len(), xs.numel(), "depthwise conv: input length")?;
    check_len(w.len(), ws.numel(), "depthwise conv: filter length")?;
    check_len(y.len(), ys.numel(), "depthwise conv: output length")?;
    if rq.channels() != 1 && rq.channels() != ws.c {
        return Err(Error::ShapeMismatch("depthwise conv: requant channels"));
    }
    let co = ws.c;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = valid_taps(oy, win.stride_h, win.pad_top, win.dil_h, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) =
                    valid_taps(ox, win.stride_w, win.pad_left, win.dil_w, ws.w, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * co;
                for oc in 0..co {
                    let ic = oc / depth_multiplier;
                    let mut acc: i32 = 0;
                    for ky in ky0..ky1 {
                        let iy = (iy0 + (ky * win.dil_h) as isize) as usize;
                        for kx in kx0..kx1 {
                            let ix = (ix0 + (kx * win.dil_w) as isize) as usize;
                            let xv = x[((b * xs.h + iy) * xs.w + ix) * xs.c + ic] as i32;
                            let wv = w[(ky * ws.w + kx) * co + oc] as i32;
                            acc = acc.wrapping_add((xv - q.in_zp) * wv);
                        }
                    }
                    if let Some(bias) = bias {
                        acc = acc.wrapping_add(bias[oc]);
                    }
                    let v = rq.apply(acc, oc).saturating_add(q.out_zp);
                    y[ybase + oc] = v.clamp(q.act_min, q.act_max) as i8;
                }
            }
        }
    }
    Ok(())
}

/// f32 depthwise convolution, clamped to `[act_min, act_max]`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_f32(
    x: &[f32],
    xs: Shape4,
    w: &[f32],
    ws: Shape4,
    bias: Option<&[f32]>,
    win: &Window,
    depth_multiplier: usize,
    act_min: f32,
    act_max: f32,
    y: &mut [f32],
    ys: Shape4,
) -> Result<()> {
    check_shapes(xs, ws, win, depth_multiplier, ys, bias.map(|b| b.len()))?;
    check_len(x.len(), xs.numel(), "depthwise conv: input length")?;
    check_len(w.len(), ws.numel(), "depthwise conv: filter length")?;
    check_len(y.len(), ys.numel(), "depthwise conv: output length")?;
    let co = ws.c;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = valid_taps(oy, win.stride_h, win.pad_top, win.dil_h, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) =
                    valid_taps(ox, win.stride_w, win.pad_left, win.dil_w, ws.w, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * co;
                for oc in 0..co {
                    let ic = oc / depth_multiplier;
                    let mut acc = 0f32;
                    for ky in ky0..ky1 {
                        let iy = (iy0 + (ky * win.dil_h) as isize) as usize;
                        for kx in kx0..kx1 {
                            let ix = (ix0 + (kx * win.dil_w) as isize) as usize;
                            acc += x[((b * xs.h + iy) * xs.w + ix) * xs.c + ic]
                                * w[(ky * ws.w + kx) * co + oc];
                        }
                    }
                    if let Some(bias) = bias {
                        acc += bias[oc];
                    }
                    y[ybase + oc] = acc.max(act_min).min(act_max);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::conv::conv2d_f32;
    use super::*;

    #[test]
    fn equals_grouped_conv() {
        let xs = Shape4::new(1, 4, 5, 3);
        let x: [f32; 60] = core::array::from_fn(|i| (i as f32 * 0.61).cos());
        let mult = 2;
        let co = 6;
        // depthwise filter [1,3,3,6]
        let wd: [f32; 54] = core::array::from_fn(|i| ((i * 5 % 13) as f32 - 6.0) * 0.1);
        // same as grouped conv filter [6,3,3,1]
        let mut wg = [0f32; 54];
        for oc in 0..co {
            for k in 0..9 {
                wg[oc * 9 + k] = wd[k * co + oc];
            }
        }
        let win = Window {
            stride_h: 2,
            stride_w: 1,
            dil_h: 1,
            dil_w: 1,
            pad_top: 1,
            pad_left: 1,
            pad_bottom: 1,
            pad_right: 1,
        };
        let ys = Shape4::new(1, 2, 5, co);
        let (mut a, mut b) = ([0f32; 60], [0f32; 60]);
        depthwise_conv2d_f32(
            &x,
            xs,
            &wd,
            Shape4::new(1, 3, 3, co),
            None,
            &win,
            mult,
            f32::MIN,
            f32::MAX,
            &mut a,
            ys,
        )
        .unwrap();
        conv2d_f32(
            &x,
            xs,
            &wg,
            Shape4::new(co, 3, 3, 1),
            None,
            &win,
            3,
            f32::MIN,
            f32::MAX,
            &mut b,
            ys,
        )
        .unwrap();
        for i in 0..60 {
            assert!((a[i] - b[i]).abs() < 1e-5);
        }
    }
}
