//! Fully connected with dynamic int8 activation quantization, f32 in and
//! out: ONNX's `DynamicQuantizeLinear → MatMulInteger → Cast → Mul(x_scale
//! · w_scale) [→ Add bias]` in one op.
//!
//! 1. Per-tensor parameters from the whole input, as `DynamicQuantizeLinear`
//!    defines them: `lo = min(0, min x)`, `hi = max(0, max x)`, `scale =
//!    (hi − lo) / 255` (1 when both are 0), `zp = round_half_even(clamp(−lo
//!    / scale, 0, 255))`, `q = clamp(round_half_even(x / scale) + zp, 0,
//!    255)`.
//! 2. `q − 128` is stored in the scratch as int8 (exact), with zero point
//!    `zp − 128`, so the products are int8 × int8 like every other kernel:
//!    `acc[r, n] = Σ_k (q − 128)·w[n, k] − (zp − 128)·Σ_k w[n, k]`, the
//!    weight sums precomputed by the compiler (weights are symmetric, zero
//!    point 0).
//! 3. `y[r, n] = f32(acc) · (scale · w_scale[n]) + bias[n]`, the same f32
//!    operations in the same order as the ONNX graph.
//!
//! Weights stay int8 in flash: MiniLM's 22 M parameters are 22 MB, not 88.

use super::check_len;
use crate::error::{Error, Result};

/// Largest `K` for which an int32 accumulator cannot overflow
/// (`|q − zp| ≤ 255`, `|w| ≤ 128`).
pub const MAX_DEPTH: usize = (i32::MAX as usize) / (255 * 128);

/// Scratch bytes for `rows × k` inputs: the quantized input.
pub const fn fully_connected_dynamic_scratch_size(rows: usize, k: usize) -> usize {
    rows * k
}

/// `DynamicQuantizeLinear`'s `(scale, zero point)` for `x`.
pub fn dynamic_quant_params(x: &[f32]) -> (f32, i32) {
    let (mut lo, mut hi) = (0f32, 0f32);
    for &v in x {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let scale = if hi == lo { 1.0 } else { (hi - lo) / 255.0 };
    let zp = (0.0 - lo / scale).clamp(0.0, 255.0);
    (scale, libm::rintf(zp) as i32)
}

/// Quantizes one value with `(scale, zp)` to `[0, 255]`.
#[inline]
pub fn quantize_u8(v: f32, scale: f32, zp: i32) -> i32 {
    // Anything past ±512 saturates either way (0 ≤ zp ≤ 255); inside, adding
    // and removing 1.5·2²³ rounds to the nearest integer, ties to even,
    // exactly like `rintf` (the FPU's default rounding) without a call.
    const MAGIC: f32 = 12_582_912.0;
    let t = (v / scale).clamp(-512.0, 512.0);
    let q = (t + MAGIC) - MAGIC;
    // `as` maps NaN to 0, as `rintf(NaN) as i32` does.
    (q as i32).saturating_add(zp).clamp(0, 255)
}

/// See the module docs. `x` `[rows, k]`, `w` `[n, k]`, `w_scale` `[n]` or
/// `[1]`, `w_sum` `[n]`, `bias` `[n]`, `y` `[rows, n]`.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_dynamic_f32(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[i8],
    n: usize,
    w_scale: &[f32],
    w_sum: &[i32],
    bias: Option<&[f32]>,
    scratch: &mut [i8],
    y: &mut [f32],
) -> Result<()> {
    let Some((xq, scale, zq)) = prepare(x, rows, k, w, n, w_scale, w_sum, bias, scratch, y)? else {
        return Ok(());
    };
    for (xr, yr) in xq.chunks_exact(k).zip(y.chunks_exact_mut(n)) {
        for (j, (wr, o)) in w.chunks_exact(k).zip(yr.iter_mut()).enumerate() {
            let dot: i32 = xr.iter().zip(wr).map(|(&a, &b)| a as i32 * b as i32).sum();
            *o = output(dot, j, zq, scale, w_scale, w_sum, bias);
        }
    }
    Ok(())
}

/// Checks the operands and quantizes the input (steps 1–2); writes the
/// bias-only output and returns `None` when `k` or `n` is 0.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn prepare<'s>(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[i8],
    n: usize,
    w_scale: &[f32],
    w_sum: &[i32],
    bias: Option<&[f32]>,
    scratch: &'s mut [i8],
    y: &mut [f32],
) -> Result<Option<(&'s [i8], f32, i32)>> {
    check_len(x.len(), rows.checked_mul(k), "dynamic fc: input length")?;
    check_len(w.len(), n.checked_mul(k), "dynamic fc: weight length")?;
    check_len(y.len(), rows.checked_mul(n), "dynamic fc: output length")?;
    check_len(w_sum.len(), Some(n), "dynamic fc: weight sums length")?;
    if w_scale.len() != 1 && w_scale.len() != n {
        return Err(Error::ShapeMismatch("dynamic fc: weight scales length"));
    }
    if let Some(b) = bias {
        check_len(b.len(), Some(n), "dynamic fc: bias length")?;
    }
    if k > MAX_DEPTH {
        return Err(Error::ShapeMismatch("dynamic fc: depth overflows int32"));
    }
    let (xq, scale, zq) = quantize_input(x, scratch)?;
    if k == 0 || n == 0 {
        for (i, o) in y.iter_mut().enumerate() {
            *o = bias.map_or(0.0, |b| b[i % n.max(1)]);
        }
        return Ok(None);
    }
    Ok(Some((xq, scale, zq)))
}

/// Step 1–2 of the module docs: quantizes `x` into the head of `scratch`
/// as `q − 128`; returns it with the scale and the shifted zero point.
pub(crate) fn quantize_input<'s>(x: &[f32], scratch: &'s mut [i8]) -> Result<(&'s [i8], f32, i32)> {
    let xq = scratch
        .get_mut(..x.len())
        .ok_or(Error::ShapeMismatch("dynamic fc: scratch too small"))?;
    let (scale, zp) = dynamic_quant_params(x);
    for (q, &v) in xq.iter_mut().zip(x) {
        *q = (quantize_u8(v, scale, zp) - 128) as i8;
    }
    Ok((xq, scale, zp - 128))
}

/// Step 3 of the module docs for output column `j`, from `Σ (q − 128)·w`.
#[inline]
pub(crate) fn output(
    dot: i32,
    j: usize,
    zq: i32,
    scale: f32,
    w_scale: &[f32],
    w_sum: &[i32],
    bias: Option<&[f32]>,
) -> f32 {
    let acc = dot.wrapping_sub(zq.wrapping_mul(w_sum[j]));
    let s = scale * w_scale[if w_scale.len() == 1 { 0 } else { j }];
    let v = acc as f32 * s;
    match bias {
        Some(b) => b[j] + v,
        None => v,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn matches_the_onnx_definition() {
        let (rows, k, n) = (3, 5, 4);
        let x: Vec<f32> = (0..rows * k)
            .map(|i| (i as f32 * 0.37).sin() * 2.0)
            .collect();
        let w: Vec<i8> = (0..n * k).map(|i| ((i * 37) % 255) as i32 as i8).collect();
        let ws = [0.01, 0.02, 0.03, 0.04];
        let b = [0.5, -0.5, 0.0, 1.0];
        let sums: Vec<i32> = w
            .chunks(k)
            .map(|r| r.iter().map(|&v| v as i32).sum())
            .collect();
        let mut scratch = vec![0i8; rows * k];
        let mut y = vec![0f32; rows * n];
        fully_connected_dynamic_f32(
            &x,
            rows,
            k,
            &w,
            n,
            &ws,
            &sums,
            Some(&b),
            &mut scratch,
            &mut y,
        )
        .unwrap();
        // Straight from the definition, in f64 for the products.
        let (s, z) = dynamic_quant_params(&x);
        for r in 0..rows {
            for j in 0..n {
                let acc: i32 = (0..k)
                    .map(|i| (quantize_u8(x[r * k + i], s, z) - z) * w[j * k + i] as i32)
                    .sum();
                let want = b[j] + acc as f32 * (s * ws[j]);
                assert_eq!(y[r * n + j], want);
            }
        }
        // Parameters: min −1, max 3 → scale 4/255, zp round(63.75) = 64.
        let (s, z) = dynamic_quant_params(&[-1.0, 3.0, 0.5]);
        assert_eq!((s, z), (4.0 / 255.0, 64));
        assert_eq!(dynamic_quant_params(&[0.0, 0.0]), (1.0, 0));
        assert_eq!(dynamic_quant_params(&[1.0, 3.0]).1, 0);
        // Rounding: ties to even, saturation, NaN, against rintf.
        for &(v, s, z) in &[
            (2.5f32, 1.0f32, 0),
            (3.5, 1.0, 0),
            (-0.5, 1.0, 10),
            (1e30, 1.0, 3),
            (-1e30, 0.5, 250),
            (f32::NAN, 1.0, 7),
            (126.49999, 1.0, 0),
            (0.3, 0.0007, 128),
        ] {
            let want = ((libm::rintf(v / s) as i32).saturating_add(z)).clamp(0, 255);
            assert_eq!(quantize_u8(v, s, z), want, "{v} {s} {z}");
        }
        assert!(fully_connected_dynamic_f32(
            &x,
            rows,
            k,
            &w,
            n,
            &ws,
            &sums,
            None,
            &mut scratch[..4],
            &mut y
        )
        .is_err());
    }
}
