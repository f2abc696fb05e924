//! f32 depthwise convolution with depth multiplier 1: four channels per
//! NEON vector, each tap one `FMLA`, taps in the reference kernel's order
//! and the bias added last; plain Rust elsewhere. Fused multiply-adds
//! round once where the reference rounds twice, so results are within
//! `|opt − ref| ≤ 2(T + 1)·2⁻²⁴·(Σ|x·w| + |bias|)` for `T` taps, not
//! bit-exact.

use super::super::{check_len, taps, Shape4, Window};
use crate::error::Result;

/// Depthwise convolution (multiplier 1). `xs = [N, H, W, C]`, `ws = [1, Kh,
/// Kw, C]`, `ys = [N, Ho, Wo, C]`. No scratch.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_f32_opt(
    x: &[f32],
    xs: Shape4,
    w: &[f32],
    ws: Shape4,
    bias: Option<&[f32]>,
    win: &Window,
    act_min: f32,
    act_max: f32,
    y: &mut [f32],
    ys: Shape4,
) -> Result<()> {
    super::check_depthwise_geometry(xs, ws, win, ys, [x.len(), w.len(), y.len()])?;
    if let Some(b) = bias {
        check_len(b.len(), Some(ws.c), "depthwise conv: bias length")?;
    }
    let c = xs.c;
    for b in 0..xs.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
            for ox in 0..ys.w {
                let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
                let ybase = ((b * ys.h + oy) * ys.w + ox) * c;
                let out = &mut y[ybase..ybase + c];
                // Channels c0.. of this pixel: the valid taps in order.
                let pixel = |c0: usize, out: &mut [f32]| {
                    for (j, o) in out.iter_mut().enumerate() {
                        let ch = c0 + j;
                        let mut acc = 0f32;
                        for ky in ky0..ky1 {
                            let iy = iy0 + (ky - ky0) * win.dil_h;
                            for kx in kx0..kx1 {
                                let ix = ix0 + (kx - kx0) * win.dil_w;
                                acc += x[((b * xs.h + iy) * xs.w + ix) * c + ch]
                                    * w[(ky * ws.w + kx) * c + ch];
                            }
                        }
                        if let Some(bias) = bias {
                            acc += bias[ch];
                        }
                        *o = acc.max(act_min).min(act_max);
                    }
                };
                // The one place this kernel picks its instruction set: NEON
                // takes the pixel's channels in vector registers.
                let done = by_isa!(
                    neon: {
                        let mut at = [0usize; 25];
                        let mut wt = [0usize; 25];
                        let mut n = 0;
                        for ky in ky0..ky1 {
                            let iy = iy0 + (ky - ky0) * win.dil_h;
                            for kx in kx0..kx1 {
                                let ix = ix0 + (kx - kx0) * win.dil_w;
                                if n < at.len() {
                                    at[n] = ((b * xs.h + iy) * xs.w + ix) * c;
                                    wt[n] = (ky * ws.w + kx) * c;
                                }
                                n += 1;
                            }
                        }
                        if n <= at.len() {
                            // SAFETY: NEON is enabled for the whole build
                            // (`by_isa!`'s condition for this arm).
                            unsafe {
                                super::neon::f32::depthwise_pixel_f32(
                                    x,
                                    &at[..n],
                                    w,
                                    &wt[..n],
                                    c,
                                    bias,
                                    act_min,
                                    act_max,
                                    out,
                                )
                            }
                        } else {
                            0
                        }
                    },
                    else: 0,
                );
                pixel(done, &mut out[done..]);
            }
        }
    }
    Ok(())
}
