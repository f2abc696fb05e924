//! Transposed convolution (ONNX `ConvTranspose`), f32 on NHWC: every input
//! pixel scatters its filter-weighted values into the output window it
//! covers. Output row `oh` receives input row `ih` through filter row `kh`
//! when `oh = ih·stride_h − pad_top + kh·dil_h` (same along x); the output
//! extent (and so the bottom/right padding and any output padding) is the
//! output tensor's.

use super::{clamp_f32, Shape4, Window};
use crate::error::{Error, Result};

/// Filter geometry of a transposed convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTransposeGeometry {
    /// Filter height.
    pub kh: usize,
    /// Filter width.
    pub kw: usize,
    /// Strides, dilations, and the top/left padding cut from the output
    /// (bottom/right padding is implied by the output size).
    pub win: Window,
    /// Channel groups.
    pub groups: usize,
}

/// `y = act(bias + Σ x ⊛ᵀ w)`: `x` NHWC `[n, h, w, c]`, `w`
/// `[kh, kw, c, m/groups]`, `bias` `[m]`, `y` NHWC `[n, oh, ow, m]`,
/// clamped to `[lo, hi]`.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose_f32(
    x: &[f32],
    xs: Shape4,
    w: &[f32],
    bias: Option<&[f32]>,
    g: &ConvTransposeGeometry,
    lo: f32,
    hi: f32,
    y: &mut [f32],
    ys: Shape4,
) -> Result<()> {
    let bad = |why| Err(Error::ShapeMismatch(why));
    if g.groups == 0
        || !xs.c.is_multiple_of(g.groups)
        || !ys.c.is_multiple_of(g.groups)
        || xs.n != ys.n
    {
        return bad("conv_transpose: channels or groups");
    }
    let (cg, mg) = (xs.c / g.groups, ys.c / g.groups);
    if xs.numel() != Some(x.len()) || ys.numel() != Some(y.len()) {
        return bad("conv_transpose: lengths");
    }
    if g.kh
        .checked_mul(g.kw)
        .and_then(|v| v.checked_mul(xs.c))
        .and_then(|v| v.checked_mul(mg))
        != Some(w.len())
    {
        return bad("conv_transpose: filter length");
    }
    if bias.is_some_and(|b| b.len() != ys.c) {
        return bad("conv_transpose: bias length");
    }
    let win = &g.win;
    for p in y.chunks_exact_mut(ys.c.max(1)) {
        match bias {
            Some(b) => p.copy_from_slice(b),
            None => p.fill(0.0),
        }
    }
    for n in 0..xs.n {
        for ih in 0..xs.h {
            for iw in 0..xs.w {
                let xp = &x[((n * xs.h + ih) * xs.w + iw) * xs.c..][..xs.c];
                for kh in 0..g.kh {
                    let oh = (ih * win.stride_h + kh * win.dil_h) as isize - win.pad_top as isize;
                    if oh < 0 || oh as usize >= ys.h {
                        continue;
                    }
                    for kw in 0..g.kw {
                        let ow =
                            (iw * win.stride_w + kw * win.dil_w) as isize - win.pad_left as isize;
                        if ow < 0 || ow as usize >= ys.w {
                            continue;
                        }
                        let yo = ((n * ys.h + oh as usize) * ys.w + ow as usize) * ys.c;
                        let wk = (kh * g.kw + kw) * xs.c * mg;
                        for (c, &v) in xp.iter().enumerate() {
                            let grp = c / cg;
                            let wr = &w[wk + c * mg..][..mg];
                            let yr = &mut y[yo + grp * mg..][..mg];
                            for (o, &wv) in yr.iter_mut().zip(wr) {
                                *o += v * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    for o in y.iter_mut() {
        *o = clamp_f32(*o, lo, hi);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(k: usize, s: usize, pad: usize) -> ConvTransposeGeometry {
        ConvTransposeGeometry {
            kh: 1,
            kw: k,
            win: Window {
                stride_h: 1,
                stride_w: s,
                dil_h: 1,
                dil_w: 1,
                pad_top: 0,
                pad_left: pad,
                pad_bottom: 0,
                pad_right: 0,
            },
            groups: 1,
        }
    }

    #[test]
    fn one_dimensional_stride_two() {
        // x = [1, 2], w = [1, 10, 100], stride 2 → 5 outputs:
        // [1, 10, 100+2, 20, 200].
        let mut y = [0f32; 5];
        let xs = Shape4::new(1, 1, 2, 1);
        let ys = Shape4::new(1, 1, 5, 1);
        let w = [1.0, 10.0, 100.0];
        conv_transpose_f32(
            &[1.0, 2.0],
            xs,
            &w,
            None,
            &geo(3, 2, 0),
            f32::MIN,
            f32::MAX,
            &mut y,
            ys,
        )
        .unwrap();
        assert_eq!(y, [1.0, 10.0, 102.0, 20.0, 200.0]);
        // Padding 1 cuts one output at each end; bias and clamp apply.
        let mut y3 = [0f32; 3];
        let ys3 = Shape4::new(1, 1, 3, 1);
        conv_transpose_f32(
            &[1.0, 2.0],
            xs,
            &w,
            Some(&[1.0]),
            &geo(3, 2, 1),
            0.0,
            50.0,
            &mut y3,
            ys3,
        )
        .unwrap();
        assert_eq!(y3, [11.0, 50.0, 21.0]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let xs = Shape4::new(1, 1, 2, 1);
        let ys = Shape4::new(1, 1, 5, 1);
        let mut y = [0f32; 5];
        let w = [1.0, 10.0];
        let e = conv_transpose_f32(
            &[1.0, 2.0],
            xs,
            &w,
            None,
            &geo(3, 2, 0),
            0.0,
            1.0,
            &mut y,
            ys,
        );
        assert!(e.is_err(), "filter length");
    }
}
