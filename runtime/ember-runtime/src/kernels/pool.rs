//! Average and max pooling over NHWC (`[N, H, W, C]` in and out).
//!
//! The window of output `(oy, ox)` covers input rows
//! `oy·stride_h − pad_top + ky·dil_h` for `ky` in `0..kh` (same along x);
//! taps in the implicit padding are skipped (max) or count as zero (average
//! with `count_include_pad`). Pooling normally uses dilation 1; other
//! dilations (ONNX `MaxPool`) are honoured.

use super::{check_len, clamp_f32, sat_i8, taps, Shape4, Window};
use crate::error::{Error, Result};

/// Pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Strides, paddings and dilations (1 for ordinary pooling).
    pub win: Window,
    /// Average over the whole window, padding included (ONNX
    /// `count_include_pad`); otherwise over the in-image taps only, as
    /// TFLite does.
    pub count_include_pad: bool,
}

fn check(xs: Shape4, p: &PoolParams, ys: Shape4, xl: usize, yl: usize) -> Result<()> {
    let w = &p.win;
    if w.out_hw(xs.h, xs.w, p.kh, p.kw) != Some((ys.h, ys.w)) || xs.n != ys.n || xs.c != ys.c {
        return Err(Error::ShapeMismatch("pool: output shape"));
    }
    check_len(xl, xs.numel(), "pool: input length")?;
    check_len(yl, ys.numel(), "pool: output length")
}

/// The in-image taps of one output pixel.
#[derive(Clone, Copy)]
struct Taps {
    /// Offset of input pixel `(b, first row, first column)`, channel 0.
    base: usize,
    rows: usize,
    cols: usize,
    /// Offsets between consecutive tapped rows / columns.
    row_step: usize,
    col_step: usize,
}

impl Taps {
    fn count(&self) -> usize {
        self.rows * self.cols
    }

    /// Flat offsets (channel 0) of the tapped input pixels.
    fn pixels(self) -> impl Iterator<Item = usize> {
        (0..self.rows).flat_map(move |r| {
            (0..self.cols).map(move |c| self.base + r * self.row_step + c * self.col_step)
        })
    }
}

/// Calls `f(output pixel offset, taps)` for every output pixel. Shapes must
/// have passed [`check`].
fn for_each_window(xs: Shape4, p: &PoolParams, ys: Shape4, mut f: impl FnMut(usize, Taps)) {
    let w = &p.win;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = taps(oy, w.stride_h, w.dil_h, w.pad_top, p.kh, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) = taps(ox, w.stride_w, w.dil_w, w.pad_left, p.kw, xs.w);
                let (rows, cols) = (ky1 - ky0, kx1 - kx0);
                let base = if rows == 0 || cols == 0 {
                    0
                } else {
                    ((b * xs.h + iy0) * xs.w + ix0) * xs.c
                };
                let t = Taps {
                    base,
                    rows,
                    cols,
                    // Only multiplied by a non-zero index when the window
                    // has two tapped rows (columns), which bounds it by the
                    // input size; saturate so a lone tap with a huge
                    // dilation cannot overflow.
                    row_step: w.dil_h.saturating_mul(xs.w * xs.c),
                    col_step: w.dil_w.saturating_mul(xs.c),
                };
                f(((b * ys.h + oy) * ys.w + ox) * ys.c, t);
            }
        }
    }
}

/// Divides `num` by `den > 0`, rounding to nearest: ties away from zero
/// (TFLite) or to even (`half_even`, onnxruntime's `nearbyint`).
pub(crate) fn div_round(num: i64, den: i64, half_even: bool) -> i64 {
    if half_even {
        let q = num.div_euclid(den);
        let r = num.rem_euclid(den); // 0 <= r < den; compare 2r with den
        if r > den - r || (r == den - r && q % 2 != 0) {
            q + 1
        } else {
            q
        }
    } else if num > 0 {
        num.saturating_add(den / 2) / den
    } else {
        num.saturating_sub(den / 2) / den
    }
}

/// int8 average pooling, TFLite reference semantics: the sum of the
/// in-image values divided by the number of in-image taps (or `kh·kw` with
/// `count_include_pad`), rounded half away from zero (half to even with
/// `round_half_even`), clamped. Input and output share scale and zero
/// point. Equivalent to [`avg_pool_s8_zp`] with zero point 0.
#[allow(clippy::too_many_arguments)]
pub fn avg_pool_s8(
    x: &[i8],
    xs: Shape4,
    p: &PoolParams,
    round_half_even: bool,
    act_min: i32,
    act_max: i32,
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    avg_pool_s8_zp(x, xs, p, round_half_even, 0, act_min, act_max, y, ys)
}

/// int8 average pooling in the zero-point-centred domain:
/// `round(Σ (x − zero_point) / count) + zero_point`, clamped, where padded
/// taps (counted only with `count_include_pad`) are real zeros, i.e.
/// `zero_point`. This is onnxruntime's semantics (dequantize, average,
/// requantize with the shared scale) for any zero point; with
/// `zero_point = 0` it is TFLite's reference kernel, which averages the raw
/// values. A window entirely in the padding without `count_include_pad`
/// gives `zero_point` (TFLite rejects such a geometry).
#[allow(clippy::too_many_arguments)]
pub fn avg_pool_s8_zp(
    x: &[i8],
    xs: Shape4,
    p: &PoolParams,
    round_half_even: bool,
    zero_point: i32,
    act_min: i32,
    act_max: i32,
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    check(xs, p, ys, x.len(), y.len())?;
    let full = (p.kh as i64).saturating_mul(p.kw as i64);
    let zp = zero_point as i64;
    let c = xs.c;
    for_each_window(xs, p, ys, |ybase, t| {
        let count = if p.count_include_pad {
            full
        } else {
            t.count() as i64
        };
        for (ch, out) in y[ybase..ybase + c].iter_mut().enumerate() {
            let mut sum: i64 = 0;
            for px in t.pixels() {
                sum = sum.wrapping_add(x[px + ch] as i64 - zp);
            }
            let avg = if count == 0 {
                0
            } else {
                div_round(sum, count, round_half_even)
            };
            let v = avg
                .saturating_add(zp)
                .clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            *out = sat_i8(v, act_min, act_max);
        }
    });
    Ok(())
}

/// int8 max pooling over the in-image taps, clamped to
/// `[act_min, act_max]` (TFLite reference semantics).
pub fn max_pool_s8(
    x: &[i8],
    xs: Shape4,
    p: &PoolParams,
    act_min: i32,
    act_max: i32,
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    check(xs, p, ys, x.len(), y.len())?;
    let c = xs.c;
    for_each_window(xs, p, ys, |ybase, t| {
        for (ch, out) in y[ybase..ybase + c].iter_mut().enumerate() {
            let mut m = i8::MIN;
            for px in t.pixels() {
                m = m.max(x[px + ch]);
            }
            *out = sat_i8(m as i32, act_min, act_max);
        }
    });
    Ok(())
}

/// f32 average pooling: the sum of the in-image values (accumulated in
/// window order) divided by the in-image tap count, or by `kh·kw` with
/// `count_include_pad`; clamped. An empty window gives 0.
#[allow(clippy::too_many_arguments)]
pub fn avg_pool_f32(
    x: &[f32],
    xs: Shape4,
    p: &PoolParams,
    act_min: f32,
    act_max: f32,
    y: &mut [f32],
    ys: Shape4,
) -> Result<()> {
    check(xs, p, ys, x.len(), y.len())?;
    let full = p.kh.saturating_mul(p.kw);
    let c = xs.c;
    for_each_window(xs, p, ys, |ybase, t| {
        let count = if p.count_include_pad { full } else { t.count() };
        for (ch, out) in y[ybase..ybase + c].iter_mut().enumerate() {
            let mut sum = 0f32;
            for px in t.pixels() {
                sum += x[px + ch];
            }
            let v = if count == 0 { 0.0 } else { sum / count as f32 };
            *out = clamp_f32(v, act_min, act_max);
        }
    });
    Ok(())
}

/// f32 max pooling over the in-image taps, clamped to `[act_min, act_max]`.
#[allow(clippy::too_many_arguments)]
pub fn max_pool_f32(
    x: &[f32],
    xs: Shape4,
    p: &PoolParams,
    act_min: f32,
    act_max: f32,
    y: &mut [f32],
    ys: Shape4,
) -> Result<()> {
    check(xs, p, ys, x.len(), y.len())?;
    let c = xs.c;
    for_each_window(xs, p, ys, |ybase, t| {
        for (ch, out) in y[ybase..ybase + c].iter_mut().enumerate() {
            let mut m = f32::NEG_INFINITY;
            for px in t.pixels() {
                m = m.max(x[px + ch]);
            }
            *out = clamp_f32(m, act_min, act_max);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn p(k: usize, s: usize, pad: usize) -> PoolParams {
        PoolParams {
            kh: k,
            kw: k,
            win: Window {
                stride_h: s,
                stride_w: s,
                dil_h: 1,
                dil_w: 1,
                pad_top: pad,
                pad_left: pad,
                pad_bottom: pad,
                pad_right: pad,
            },
            count_include_pad: false,
        }
    }

    fn out(xs: Shape4, p: &PoolParams) -> Shape4 {
        let w = &p.win;
        let (oh, ow) = w.out_hw(xs.h, xs.w, p.kh, p.kw).unwrap();
        Shape4::new(xs.n, oh, ow, xs.c)
    }

    /// In-image values of the window of output (b, oy, ox, ch), by definition.
    fn window_values(
        x: &[i8],
        xs: Shape4,
        p: &PoolParams,
        b: usize,
        oy: usize,
        ox: usize,
        ch: usize,
    ) -> Vec<i32> {
        let w = &p.win;
        let mut v = Vec::new();
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                let iy = (oy * w.stride_h + ky * w.dil_h) as isize - w.pad_top as isize;
                let ix = (ox * w.stride_w + kx * w.dil_w) as isize - w.pad_left as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < xs.h && (ix as usize) < xs.w {
                    v.push(x[((b * xs.h + iy as usize) * xs.w + ix as usize) * xs.c + ch] as i32);
                }
            }
        }
        v
    }

    #[test]
    fn s8_average_rounds_half_away() {
        // 2x2 window over [1,2,3,4] (sum 10 / 4 = 2.5 → 3) and negatives (-2.5 → -3)
        let xs = Shape4::new(1, 2, 2, 2);
        let x = [1i8, -1, 2, -2, 3, -3, 4, -4];
        let mut y = [0i8; 2];
        let ys = Shape4::new(1, 1, 1, 2);
        avg_pool_s8(&x, xs, &p(2, 2, 0), false, -128, 127, &mut y, ys).unwrap();
        assert_eq!(y, [3, -3]);
        avg_pool_s8(&x, xs, &p(2, 2, 0), true, -128, 127, &mut y, ys).unwrap();
        assert_eq!(y, [2, -2]);
        // Round half to even in the zero-point-centred domain: zero point 1
        // gives (10 - 4)/4 = 1.5 → 2, + 1 = 3 and (-10 - 4)/4 = -3.5 → -4, + 1.
        avg_pool_s8_zp(&x, xs, &p(2, 2, 0), true, 1, -128, 127, &mut y, ys).unwrap();
        assert_eq!(y, [3, -3]);
        // Fused clamp.
        avg_pool_s8(&x, xs, &p(2, 2, 0), false, -1, 1, &mut y, ys).unwrap();
        assert_eq!(y, [1, -1]);
    }

    #[test]
    fn s8_matches_definition() {
        let xs = Shape4::new(2, 5, 6, 3);
        let x: Vec<i8> = (0..xs.numel().unwrap())
            .map(|i| ((i * 71 + 13) % 256) as u8 as i8)
            .collect();
        for &(k, s, pad) in &[(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 1), (5, 3, 2)] {
            let pp = p(k, s, pad);
            let ys = out(xs, &pp);
            let n = ys.numel().unwrap();
            let (mut avg, mut avg_even, mut mx) = (vec![0i8; n], vec![0i8; n], vec![0i8; n]);
            avg_pool_s8(&x, xs, &pp, false, -128, 127, &mut avg, ys).unwrap();
            avg_pool_s8(&x, xs, &pp, true, -128, 127, &mut avg_even, ys).unwrap();
            max_pool_s8(&x, xs, &pp, -100, 100, &mut mx, ys).unwrap();
            for b in 0..ys.n {
                for oy in 0..ys.h {
                    for ox in 0..ys.w {
                        for ch in 0..ys.c {
                            let o = ((b * ys.h + oy) * ys.w + ox) * ys.c + ch;
                            let v = window_values(&x, xs, &pp, b, oy, ox, ch);
                            let (sum, cnt) = (v.iter().sum::<i32>(), v.len() as i32);
                            // TFLite's expression, C division truncating toward zero.
                            let want = if sum > 0 {
                                (sum + cnt / 2) / cnt
                            } else {
                                (sum - cnt / 2) / cnt
                            };
                            assert_eq!(avg[o] as i32, want);
                            let exact = sum as f64 / cnt as f64;
                            assert_eq!(avg_even[o] as i32, libm::rint(exact) as i32);
                            let m = *v.iter().max().unwrap();
                            assert_eq!(mx[o] as i32, m.clamp(-100, 100));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn padding_excluded_or_included_in_count() {
        let xs = Shape4::new(1, 2, 2, 1);
        let x = [4.0f32, 8.0, 12.0, 16.0];
        let mut y = [0f32; 4];
        let ys = Shape4::new(1, 2, 2, 1);
        avg_pool_f32(&x, xs, &p(3, 1, 1), f32::MIN, f32::MAX, &mut y, ys).unwrap();
        assert_eq!(y, [10.0; 4]);
        let mut pi = p(3, 1, 1);
        pi.count_include_pad = true;
        avg_pool_f32(&x, xs, &pi, f32::MIN, f32::MAX, &mut y, ys).unwrap();
        assert_eq!(y, [40.0 / 9.0; 4]);
        max_pool_f32(&x, xs, &p(3, 1, 1), f32::MIN, f32::MAX, &mut y, ys).unwrap();
        assert_eq!(y, [16.0; 4]);
        max_pool_f32(&x, xs, &p(3, 1, 1), 0.0, 6.0, &mut y, ys).unwrap();
        assert_eq!(y, [6.0; 4]);
        // int8 with count_include_pad: padding is the zero point (real 0).
        let xq = [4i8, 8, 12, 16];
        let mut yq = [0i8; 4];
        avg_pool_s8_zp(&xq, xs, &pi, true, 2, -128, 127, &mut yq, ys).unwrap();
        // (40 - 4·2)/9 = 3.56 → 4, + 2
        assert_eq!(yq, [6; 4]);
        avg_pool_s8(&xq, xs, &pi, false, -128, 127, &mut yq, ys).unwrap();
        assert_eq!(yq, [4; 4]); // 40/9 = 4.44
    }

    #[test]
    fn dilated_max_pool_and_all_padding_windows() {
        // 1x5 row, kernel 1x2 with dilation 2: max(x[i], x[i+2]).
        let x = [1.0f32, 5.0, 2.0, -1.0, 3.0];
        let xs = Shape4::new(1, 1, 5, 1);
        let pp = PoolParams {
            kh: 1,
            kw: 2,
            win: Window {
                stride_h: 1,
                stride_w: 1,
                dil_h: 1,
                dil_w: 2,
                ..Default::default()
            },
            count_include_pad: false,
        };
        let mut y = [0f32; 3];
        max_pool_f32(
            &x,
            xs,
            &pp,
            f32::MIN,
            f32::MAX,
            &mut y,
            Shape4::new(1, 1, 3, 1),
        )
        .unwrap();
        assert_eq!(y, [2.0, 5.0, 3.0]);
        // Padding larger than the kernel: corner windows see no pixel.
        let xs = Shape4::new(1, 1, 1, 1);
        let pp = p(1, 1, 1);
        let ys = out(xs, &pp);
        assert_eq!(ys, Shape4::new(1, 3, 3, 1));
        let mut yq = [0i8; 9];
        avg_pool_s8_zp(&[50], xs, &pp, false, -3, -128, 127, &mut yq, ys).unwrap();
        assert_eq!(yq, [-3, -3, -3, -3, 50, -3, -3, -3, -3]);
        max_pool_s8(&[50], xs, &pp, -128, 127, &mut yq, ys).unwrap();
        assert_eq!(yq, [-128, -128, -128, -128, 50, -128, -128, -128, -128]);
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let xs = Shape4::new(1, 4, 4, 1);
        let ys = Shape4::new(1, 2, 2, 1);
        let pp = p(2, 2, 0);
        let x = [0i8; 16];
        let mut y = [0i8; 4];
        assert!(max_pool_s8(&x, xs, &pp, -128, 127, &mut y, ys).is_ok());
        assert!(max_pool_s8(&x[..15], xs, &pp, -128, 127, &mut y, ys).is_err());
        assert!(max_pool_s8(&x, xs, &pp, -128, 127, &mut y[..3], ys).is_err());
        assert!(avg_pool_s8(
            &x,
            xs,
            &pp,
            false,
            -128,
            127,
            &mut y,
            Shape4::new(1, 3, 2, 1)
        )
        .is_err());
        assert!(avg_pool_s8(&x, xs, &p(2, 0, 0), false, -128, 127, &mut y, ys).is_err());
        assert!(avg_pool_s8(&x, xs, &p(0, 2, 0), false, -128, 127, &mut y, ys).is_err());
        assert!(avg_pool_s8(&x, xs, &p(5, 2, 0), false, -128, 127, &mut y, ys).is_err());
        assert!(avg_pool_f32(
            &[0.0; 16],
            xs,
            &pp,
            0.0,
            1.0,
            &mut [0.0; 4],
            Shape4::new(1, 2, 2, 2)
        )
        .is_err());
        assert!(max_pool_f32(&[0.0; 15], xs, &pp, 0.0, 1.0, &mut [0.0; 4], ys).is_err());
        // Inverted bounds, extreme zero points and a huge count_include_pad
        // window do not panic.
        avg_pool_s8_zp(&[127; 16], xs, &pp, true, i32::MIN, 100, -100, &mut y, ys).unwrap();
        avg_pool_s8_zp(&[-128; 16], xs, &pp, false, i32::MAX, 100, -100, &mut y, ys).unwrap();
        let huge = PoolParams {
            kh: 1 << 40,
            kw: 1 << 40,
            win: Window {
                stride_h: 1,
                stride_w: 1,
                dil_h: 1,
                dil_w: 1,
                pad_top: 1 << 40,
                pad_left: 1 << 40,
                pad_bottom: 0,
                pad_right: 0,
            },
            count_include_pad: true,
        };
        let hs = out(Shape4::new(1, 1, 1, 1), &huge);
        assert_eq!(hs, Shape4::new(1, 2, 2, 1));
        avg_pool_s8_zp(
            &[100],
            Shape4::new(1, 1, 1, 1),
            &huge,
            true,
            0,
            -128,
            127,
            &mut y,
            hs,
        )
        .unwrap();
        assert_eq!(y, [0; 4]);
    }
}
