//! Depthwise convolution over NHWC, filters `[1, Kh, Kw, Co]` with
//! `Co = Ci × depth_multiplier` (output channel `ic·M + m` reads input
//! channel `ic`), TFLite `DepthwiseConvPerChannel` semantics. Geometry and
//! padding as in [`super::conv`].

use super::{check_len, check_requant, clamp_f32, sat_i8, taps, QuantIo, Requant, Shape4, Window};
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
    if win.out_hw(xs.h, xs.w, ws.h, ws.w) != Some((ys.h, ys.w)) {
        return Err(Error::ShapeMismatch("depthwise conv: output size"));
    }
    if bias_len.is_some_and(|b| b != ws.c) {
        return Err(Error::ShapeMismatch("depthwise conv: bias length"));
    }
    Ok(())
}

/// int8 depthwise convolution, TFLite `DepthwiseConvPerChannel`: output
/// channel `oc = ic·M + m` is
/// `clamp(requant(Σ (x[.., ic] − in_zp)·w[ky, kx, oc] + bias[oc], oc) + out_zp)`;
/// filter zero point 0, `rq` per tensor or per output channel.
///
/// Shapes: `xs = [N, H, W, Ci]`, `ws = [1, Kh, Kw, Ci·M]`,
/// `ys = [N, Ho, Wo, Ci·M]`.
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
    check_requant(&rq, ws.c, "depthwise conv: requant channels")?;
    let co = ws.c;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * co;
                for (oc, out) in y[ybase..ybase + co].iter_mut().enumerate() {
                    let ic = oc / depth_multiplier;
                    let mut acc: i32 = 0;
                    for ky in ky0..ky1 {
                        let iy = iy0 + (ky - ky0) * win.dil_h;
                        for kx in kx0..kx1 {
                            let ix = ix0 + (kx - kx0) * win.dil_w;
                            let xv = x[((b * xs.h + iy) * xs.w + ix) * xs.c + ic] as i32;
                            let wv = w[(ky * ws.w + kx) * co + oc] as i32;
                            acc = acc.wrapping_add(xv.wrapping_sub(q.in_zp).wrapping_mul(wv));
                        }
                    }
                    if let Some(bias) = bias {
                        acc = acc.wrapping_add(bias[oc]);
                    }
                    let v = rq.apply(acc, oc).saturating_add(q.out_zp);
                    *out = sat_i8(v, q.act_min, q.act_max);
                }
            }
        }
    }
    Ok(())
}

/// f32 depthwise convolution (layouts of [`depthwise_conv2d_s8`]), clamped
/// to `[act_min, act_max]`.
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
            let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * co;
                for (oc, out) in y[ybase..ybase + co].iter_mut().enumerate() {
                    let ic = oc / depth_multiplier;
                    let mut acc = 0f32;
                    for ky in ky0..ky1 {
                        let iy = iy0 + (ky - ky0) * win.dil_h;
                        for kx in kx0..kx1 {
                            let ix = ix0 + (kx - kx0) * win.dil_w;
                            acc += x[((b * xs.h + iy) * xs.w + ix) * xs.c + ic]
                                * w[(ky * ws.w + kx) * co + oc];
                        }
                    }
                    if let Some(bias) = bias {
                        acc += bias[oc];
                    }
                    *out = clamp_f32(acc, act_min, act_max);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv::{conv2d_f32, conv2d_s8};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn win() -> Window {
        Window {
            stride_h: 2,
            stride_w: 1,
            dil_h: 1,
            dil_w: 2,
            pad_top: 1,
            pad_left: 2,
            pad_bottom: 1,
            pad_right: 1,
        }
    }

    /// Depthwise filter `[1, Kh, Kw, Co]` as a grouped-conv filter `[Co, Kh, Kw, 1]`.
    fn as_grouped<T: Copy + Default>(wd: &[T], taps: usize, co: usize) -> Vec<T> {
        let mut wg = vec![T::default(); wd.len()];
        for oc in 0..co {
            for k in 0..taps {
                wg[oc * taps + k] = wd[k * co + oc];
            }
        }
        wg
    }

    #[test]
    fn f32_equals_grouped_conv_with_groups_ci() {
        let xs = Shape4::new(2, 4, 5, 3);
        let x: Vec<f32> = (0..xs.numel().unwrap())
            .map(|i| libm::cosf(i as f32 * 0.61))
            .collect();
        let (mult, co) = (2, 6);
        let wd: Vec<f32> = (0..54).map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.1).collect();
        let wg = as_grouped(&wd, 9, co);
        let win = win();
        let oh = Window::out_dim(4, 3, 2, 1, 1, 1).unwrap();
        let ow = Window::out_dim(5, 3, 1, 2, 2, 1).unwrap();
        let ys = Shape4::new(2, oh, ow, co);
        let n = ys.numel().unwrap();
        let bias: Vec<f32> = (0..co).map(|c| c as f32 * 0.5 - 1.0).collect();
        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
        depthwise_conv2d_f32(
            &x,
            xs,
            &wd,
            Shape4::new(1, 3, 3, co),
            Some(&bias),
            &win,
            mult,
            -2.0,
            2.0,
            &mut a,
            ys,
        )
        .unwrap();
        conv2d_f32(
            &x,
            xs,
            &wg,
            Shape4::new(co, 3, 3, 1),
            Some(&bias),
            &win,
            3,
            -2.0,
            2.0,
            &mut b,
            ys,
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn s8_equals_grouped_conv_with_groups_ci() {
        let xs = Shape4::new(1, 5, 5, 4);
        let x: Vec<i8> = (0..100).map(|i| ((i * 29 + 3) % 256) as u8 as i8).collect();
        let (mult, co) = (1, 4);
        let wd: Vec<i8> = (0..36).map(|i| ((i * 41 + 5) % 255) as u8 as i8).collect();
        let wg = as_grouped(&wd, 9, co);
        let pairs = [
            1518500250, -9, 1073741824, -8, 2000000000, -10, 1300000000, -7,
        ];
        let q = QuantIo {
            in_zp: 5,
            out_zp: -4,
            act_min: -128,
            act_max: 127,
        };
        let bias = [100, -100, 5000, -7];
        let win = win();
        let oh = Window::out_dim(5, 3, 2, 1, 1, 1).unwrap();
        let ow = Window::out_dim(5, 3, 1, 2, 2, 1).unwrap();
        let ys = Shape4::new(1, oh, ow, co);
        let n = ys.numel().unwrap();
        let (mut a, mut b) = (vec![0i8; n], vec![0i8; n]);
        depthwise_conv2d_s8(
            &x,
            xs,
            &wd,
            Shape4::new(1, 3, 3, co),
            Some(&bias),
            Requant::Fixed(&pairs),
            q,
            &win,
            mult,
            &mut a,
            ys,
        )
        .unwrap();
        conv2d_s8(
            &x,
            xs,
            &wg,
            Shape4::new(co, 3, 3, 1),
            Some(&bias),
            Requant::Fixed(&pairs),
            q,
            &win,
            4,
            &mut b,
            ys,
        )
        .unwrap();
        assert_eq!(a, b);
        assert!(a.iter().any(|&v| v != a[0]));
    }

    #[test]
    fn depth_multiplier_reads_input_channel_oc_over_m() {
        // 1x1 image, 2 input channels, multiplier 3, 1x1 filter.
        let x = [2.0f32, 10.0];
        let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut y = [0f32; 6];
        let w1 = Window {
            stride_h: 1,
            stride_w: 1,
            dil_h: 1,
            dil_w: 1,
            ..Default::default()
        };
        depthwise_conv2d_f32(
            &x,
            Shape4::new(1, 1, 1, 2),
            &w,
            Shape4::new(1, 1, 1, 6),
            None,
            &w1,
            3,
            -1e9,
            1e9,
            &mut y,
            Shape4::new(1, 1, 1, 6),
        )
        .unwrap();
        assert_eq!(y, [2.0, 4.0, 6.0, 40.0, 50.0, 60.0]);
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let xs = Shape4::new(1, 2, 2, 2);
        let ws = Shape4::new(1, 1, 1, 2);
        let w1 = Window {
            stride_h: 1,
            stride_w: 1,
            dil_h: 1,
            dil_w: 1,
            ..Default::default()
        };
        let q = QuantIo {
            in_zp: 0,
            out_zp: 0,
            act_min: -128,
            act_max: 127,
        };
        let rq = Requant::Fixed(&[1 << 30, 0]);
        let mut y = [0i8; 8];
        assert!(
            depthwise_conv2d_s8(&[0; 8], xs, &[1; 2], ws, None, rq, q, &w1, 1, &mut y, xs).is_ok()
        );
        assert!(
            depthwise_conv2d_s8(&[0; 7], xs, &[1; 2], ws, None, rq, q, &w1, 1, &mut y, xs).is_err()
        );
        assert!(
            depthwise_conv2d_s8(&[0; 8], xs, &[1; 1], ws, None, rq, q, &w1, 1, &mut y, xs).is_err()
        );
        assert!(depthwise_conv2d_s8(
            &[0; 8],
            xs,
            &[1; 2],
            ws,
            None,
            rq,
            q,
            &w1,
            1,
            &mut y[..7],
            xs
        )
        .is_err());
        assert!(
            depthwise_conv2d_s8(&[0; 8], xs, &[1; 2], ws, None, rq, q, &w1, 0, &mut y, xs).is_err()
        );
        assert!(
            depthwise_conv2d_s8(&[0; 8], xs, &[1; 2], ws, None, rq, q, &w1, 2, &mut y, xs).is_err()
        );
        assert!(depthwise_conv2d_s8(
            &[0; 8],
            xs,
            &[1; 2],
            ws,
            Some(&[0; 3]),
            rq,
            q,
            &w1,
            1,
            &mut y,
            xs
        )
        .is_err());
        assert!(depthwise_conv2d_s8(
            &[0; 8],
            xs,
            &[1; 2],
            ws,
            None,
            Requant::Float(&[1.0; 3]),
            q,
            &w1,
            1,
            &mut y,
            xs
        )
        .is_err());
        let q = QuantIo {
            in_zp: i32::MAX,
            out_zp: i32::MIN,
            act_min: 1000,
            act_max: -1000,
        };
        depthwise_conv2d_s8(
            &[-128; 8],
            xs,
            &[-128; 2],
            ws,
            Some(&[i32::MIN, i32::MAX]),
            rq,
            q,
            &w1,
            1,
            &mut y,
            xs,
        )
        .unwrap();
        let mut yf = [0f32; 8];
        assert!(depthwise_conv2d_f32(
            &[0.0; 8],
            xs,
            &[1.0; 2],
            ws,
            None,
            &w1,
            1,
            0.0,
            1.0,
            &mut yf[..6],
            xs
        )
        .is_err());
        assert!(depthwise_conv2d_f32(
            &[0.0; 8],
            xs,
            &[1.0; 2],
            Shape4::new(2, 1, 1, 2),
            None,
            &w1,
            1,
            0.0,
            1.0,
            &mut yf,
            xs
        )
        .is_err());
        assert_eq!(depthwise_conv2d_scratch_size(), 0);
    }
}
