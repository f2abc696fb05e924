//! f32 convolution (one group) and fully connected as matrix products: each
//! output pixel's receptive field (the input row itself for a pointwise
//! convolution or a fully-connected row, otherwise gathered into scratch)
//! times the filter rows, four pixels and four output channels per pass.
//!
//! On aarch64 the products are NEON `FMLA` (fused multiply-add) with four
//! partial sums per row, added pairwise at the end; elsewhere plain Rust in
//! the reference kernels' order, the four pixels as the four lanes of one
//! vector (interleaved a block at a time), which LLVM turns into Helium
//! `VMUL`/`VADD` on the Cortex-M55: each lane still sums its own products
//! one after the other, unfused, so the convolution is bit-exact with the
//! reference (the fully connected reference sums in f64, so there the
//! blocked kernel is within the bound below). Floating-point sums in
//! another order round differently, so the NEON results are not
//! bit-exact; the bound the tests check is the
//! classic one for any summation order: with `u = 2⁻²⁴`, `|opt − ref| ≤
//! 2(K + 1)·u·(Σ|x·w| + |bias|)`.

use super::super::{check_len, taps, Shape4, Window};
use crate::error::{Error, Result};

/// Scratch bytes [`conv2d_f32_opt`] needs: four receptive fields of f32
/// (none for a pointwise convolution).
pub fn conv2d_f32_opt_scratch_size(ws: Shape4, win: &Window) -> usize {
    if super::conv::is_pointwise(ws, win) {
        0
    } else {
        ws.h.saturating_mul(ws.w)
            .saturating_mul(ws.c)
            .saturating_mul(4 * core::mem::size_of::<f32>())
    }
}

/// Gathers output pixel `pix`'s receptive field into `dst` (`Kh·Kw·Ci`
/// values, zeros in the padding).
#[allow(clippy::too_many_arguments)]
fn gather(
    x: &[f32],
    xs: Shape4,
    ws: Shape4,
    win: &Window,
    ys: Shape4,
    pix: usize,
    dst: &mut [f32],
) {
    let ci = xs.c;
    let (b, rest) = (pix / (ys.h * ys.w), pix % (ys.h * ys.w));
    let (oy, ox) = (rest / ys.w, rest % ys.w);
    let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
    let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
    let run = ws.w * ci;
    for ky in 0..ws.h {
        let d = &mut dst[ky * run..(ky + 1) * run];
        if ky < ky0 || ky >= ky1 {
            d.fill(0.0);
            continue;
        }
        let iy = iy0 + (ky - ky0) * win.dil_h;
        let row = ((b * xs.h + iy) * xs.w) * ci;
        d[..kx0 * ci].fill(0.0);
        d[kx1 * ci..].fill(0.0);
        for kx in kx0..kx1 {
            let s = row + (ix0 + (kx - kx0) * win.dil_w) * ci;
            d[kx * ci..(kx + 1) * ci].copy_from_slice(&x[s..s + ci]);
        }
    }
}

/// `P` rows of length `k` times every filter row of `w` (`[Co, k]`), bias,
/// clamp to `[lo, hi]`, into `out[i]` (length Co).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn rows_times_filters<const P: usize>(
    p: [&[f32]; P],
    w: &[f32],
    k: usize,
    bias: Option<&[f32]>,
    lo: f32,
    hi: f32,
    out: [&mut [f32]; P],
) {
    let co = out.iter().map(|o| o.len()).min().unwrap_or(0);
    let mut out = out;
    // The one place the f32 convolution and fully connected kernels pick
    // their instruction set: NEON takes the channels it can.
    let done = by_isa!(
        neon: {
            let o = out.each_mut().map(|o| &mut **o);
            // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
            // condition for this arm).
            unsafe { super::neon::f32::rows_times_filters_f32(p, w, k, bias, lo, hi, o) }
        },
        else: 0,
    );
    if P == 4 && done < co {
        four_rows_in_lanes(&p, w, k, bias, lo, hi, &mut out, done..co);
        return;
    }
    for (f, o) in p.iter().zip(out.iter_mut()) {
        for c in done..co {
            let r = &w[c * k..(c + 1) * k];
            let mut acc = 0f32;
            for (&a, &b) in f.iter().zip(r) {
                acc += a * b;
            }
            if let Some(b) = bias {
                acc += b[c];
            }
            o[c] = acc.max(lo).min(hi);
        }
    }
}

/// Values of the four rows interleaved per block: 1 KiB of stack.
const LANE_BLOCK: usize = 64;

/// [`rows_times_filters`] for four rows and channels `chans`, in the
/// reference order: each row's sum for a channel is `0 + x₀w₀ + x₁w₁ + …`
/// then `+ bias`, one lane of a four-wide vector per row. The rows are
/// interleaved [`LANE_BLOCK`] values at a time (so the four values of one
/// position load as one vector); the running sums wait in `out` between
/// blocks (stored and reloaded exactly).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn four_rows_in_lanes(
    p: &[&[f32]],
    w: &[f32],
    k: usize,
    bias: Option<&[f32]>,
    lo: f32,
    hi: f32,
    out: &mut [&mut [f32]],
    chans: core::ops::Range<usize>,
) {
    let ([p0, p1, p2, p3], [o0, o1, o2, o3]) = (p, out) else {
        return;
    };
    let mut lanes = [[0f32; 4]; LANE_BLOCK];
    let mut j0 = 0;
    while j0 < k {
        let n = (k - j0).min(LANE_BLOCK);
        for (j, l) in lanes[..n].iter_mut().enumerate() {
            *l = [p0[j0 + j], p1[j0 + j], p2[j0 + j], p3[j0 + j]];
        }
        for c in chans.clone() {
            let r = &w[c * k + j0..c * k + j0 + n];
            let mut acc = if j0 == 0 {
                [0f32; 4]
            } else {
                [o0[c], o1[c], o2[c], o3[c]]
            };
            for (l, &wv) in lanes[..n].iter().zip(r) {
                for q in 0..4 {
                    acc[q] += l[q] * wv;
                }
            }
            [o0[c], o1[c], o2[c], o3[c]] = acc;
        }
        j0 += n;
    }
    for c in chans {
        let mut acc = if k == 0 {
            [0f32; 4]
        } else {
            [o0[c], o1[c], o2[c], o3[c]]
        };
        if let Some(b) = bias {
            for a in &mut acc {
                *a += b[c];
            }
        }
        [o0[c], o1[c], o2[c], o3[c]] = acc.map(|a| a.max(lo).min(hi));
    }
}

/// f32 convolution with one group, within the bound of the module comment
/// of [`crate::kernels::conv::conv2d_f32`]. `scratch` holds at least
/// [`conv2d_f32_opt_scratch_size`] bytes, 4-byte aligned.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_f32_opt(
    x: &[f32],
    xs: Shape4,
    w: &[f32],
    ws: Shape4,
    bias: Option<&[f32]>,
    win: &Window,
    act_min: f32,
    act_max: f32,
    scratch: &mut [u8],
    y: &mut [f32],
    ys: Shape4,
) -> Result<()> {
    super::check_conv_geometry(xs, ws, win, ys, [x.len(), w.len(), y.len()])?;
    if let Some(b) = bias {
        check_len(b.len(), Some(ws.n), "conv: bias length")?;
    }
    let co = ws.n;
    let k = ws.h * ws.w * xs.c;
    let npix = ys.n * ys.h * ys.w;
    if co == 0 {
        return Ok(());
    }
    let (lo, hi) = (act_min, act_max);
    if super::conv::is_pointwise(ws, win) {
        let mut pix = 0;
        while pix + 4 <= npix {
            let (o0, rest) = y[pix * co..(pix + 4) * co].split_at_mut(co);
            let (o1, rest) = rest.split_at_mut(co);
            let (o2, o3) = rest.split_at_mut(co);
            let f = [
                &x[pix * k..(pix + 1) * k],
                &x[(pix + 1) * k..(pix + 2) * k],
                &x[(pix + 2) * k..(pix + 3) * k],
                &x[(pix + 3) * k..(pix + 4) * k],
            ];
            rows_times_filters(f, w, k, bias, lo, hi, [o0, o1, o2, o3]);
            pix += 4;
        }
        for pix in pix..npix {
            let o = &mut y[pix * co..(pix + 1) * co];
            rows_times_filters([&x[pix * k..(pix + 1) * k]], w, k, bias, lo, hi, [o]);
        }
        return Ok(());
    }
    let need = conv2d_f32_opt_scratch_size(ws, win);
    let fields: &mut [f32] = scratch
        .get_mut(..need)
        .and_then(|s| bytemuck::try_cast_slice_mut(s).ok())
        .ok_or(Error::ShapeMismatch(
            "conv: scratch too small or misaligned",
        ))?;
    let (f0, rest) = fields.split_at_mut(k);
    let (f1, rest) = rest.split_at_mut(k);
    let (f2, f3) = rest.split_at_mut(k);
    let mut pix = 0;
    while pix + 4 <= npix {
        gather(x, xs, ws, win, ys, pix, f0);
        gather(x, xs, ws, win, ys, pix + 1, f1);
        gather(x, xs, ws, win, ys, pix + 2, f2);
        gather(x, xs, ws, win, ys, pix + 3, f3);
        let (o0, rest) = y[pix * co..(pix + 4) * co].split_at_mut(co);
        let (o1, rest) = rest.split_at_mut(co);
        let (o2, o3) = rest.split_at_mut(co);
        rows_times_filters(
            [&*f0, &*f1, &*f2, &*f3],
            w,
            k,
            bias,
            lo,
            hi,
            [o0, o1, o2, o3],
        );
        pix += 4;
    }
    for pix in pix..npix {
        gather(x, xs, ws, win, ys, pix, f0);
        let o = &mut y[pix * co..(pix + 1) * co];
        rows_times_filters([&*f0], w, k, bias, lo, hi, [o]);
    }
    Ok(())
}

/// f32 fully connected (`x` `[rows, k]`, `w` `[n, k]`, `y` `[rows, n]`),
/// within the module comment's bound of
/// [`crate::kernels::fully_connected::fully_connected_f32`].
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_f32_opt(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    act_min: f32,
    act_max: f32,
    y: &mut [f32],
) -> Result<()> {
    check_len(
        x.len(),
        rows.checked_mul(k),
        "fully connected: input length",
    )?;
    check_len(w.len(), n.checked_mul(k), "fully connected: weight length")?;
    check_len(
        y.len(),
        rows.checked_mul(n),
        "fully connected: output length",
    )?;
    if let Some(b) = bias {
        check_len(b.len(), Some(n), "fully connected: bias length")?;
    }
    // Four rows per pass over the weights (each weight vector loaded once
    // for four rows), then one at a time.
    let r4 = if k == 0 { 0 } else { rows / 4 * 4 };
    for (xs, ys) in x[..r4 * k]
        .chunks_exact(4 * k.max(1))
        .zip(y[..r4 * n].chunks_exact_mut(4 * n.max(1)))
    {
        let (x0, x1, x2, x3) = (&xs[..k], &xs[k..2 * k], &xs[2 * k..3 * k], &xs[3 * k..]);
        let (y0, rest) = ys.split_at_mut(n);
        let (y1, rest) = rest.split_at_mut(n);
        let (y2, y3) = rest.split_at_mut(n);
        rows_times_filters(
            [x0, x1, x2, x3],
            w,
            k,
            bias,
            act_min,
            act_max,
            [y0, y1, y2, y3],
        );
    }
    for r in r4..rows {
        let o = &mut y[r * n..(r + 1) * n];
        rows_times_filters([&x[r * k..(r + 1) * k]], w, k, bias, act_min, act_max, [o]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::super::conv::conv2d_f32;
    use super::super::super::depthwise_conv::depthwise_conv2d_f32;
    use super::super::super::fully_connected::fully_connected_f32;
    use super::super::depthwise_conv_f32::depthwise_conv2d_f32_opt;
    use super::super::selftest::Rng;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn values(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.range(-100_000, 100_000) as f32) / 25_000.0)
            .collect()
    }

    /// Checks `opt` against `reference` with the bound of the module
    /// comment; `mags` is the reference run on |x| and |w| without bias
    /// (Σ|x·w| per output), `terms` the products per output.
    fn within_bound(
        reference: &[f32],
        opt: &[f32],
        mags: &[f32],
        bias_at: impl Fn(usize) -> f32,
        terms: usize,
        exact_without_neon: bool,
    ) {
        let u = f32::EPSILON as f64 / 2.0;
        for (i, ((&r, &o), &m)) in reference.iter().zip(opt).zip(mags).enumerate() {
            let bound =
                2.0 * (terms as f64 + 1.0) * u * (m as f64 + bias_at(i).abs() as f64) * 1.01
                    + 1e-30;
            assert!(
                ((r as f64) - (o as f64)).abs() <= bound,
                "output {i}: reference {r} optimized {o} bound {bound}"
            );
            // Without NEON the kernels sum in the reference's order.
            if exact_without_neon && !cfg!(target_arch = "aarch64") {
                assert_eq!(r.to_bits(), o.to_bits(), "output {i}: {r} vs {o}");
            }
        }
    }

    #[test]
    fn f32_kernels_are_within_the_stated_bound() {
        let mut rng = Rng::new(99);
        let mut scratch = vec![0u32; 4096];
        for case in 0..400 {
            let ci = rng.pick(&[1, 3, 4, 7, 8, 16, 17]);
            let co = rng.pick(&[1, 3, 4, 5, 8, 12, 17]);
            let (h, wd) = (rng.range(1, 7) as usize, rng.range(1, 7) as usize);
            let pointwise = case % 3 == 0;
            let (kh, kw) = if pointwise {
                (1, 1)
            } else {
                (rng.range(1, 3) as usize, rng.range(1, 3) as usize)
            };
            let win = if pointwise {
                Window {
                    stride_h: 1,
                    stride_w: 1,
                    dil_h: 1,
                    dil_w: 1,
                    ..Window::default()
                }
            } else {
                Window {
                    stride_h: rng.range(1, 2) as usize,
                    stride_w: rng.range(1, 2) as usize,
                    dil_h: rng.range(1, 2) as usize,
                    dil_w: rng.range(1, 2) as usize,
                    pad_top: rng.range(0, 1) as usize,
                    pad_left: rng.range(0, 1) as usize,
                    pad_bottom: rng.range(0, 1) as usize,
                    pad_right: rng.range(0, 1) as usize,
                }
            };
            let Some((oh, ow)) = win.out_hw(h, wd, kh, kw) else {
                continue;
            };
            let xs = Shape4::new(1, h, wd, ci);
            let x = values(&mut rng, h * wd * ci);
            let ax: Vec<f32> = x.iter().map(|v| v.abs()).collect();
            let (lo, hi) = if case % 2 == 0 {
                (f32::NEG_INFINITY, f32::INFINITY)
            } else {
                (-1.5, 6.0)
            };
            // Convolution.
            let ws = Shape4::new(co, kh, kw, ci);
            let w = values(&mut rng, co * kh * kw * ci);
            let aw: Vec<f32> = w.iter().map(|v| v.abs()).collect();
            let bias = values(&mut rng, co);
            let ys = Shape4::new(1, oh, ow, co);
            let n = oh * ow * co;
            let (mut r, mut o, mut m) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            conv2d_f32(&x, xs, &w, ws, Some(&bias), &win, 1, lo, hi, &mut r, ys).unwrap();
            conv2d_f32(
                &ax,
                xs,
                &aw,
                ws,
                None,
                &win,
                1,
                f32::NEG_INFINITY,
                f32::INFINITY,
                &mut m,
                ys,
            )
            .unwrap();
            let bytes = bytemuck::cast_slice_mut(&mut scratch);
            conv2d_f32_opt(&x, xs, &w, ws, Some(&bias), &win, lo, hi, bytes, &mut o, ys).unwrap();
            within_bound(&r, &o, &m, |i| bias[i % co], kh * kw * ci, true);
            // Depthwise (multiplier 1).
            let dws = Shape4::new(1, kh, kw, ci);
            let dw = values(&mut rng, kh * kw * ci);
            let adw: Vec<f32> = dw.iter().map(|v| v.abs()).collect();
            let db = values(&mut rng, ci);
            let dys = Shape4::new(1, oh, ow, ci);
            let n = oh * ow * ci;
            let (mut r, mut o, mut m) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            depthwise_conv2d_f32(&x, xs, &dw, dws, Some(&db), &win, 1, lo, hi, &mut r, dys)
                .unwrap();
            depthwise_conv2d_f32(
                &ax,
                xs,
                &adw,
                dws,
                None,
                &win,
                1,
                f32::NEG_INFINITY,
                f32::INFINITY,
                &mut m,
                dys,
            )
            .unwrap();
            depthwise_conv2d_f32_opt(&x, xs, &dw, dws, Some(&db), &win, lo, hi, &mut o, dys)
                .unwrap();
            within_bound(&r, &o, &m, |i| db[i % ci], kh * kw, true);
            // Fully connected: the input as `h` rows of `wd·ci`.
            let k = wd * ci;
            let fw = values(&mut rng, co * k);
            let afw: Vec<f32> = fw.iter().map(|v| v.abs()).collect();
            let n = h * co;
            let (mut r, mut o, mut m) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            fully_connected_f32(&x, h, k, &fw, co, Some(&bias), lo, hi, &mut r).unwrap();
            fully_connected_f32(
                &ax,
                h,
                k,
                &afw,
                co,
                None,
                f32::NEG_INFINITY,
                f32::INFINITY,
                &mut m,
            )
            .unwrap();
            fully_connected_f32_opt(&x, h, k, &fw, co, Some(&bias), lo, hi, &mut o).unwrap();
            // The reference sums in f64: within the bound, not exact.
            within_bound(&r, &o, &m, |i| bias[i % co], k, false);
        }
    }
}
