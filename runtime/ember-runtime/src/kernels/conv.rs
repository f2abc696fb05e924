//! Convolution (regular and grouped) over NHWC, filters `[Co, Kh, Kw, Ci/g]`.

use super::{check_len, QuantIo, Requant, Shape4, Window};
use crate::error::{Error, Result};

/// Scratch bytes the reference convolution needs (none).
pub fn conv2d_scratch_size() -> usize {
    0
}

/// Checks shapes shared by the int8 and float kernels; returns
/// (output channels per group, input channels per group).
fn check_shapes(
    xs: Shape4,
    ws: Shape4,
    win: &Window,
    groups: usize,
    ys: Shape4,
    bias_len: Option<usize>,
) -> Result<(usize, usize)> {
    if groups == 0 || !ws.n.is_multiple_of(groups) || ws.c.checked_mul(groups) != Some(xs.c) {
        return Err(Error::ShapeMismatch(
            "conv: groups do not divide the channels",
        ));
    }
    if ys.c != ws.n || ys.n != xs.n {
        return Err(Error::ShapeMismatch("conv: output channels or batch"));
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
        return Err(Error::ShapeMismatch("conv: output size"));
    }
    if let Some(b) = bias_len {
        if b != ws.n {
            return Err(Error::ShapeMismatch("conv: bias length"));
        }
    }
    Ok((ws.n / groups, ws.c))
}

/// Range of kernel taps `k` (`0..kernel`) whose input coordinate
/// `o*stride - pad + k*dil` falls inside `0..input`.
#[inline(always)]
pub(crate) fn valid_taps(
    o: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    kernel: usize,
    input: usize,
) -> (usize, usize, isize) {
    let origin = (o * stride) as isize - pad as isize;
    let d = dil as isize;
    let mut k0 = 0usize;
    while k0 < kernel && origin + (k0 as isize) * d < 0 {
        k0 += 1;
    }
    let mut k1 = kernel;
    while k1 > k0 && origin + ((k1 - 1) as isize) * d >= input as isize {
        k1 -= 1;
    }
    (k0, k1, origin)
}

/// int8 convolution, TFLite `ConvPerChannel` semantics generalized to groups:
/// `y = clamp(requant(Σ (x - in_zp)·w + bias) + out_zp)`; filter zero point 0.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    bias: Option<&[i32]>,
    rq: Requant<'_>,
    q: QuantIo,
    win: &Window,
    groups: usize,
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    let (co_per_g, ci_per_g) = check_shapes(xs, ws, win, groups, ys, bias.map(|b| b.len()))?;
    check_len(x.len(), xs.numel(), "conv: input length")?;
    check_len(w.len(), ws.numel(), "conv: filter length")?;
    check_len(y.len(), ys.numel(), "conv: output length")?;
    if rq.channels() != 1 && rq.channels() != ws.n {
        return Err(Error::ShapeMismatch("conv: requant channels"));
    }
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = valid_taps(oy, win.stride_h, win.pad_top, win.dil_h, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) =
                    valid_taps(ox, win.stride_w, win.pad_left, win.dil_w, ws.w, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * ys.c;
                for oc in 0..ws.n {
                    let g = oc / co_per_g;
                    let cbase = g * ci_per_g;
                    let mut acc: i32 = 0;
                    for ky in ky0..ky1 {
                        let iy = (iy0 + (ky * win.dil_h) as isize) as usize;
                        for kx in kx0..kx1 {
                            let ix = (ix0 + (kx * win.dil_w) as isize) as usize;
                            let xrow =
                                &x[((b * xs.h + iy) * xs.w + ix) * xs.c + cbase..][..ci_per_g];
                            let wrow = &w[((oc * ws.h + ky) * ws.w + kx) * ws.c..][..ci_per_g];
                            for (&xv, &wv) in xrow.iter().zip(wrow) {
                                acc = acc.wrapping_add((xv as i32 - q.in_zp) * wv as i32);
                            }
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

/// f32 convolution (same layout), clamped to `[act_min, act_max]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_f32(
    x: &[f32],
    xs: Shape4,
    w: &[f32],
    ws: Shape4,
    bias: Option<&[f32]>,
    win: &Window,
    groups: usize,
    act_min: f32,
    act_max: f32,
    y: &mut [f32],
    ys: Shape4,
) -> Result<()> {
    let (co_per_g, ci_per_g) = check_shapes(xs, ws, win, groups, ys, bias.map(|b| b.len()))?;
    check_len(x.len(), xs.numel(), "conv: input length")?;
    check_len(w.len(), ws.numel(), "conv: filter length")?;
    check_len(y.len(), ys.numel(), "conv: output length")?;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = valid_taps(oy, win.stride_h, win.pad_top, win.dil_h, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) =
                    valid_taps(ox, win.stride_w, win.pad_left, win.dil_w, ws.w, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * ys.c;
                for oc in 0..ws.n {
                    let cbase = (oc / co_per_g) * ci_per_g;
                    let mut acc = 0f32;
                    for ky in ky0..ky1 {
                        let iy = (iy0 + (ky * win.dil_h) as isize) as usize;
                        for kx in kx0..kx1 {
                            let ix = (ix0 + (kx * win.dil_w) as isize) as usize;
                            let xrow =
                                &x[((b * xs.h + iy) * xs.w + ix) * xs.c + cbase..][..ci_per_g];
                            let wrow = &w[((oc * ws.h + ky) * ws.w + kx) * ws.c..][..ci_per_g];
                            for (&xv, &wv) in xrow.iter().zip(wrow) {
                                acc += xv * wv;
                            }
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
    use super::*;

    fn naive(
        x: &[f32],
        xs: Shape4,
        w: &[f32],
        ws: Shape4,
        win: &Window,
        g: usize,
        ys: Shape4,
    ) -> [f32; 256] {
        let mut out = [0f32; 256];
        for oy in 0..ys.h {
            for ox in 0..ys.w {
                for oc in 0..ws.n {
                    let mut acc = 0.0;
                    for ky in 0..ws.h {
                        for kx in 0..ws.w {
                            for ic in 0..ws.c {
                                let iy = (oy * win.stride_h + ky * win.dil_h) as isize
                                    - win.pad_top as isize;
                                let ix = (ox * win.stride_w + kx * win.dil_w) as isize
                                    - win.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= xs.h as isize || ix >= xs.w as isize {
                                    continue;
                                }
                                let c = (oc / (ws.n / g)) * ws.c + ic;
                                acc += x[((iy as usize) * xs.w + ix as usize) * xs.c + c]
                                    * w[((oc * ws.h + ky) * ws.w + kx) * ws.c + ic];
                            }
                        }
                    }
                    out[(oy * ys.w + ox) * ys.c + oc] = acc;
                }
            }
        }
        out
    }

    #[test]
    fn f32_matches_naive_with_padding_stride_dilation_groups() {
        let xs = Shape4::new(1, 5, 4, 4);
        let x: [f32; 80] = core::array::from_fn(|i| (i as f32 * 0.37).sin());
        for &(g, stride, dil, pad) in &[(1, 1, 1, 1), (2, 2, 1, 1), (4, 1, 2, 2), (1, 2, 1, 0)] {
            let ws = Shape4::new(4, 3, 3, 4 / g);
            let w: [f32; 144] = core::array::from_fn(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1);
            let w = &w[..ws.numel().unwrap()];
            let win = Window {
                stride_h: stride,
                stride_w: stride,
                dil_h: dil,
                dil_w: dil,
                pad_top: pad,
                pad_left: pad,
                pad_bottom: pad,
                pad_right: pad,
            };
            let oh = Window::out_dim(5, 3, stride, dil, pad, pad).unwrap();
            let ow = Window::out_dim(4, 3, stride, dil, pad, pad).unwrap();
            let ys = Shape4::new(1, oh, ow, 4);
            let mut y = [0f32; 256];
            let n = ys.numel().unwrap();
            conv2d_f32(
                &x,
                xs,
                w,
                ws,
                None,
                &win,
                g,
                f32::MIN,
                f32::MAX,
                &mut y[..n],
                ys,
            )
            .unwrap();
            let want = naive(&x, xs, w, ws, &win, g, ys);
            for i in 0..n {
                assert!(
                    (y[i] - want[i]).abs() < 1e-5,
                    "g={g} s={stride} d={dil} p={pad} i={i}"
                );
            }
        }
    }

    #[test]
    fn s8_identity_filter_requantizes() {
        // 1x1 conv, one channel, weight 1: y = requant(x - zp) + out_zp.
        let xs = Shape4::new(1, 1, 3, 1);
        let x = [10i8, -20, 127];
        let w = [1i8];
        let pairs = [1 << 30, 0]; // × 0.5
        let q = QuantIo {
            in_zp: -10,
            out_zp: 5,
            act_min: -128,
            act_max: 127,
        };
        let win = Window {
            stride_h: 1,
            stride_w: 1,
            dil_h: 1,
            dil_w: 1,
            ..Default::default()
        };
        let mut y = [0i8; 3];
        conv2d_s8(
            &x,
            xs,
            &w,
            Shape4::new(1, 1, 1, 1),
            Some(&[2]),
            Requant::Fixed(&pairs),
            q,
            &win,
            1,
            &mut y,
            xs,
        )
        .unwrap();
        // (10+10+2)/2+5 = 16, (-20+10+2)/2+5 = 1, (127+10+2)/2 = 69.5 → 70 +5 = 75
        assert_eq!(y, [16, 1, 75]);
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let xs = Shape4::new(1, 2, 2, 1);
        let win = Window {
            stride_h: 1,
            stride_w: 1,
            dil_h: 1,
            dil_w: 1,
            ..Default::default()
        };
        let mut y = [0f32; 3];
        let r = conv2d_f32(
            &[0.0; 4],
            xs,
            &[1.0],
            Shape4::new(1, 1, 1, 1),
            None,
            &win,
            1,
            0.0,
            1.0,
            &mut y,
            xs,
        );
        assert!(r.is_err());
        let r = conv2d_f32(
            &[0.0; 4],
            xs,
            &[1.0],
            Shape4::new(1, 1, 1, 1),
            None,
            &win,
            0,
            0.0,
            1.0,
            &mut [0.0; 4],
            xs,
        );
        assert!(r.is_err());
    }
}
