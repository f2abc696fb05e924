//! Average and max pooling over NHWC.

use super::conv::valid_taps;
use super::{check_len, Shape4, Window};
use crate::error::{Error, Result};

/// Pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Strides and paddings (dilations are 1).
    pub win: Window,
    /// Average over the whole window including padding (else only over
    /// in-image taps, as TFLite does).
    pub count_include_pad: bool,
}

fn check(xs: Shape4, p: &PoolParams, ys: Shape4, xl: usize, yl: usize) -> Result<()> {
    let w = &p.win;
    let oh = Window::out_dim(xs.h, p.kh, w.stride_h, 1, w.pad_top, w.pad_bottom);
    let ow = Window::out_dim(xs.w, p.kw, w.stride_w, 1, w.pad_left, w.pad_right);
    if oh != Some(ys.h) || ow != Some(ys.w) || xs.n != ys.n || xs.c != ys.c {
        return Err(Error::ShapeMismatch("pool: output shape"));
    }
    check_len(xl, xs.numel(), "pool: input length")?;
    check_len(yl, ys.numel(), "pool: output length")
}

/// Calls `f(out_index, in_indices_iterator_params)` per output pixel and channel.
#[inline]
fn for_windows(
    xs: Shape4,
    p: &PoolParams,
    ys: Shape4,
    mut f: impl FnMut(usize, usize, (usize, usize, isize), (usize, usize, isize), usize),
) {
    let w = &p.win;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let ty = valid_taps(oy, w.stride_h, w.pad_top, 1, p.kh, xs.h);
            for ox in 0..ys.w {
                let tx = valid_taps(ox, w.stride_w, w.pad_left, 1, p.kw, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * ys.c;
                f(ybase, b, ty, tx, xs.c);
            }
        }
    }
}

/// int8 average pooling (TFLite reference: in-image taps only, rounding
/// half away from zero; `round_half_even` selects onnxruntime rounding).
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
    check(xs, p, ys, x.len(), y.len())?;
    for_windows(
        xs,
        p,
        ys,
        |ybase, b, (ky0, ky1, iy0), (kx0, kx1, ix0), c| {
            let count = if p.count_include_pad {
                (p.kh * p.kw) as i32
            } else {
                ((ky1 - ky0) * (kx1 - kx0)) as i32
            };
            for ch in 0..c {
                let mut sum: i32 = 0;
                for ky in ky0..ky1 {
                    let iy = (iy0 + ky as isize) as usize;
                    for kx in kx0..kx1 {
                        let ix = (ix0 + kx as isize) as usize;
                        sum += x[((b * xs.h + iy) * xs.w + ix) * c + ch] as i32;
                    }
                }
                let avg = if count == 0 {
                    0
                } else if round_half_even {
                    let q = sum.div_euclid(count);
                    let r2 = 2 * sum.rem_euclid(count);
                    if r2 > count || (r2 == count && q % 2 != 0) {
                        q + 1
                    } else {
                        q
                    }
                } else if sum > 0 {
                    (sum + count / 2) / count
                } else {
                    (sum - count / 2) / count
                };
                y[ybase + ch] = avg.clamp(act_min, act_max) as i8;
            }
        },
    );
    Ok(())
}

/// int8 max pooling.
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
    for_windows(
        xs,
        p,
        ys,
        |ybase, b, (ky0, ky1, iy0), (kx0, kx1, ix0), c| {
            for ch in 0..c {
                let mut m = i32::MIN;
                for ky in ky0..ky1 {
                    let iy = (iy0 + ky as isize) as usize;
                    for kx in kx0..kx1 {
                        let ix = (ix0 + kx as isize) as usize;
                        m = m.max(x[((b * xs.h + iy) * xs.w + ix) * c + ch] as i32);
                    }
                }
                y[ybase + ch] = m.clamp(act_min, act_max) as i8;
            }
        },
    );
    Ok(())
}

/// f32 average pooling.
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
    for_windows(
        xs,
        p,
        ys,
        |ybase, b, (ky0, ky1, iy0), (kx0, kx1, ix0), c| {
            let count = if p.count_include_pad {
                p.kh * p.kw
            } else {
                (ky1 - ky0) * (kx1 - kx0)
            };
            for ch in 0..c {
                let mut sum = 0f32;
                for ky in ky0..ky1 {
                    let iy = (iy0 + ky as isize) as usize;
                    for kx in kx0..kx1 {
                        let ix = (ix0 + kx as isize) as usize;
                        sum += x[((b * xs.h + iy) * xs.w + ix) * c + ch];
                    }
                }
                let v = if count == 0 { 0.0 } else { sum / count as f32 };
                y[ybase + ch] = v.max(act_min).min(act_max);
            }
        },
    );
    Ok(())
}

/// f32 max pooling.
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
    for_windows(
        xs,
        p,
        ys,
        |ybase, b, (ky0, ky1, iy0), (kx0, kx1, ix0), c| {
            for ch in 0..c {
                let mut m = f32::NEG_INFINITY;
                for ky in ky0..ky1 {
                    let iy = (iy0 + ky as isize) as usize;
                    for kx in kx0..kx1 {
                        let ix = (ix0 + kx as isize) as usize;
                        m = m.max(x[((b * xs.h + iy) * xs.w + ix) * c + ch]);
                    }
                }
                y[ybase + ch] = m.max(act_min).min(act_max);
            }
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn s8_average_rounds_half_away() {
        // 2x2 window over [1,2,3,4] (sum 10 / 4 = 2.5 → 3) and negatives (-2.5 → -3)
        let xs = Shape4::new(1, 2, 2, 2);
        let x = [1i8, -1, 2, -2, 3, -3, 4, -4];
        let mut y = [0i8; 2];
        avg_pool_s8(
            &x,
            xs,
            &p(2, 2, 0),
            false,
            -128,
            127,
            &mut y,
            Shape4::new(1, 1, 1, 2),
        )
        .unwrap();
        assert_eq!(y, [3, -3]);
        avg_pool_s8(
            &x,
            xs,
            &p(2, 2, 0),
            true,
            -128,
            127,
            &mut y,
            Shape4::new(1, 1, 1, 2),
        )
        .unwrap();
        assert_eq!(y, [2, -2]);
    }

    #[test]
    fn padding_excluded_from_count() {
        let xs = Shape4::new(1, 2, 2, 1);
        let x = [4.0f32, 8.0, 12.0, 16.0];
        let mut y = [0f32; 4];
        avg_pool_f32(
            &x,
            xs,
            &p(3, 1, 1),
            f32::MIN,
            f32::MAX,
            &mut y,
            Shape4::new(1, 2, 2, 1),
        )
        .unwrap();
        assert_eq!(y, [10.0; 4]);
        max_pool_f32(
            &x,
            xs,
            &p(3, 1, 1),
            f32::MIN,
            f32::MAX,
            &mut y,
            Shape4::new(1, 2, 2, 1),
        )
        .unwrap();
        assert_eq!(y, [16.0; 4]);
    }
}
