//! Convolution (regular and grouped) over NHWC, filters `[Co, Kh, Kw, Ci/g]`.
//!
//! Output `(b, oy, ox, oc)` of group `g = oc / (Co/groups)` sums, over the
//! taps whose input pixel `iy = oy·stride_h − pad_top + ky·dil_h` (and the
//! same along x) lies inside the image, input channels
//! `g·Ci/groups .. (g+1)·Ci/groups` times filter `[oc, ky, kx, ·]`.
//! Implicit padding contributes nothing (for int8: it is the input zero
//! point, so `x − in_zp = 0`), as in TFLite's `ConvPerChannel`.

use super::{check_len, check_requant, clamp_f32, sat_i8, taps, QuantIo, Requant, Shape4, Window};
use crate::error::{Error, Result};

/// Scratch bytes the reference convolution needs (none). Optimized kernels
/// (CMSIS-NN style im2col) report their own size through a companion like
/// this one.
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
    if groups == 0 || ws.n.checked_rem(groups) != Some(0) || ws.c.checked_mul(groups) != Some(xs.c)
    {
        return Err(Error::ShapeMismatch(
            "conv: groups do not divide the channels",
        ));
    }
    if ys.c != ws.n || ys.n != xs.n {
        return Err(Error::ShapeMismatch("conv: output channels or batch"));
    }
    if win.out_hw(xs.h, xs.w, ws.h, ws.w) != Some((ys.h, ys.w)) {
        return Err(Error::ShapeMismatch("conv: output size"));
    }
    if bias_len.is_some_and(|b| b != ws.n) {
        return Err(Error::ShapeMismatch("conv: bias length"));
    }
    Ok((ws.n / groups, ws.c))
}

/// int8 convolution, TFLite `ConvPerChannel` semantics generalized to
/// groups: `y = clamp(requant(Σ (x − in_zp)·w + bias, oc) + out_zp)`; the
/// filter zero point is 0. `rq` is per-tensor or per-output-channel.
///
/// Shapes: `xs = [N, H, W, Ci]`, `ws = [Co, Kh, Kw, Ci/groups]`,
/// `ys = [N, Ho, Wo, Co]` with `Ho`, `Wo` given by [`Window::out_dim`].
/// The accumulator wraps like TFLite's int32 arithmetic.
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
    check_requant(&rq, ws.n, "conv: requant channels")?;
    let co = ws.n;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * co;
                for (oc, out) in y[ybase..ybase + co].iter_mut().enumerate() {
                    let cbase = (oc / co_per_g) * ci_per_g;
                    let mut acc: i32 = 0;
                    for ky in ky0..ky1 {
                        let iy = iy0 + (ky - ky0) * win.dil_h;
                        for kx in kx0..kx1 {
                            let ix = ix0 + (kx - kx0) * win.dil_w;
                            let xi = ((b * xs.h + iy) * xs.w + ix) * xs.c + cbase;
                            let wi = ((oc * ws.h + ky) * ws.w + kx) * ws.c;
                            let xrow = &x[xi..xi + ci_per_g];
                            let wrow = &w[wi..wi + ci_per_g];
                            for (&xv, &wv) in xrow.iter().zip(wrow) {
                                let xc = (xv as i32).wrapping_sub(q.in_zp);
                                acc = acc.wrapping_add(xc.wrapping_mul(wv as i32));
                            }
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

/// f32 convolution (same layouts and geometry as [`conv2d_s8`]), clamped
/// to `[act_min, act_max]`. Taps are accumulated in `ky, kx, ci` order,
/// then the bias is added, as TFLite's reference float convolution does.
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
    let co = ws.n;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * co;
                for (oc, out) in y[ybase..ybase + co].iter_mut().enumerate() {
                    let cbase = (oc / co_per_g) * ci_per_g;
                    let mut acc = 0f32;
                    for ky in ky0..ky1 {
                        let iy = iy0 + (ky - ky0) * win.dil_h;
                        for kx in kx0..kx1 {
                            let ix = ix0 + (kx - kx0) * win.dil_w;
                            let xi = ((b * xs.h + iy) * xs.w + ix) * xs.c + cbase;
                            let wi = ((oc * ws.h + ky) * ws.w + kx) * ws.c;
                            let xrow = &x[xi..xi + ci_per_g];
                            let wrow = &w[wi..wi + ci_per_g];
                            for (&xv, &wv) in xrow.iter().zip(wrow) {
                                acc += xv * wv;
                            }
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
    use super::super::quant::multiply_by_quantized_multiplier;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn geom(stride: usize, dil: usize, pad: usize) -> Window {
        Window {
            stride_h: stride,
            stride_w: stride,
            dil_h: dil,
            dil_w: dil,
            pad_top: pad,
            pad_left: pad,
            pad_bottom: pad,
            pad_right: pad,
        }
    }

    fn out_shape(xs: Shape4, ws: Shape4, win: &Window) -> Shape4 {
        let (oh, ow) = win.out_hw(xs.h, xs.w, ws.h, ws.w).unwrap();
        Shape4::new(xs.n, oh, ow, ws.n)
    }

    /// Straightforward definition: every tap tested against the image bounds.
    fn naive_acc(
        x: &[f64],
        xs: Shape4,
        w: &[f64],
        ws: Shape4,
        win: &Window,
        g: usize,
        ys: Shape4,
    ) -> Vec<f64> {
        let mut out = vec![0.0; ys.numel().unwrap()];
        for b in 0..ys.n {
            for oy in 0..ys.h {
                for ox in 0..ys.w {
                    for oc in 0..ws.n {
                        let mut acc = 0.0;
                        for ky in 0..ws.h {
                            for kx in 0..ws.w {
                                let iy = (oy * win.stride_h + ky * win.dil_h) as isize
                                    - win.pad_top as isize;
                                let ix = (ox * win.stride_w + kx * win.dil_w) as isize
                                    - win.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= xs.h as isize || ix >= xs.w as isize {
                                    continue;
                                }
                                for ic in 0..ws.c {
                                    let c = (oc / (ws.n / g)) * ws.c + ic;
                                    let xi =
                                        ((b * xs.h + iy as usize) * xs.w + ix as usize) * xs.c + c;
                                    acc += x[xi] * w[((oc * ws.h + ky) * ws.w + kx) * ws.c + ic];
                                }
                            }
                        }
                        out[((b * ys.h + oy) * ys.w + ox) * ys.c + oc] = acc;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn f32_3x3_same_padding_by_hand() {
        // 4x4 image 1..=16, 3x3 all-ones filter, pad 1: each output is the sum
        // of its in-image 3x3 neighbourhood.
        let xs = Shape4::new(1, 4, 4, 1);
        let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        let w = [1f32; 9];
        let mut y = [0f32; 16];
        let win = geom(1, 1, 1);
        conv2d_f32(
            &x,
            xs,
            &w,
            Shape4::new(1, 3, 3, 1),
            Some(&[0.5]),
            &win,
            1,
            -1e9,
            1e9,
            &mut y,
            xs,
        )
        .unwrap();
        #[rustfmt::skip]
        let want = [
            14.0, 24.0, 30.0, 22.0,
            33.0, 54.0, 63.0, 45.0,
            57.0, 90.0, 99.0, 69.0,
            46.0, 72.0, 78.0, 54.0,
        ];
        for i in 0..16 {
            assert_eq!(y[i], want[i] + 0.5, "pixel {i}");
        }
        // Stride 2: the pixels (0,0), (0,2), (2,0), (2,2) of the above.
        let mut y2 = [0f32; 4];
        conv2d_f32(
            &x,
            xs,
            &w,
            Shape4::new(1, 3, 3, 1),
            None,
            &geom(2, 1, 1),
            1,
            -1e9,
            1e9,
            &mut y2,
            Shape4::new(1, 2, 2, 1),
        )
        .unwrap();
        assert_eq!(y2, [14.0, 30.0, 57.0, 99.0]);
        // Fused ReLU6-style clamp.
        conv2d_f32(
            &x,
            xs,
            &w,
            Shape4::new(1, 3, 3, 1),
            None,
            &win,
            1,
            20.0,
            60.0,
            &mut y,
            xs,
        )
        .unwrap();
        assert_eq!(&y[..4], &[20.0, 24.0, 30.0, 22.0]);
        assert_eq!(y[5], 54.0);
        assert_eq!(y[6], 60.0);
    }

    #[test]
    fn f32_matches_naive_with_padding_stride_dilation_groups() {
        let xs = Shape4::new(2, 5, 4, 4);
        let x: Vec<f32> = (0..xs.numel().unwrap())
            .map(|i| libm::sinf(i as f32 * 0.37))
            .collect();
        let cases = [
            (1, 1, 1, 1, 3),
            (2, 2, 1, 1, 3),
            (4, 1, 2, 2, 3),
            (1, 2, 1, 0, 3),
            (2, 1, 1, 3, 2), // windows entirely in the padding
            (1, 3, 2, 1, 1),
        ];
        for &(g, stride, dil, pad, k) in &cases {
            let ws = Shape4::new(4, k, k, 4 / g);
            let w: Vec<f32> = (0..ws.numel().unwrap())
                .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1)
                .collect();
            let bias = [0.25f32, -0.5, 1.0, 0.0];
            let win = geom(stride, dil, pad);
            let ys = out_shape(xs, ws, &win);
            let mut y = vec![0f32; ys.numel().unwrap()];
            conv2d_f32(
                &x,
                xs,
                &w,
                ws,
                Some(&bias),
                &win,
                g,
                f32::MIN,
                f32::MAX,
                &mut y,
                ys,
            )
            .unwrap();
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let wd: Vec<f64> = w.iter().map(|&v| v as f64).collect();
            let want = naive_acc(&xd, xs, &wd, ws, &win, g, ys);
            for (i, (&got, &acc)) in y.iter().zip(&want).enumerate() {
                let want = acc + bias[i % 4] as f64;
                assert!(
                    (got as f64 - want).abs() < 1e-5,
                    "g={g} s={stride} d={dil} p={pad} k={k} i={i}"
                );
            }
        }
    }

    #[test]
    fn f32_groups_equal_separate_convs() {
        let xs = Shape4::new(1, 4, 4, 6);
        let x: Vec<f32> = (0..96).map(|i| libm::cosf(i as f32 * 0.3)).collect();
        let ws = Shape4::new(4, 3, 3, 3); // 2 groups: 3 in / 2 out channels each
        let w: Vec<f32> = (0..ws.numel().unwrap())
            .map(|i| ((i * 5 % 9) as f32 - 4.0) * 0.25)
            .collect();
        let win = geom(1, 1, 1);
        let ys = out_shape(xs, ws, &win);
        let mut y = vec![0f32; ys.numel().unwrap()];
        conv2d_f32(
            &x,
            xs,
            &w,
            ws,
            None,
            &win,
            2,
            f32::MIN,
            f32::MAX,
            &mut y,
            ys,
        )
        .unwrap();
        for g in 0..2 {
            // Slice the input channels and the filters of group g.
            let xg: Vec<f32> = (0..16)
                .flat_map(|p| x[p * 6 + g * 3..p * 6 + g * 3 + 3].to_vec())
                .collect();
            let wg = &w[g * 2 * 27..(g + 1) * 2 * 27];
            let mut yg = vec![0f32; 32];
            conv2d_f32(
                &xg,
                Shape4::new(1, 4, 4, 3),
                wg,
                Shape4::new(2, 3, 3, 3),
                None,
                &win,
                1,
                f32::MIN,
                f32::MAX,
                &mut yg,
                Shape4::new(1, 4, 4, 2),
            )
            .unwrap();
            for p in 0..16 {
                for c in 0..2 {
                    assert_eq!(y[p * 4 + g * 2 + c], yg[p * 2 + c]);
                }
            }
        }
    }

    #[test]
    fn s8_matches_integer_definition() {
        // Per-channel requantization, zero points, padding, stride, dilation
        // and groups against the definition evaluated exactly.
        let xs = Shape4::new(1, 6, 5, 4);
        let x: Vec<i8> = (0..xs.numel().unwrap())
            .map(|i| ((i * 37 + 11) % 256) as u8 as i8)
            .collect();
        for &(g, stride, dil, pad) in &[(1, 1, 1, 1), (2, 2, 1, 1), (4, 1, 2, 2), (1, 2, 2, 0)] {
            let ws = Shape4::new(4, 3, 3, 4 / g);
            let w: Vec<i8> = (0..ws.numel().unwrap())
                .map(|i| ((i * 53 + 7) % 255) as u8 as i8)
                .collect();
            let bias = [1000, -2000, 0, 77];
            let scales = [0.002, 0.0035, 0.0011, 0.009];
            let mut pairs = [0i32; 8];
            for (c, &s) in scales.iter().enumerate() {
                let (m, sh) = super::super::quant::quantize_multiplier(s);
                pairs[2 * c] = m;
                pairs[2 * c + 1] = sh;
            }
            let q = QuantIo {
                in_zp: -7,
                out_zp: 3,
                act_min: -100,
                act_max: 120,
            };
            let win = geom(stride, dil, pad);
            let ys = out_shape(xs, ws, &win);
            let mut y = vec![0i8; ys.numel().unwrap()];
            conv2d_s8(
                &x,
                xs,
                &w,
                ws,
                Some(&bias),
                Requant::Fixed(&pairs),
                q,
                &win,
                g,
                &mut y,
                ys,
            )
            .unwrap();
            let xd: Vec<f64> = x.iter().map(|&v| (v as i32 - q.in_zp) as f64).collect();
            let wd: Vec<f64> = w.iter().map(|&v| v as f64).collect();
            let accs = naive_acc(&xd, xs, &wd, ws, &win, g, ys);
            for (i, (&got, &acc)) in y.iter().zip(&accs).enumerate() {
                let c = i % 4;
                let acc = acc as i32 + bias[c];
                let v = multiply_by_quantized_multiplier(acc, pairs[2 * c], pairs[2 * c + 1])
                    + q.out_zp;
                assert_eq!(got as i32, v.clamp(q.act_min, q.act_max), "i={i}");
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
        let mut y = [0i8; 3];
        conv2d_s8(
            &x,
            xs,
            &w,
            Shape4::new(1, 1, 1, 1),
            Some(&[2]),
            Requant::Fixed(&pairs),
            q,
            &geom(1, 1, 0),
            1,
            &mut y,
            xs,
        )
        .unwrap();
        // (10+10+2)/2+5 = 16, (-20+10+2)/2+5 = 1, (127+10+2)/2 = 69.5 → 70 +5 = 75
        assert_eq!(y, [16, 1, 75]);
        // onnxruntime-style float requantization: round half to even.
        conv2d_s8(
            &x,
            xs,
            &w,
            Shape4::new(1, 1, 1, 1),
            Some(&[2]),
            Requant::Float(&[0.5]),
            q,
            &geom(1, 1, 0),
            1,
            &mut y,
            xs,
        )
        .unwrap();
        assert_eq!(y, [16, 1, 75]); // 69.5 → 70 (even)
        let q2 = QuantIo { in_zp: -9, ..q };
        conv2d_s8(
            &x,
            xs,
            &w,
            Shape4::new(1, 1, 1, 1),
            Some(&[2]),
            Requant::Float(&[0.5]),
            q2,
            &geom(1, 1, 0),
            1,
            &mut y,
            xs,
        )
        .unwrap();
        // (10+9+2)/2 = 10.5 → 10, (-20+9+2)/2 = -4.5 → -4, (127+9+2)/2 = 69
        assert_eq!(y, [15, 1, 74]);
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let xs = Shape4::new(1, 2, 2, 2);
        let ws = Shape4::new(2, 1, 1, 2);
        let w1 = geom(1, 1, 0);
        let x = [0i8; 8];
        let w = [1i8; 4];
        let q = QuantIo {
            in_zp: 0,
            out_zp: 0,
            act_min: -128,
            act_max: 127,
        };
        let rq = [1 << 30, 0];
        let mut y = [0i8; 8];
        let run =
            |x: &[i8],
             ws: Shape4,
             w: &[i8],
             b: Option<&[i32]>,
             rq: Requant<'_>,
             win: &Window,
             g: usize,
             y: &mut [i8],
             ys: Shape4| { conv2d_s8(x, xs, w, ws, b, rq, q, win, g, y, ys) };
        assert!(run(&x, ws, &w, None, Requant::Fixed(&rq), &w1, 1, &mut y, xs).is_ok());
        let e = Err(Error::ShapeMismatch("conv: input length"));
        assert_eq!(
            run(
                &x[..7],
                ws,
                &w,
                None,
                Requant::Fixed(&rq),
                &w1,
                1,
                &mut y,
                xs
            ),
            e
        );
        assert!(run(
            &x,
            ws,
            &w[..3],
            None,
            Requant::Fixed(&rq),
            &w1,
            1,
            &mut y,
            xs
        )
        .is_err());
        assert!(run(
            &x,
            ws,
            &w,
            None,
            Requant::Fixed(&rq),
            &w1,
            1,
            &mut y[..7],
            xs
        )
        .is_err());
        assert!(run(
            &x,
            ws,
            &w,
            Some(&[1]),
            Requant::Fixed(&rq),
            &w1,
            1,
            &mut y,
            xs
        )
        .is_err());
        assert!(run(
            &x,
            ws,
            &w,
            None,
            Requant::Fixed(&[1, 2, 3]),
            &w1,
            1,
            &mut y,
            xs
        )
        .is_err());
        assert!(run(
            &x,
            ws,
            &w,
            None,
            Requant::Float(&[1.0; 3]),
            &w1,
            1,
            &mut y,
            xs
        )
        .is_err());
        assert!(run(&x, ws, &w, None, Requant::Fixed(&rq), &w1, 0, &mut y, xs).is_err());
        assert!(run(&x, ws, &w, None, Requant::Fixed(&rq), &w1, 3, &mut y, xs).is_err());
        assert!(run(
            &x,
            ws,
            &w,
            None,
            Requant::Fixed(&rq),
            &geom(0, 1, 0),
            1,
            &mut y,
            xs
        )
        .is_err());
        assert!(run(
            &x,
            ws,
            &w,
            None,
            Requant::Fixed(&rq),
            &geom(1, 0, 0),
            1,
            &mut y,
            xs
        )
        .is_err());
        assert!(run(
            &x,
            ws,
            &w,
            None,
            Requant::Fixed(&rq),
            &w1,
            1,
            &mut y,
            Shape4::new(1, 2, 1, 2)
        )
        .is_err());
        let mut big = [0i8; 16];
        assert!(run(
            &x,
            ws,
            &w,
            None,
            Requant::Fixed(&rq),
            &geom(usize::MAX, 1, usize::MAX / 2),
            1,
            &mut big,
            xs
        )
        .is_err());
        // Inverted activation bounds and extreme zero points do not panic.
        let q = QuantIo {
            in_zp: i32::MIN,
            out_zp: i32::MAX,
            act_min: 500,
            act_max: -500,
        };
        conv2d_s8(
            &x,
            xs,
            &w,
            ws,
            Some(&[i32::MAX, i32::MIN]),
            Requant::Fixed(&rq),
            q,
            &w1,
            1,
            &mut y,
            xs,
        )
        .unwrap();
        let mut yf = [0f32; 8];
        assert!(conv2d_f32(
            &[0.0; 8],
            xs,
            &[1.0; 4],
            ws,
            None,
            &w1,
            1,
            0.0,
            1.0,
            &mut yf[..7],
            xs
        )
        .is_err());
        assert!(
            conv2d_f32(&[0.0; 8], xs, &[1.0; 4], ws, None, &w1, 2, 0.0, 1.0, &mut yf, xs).is_err()
        );
        assert!(conv2d_f32(
            &[0.0; 8],
            xs,
            &[1.0; 4],
            ws,
            Some(&[0.0]),
            &w1,
            1,
            0.0,
            1.0,
            &mut yf,
            xs
        )
        .is_err());
        assert_eq!(conv2d_scratch_size(), 0);
    }
}
