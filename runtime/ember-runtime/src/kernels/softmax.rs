//! Softmax over the last axis.

use super::check_len;
use super::quant::{
    calculate_input_radius, exp_on_negative_values, get_reciprocal, preprocess_softmax_scaling,
    round_half_even_to_i32, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
    saturating_rounding_multiply_by_pot,
};
use crate::error::Result;

/// Integer bits of the scaled input difference (Q5.26), as in TFLite.
const SCALED_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19), as in TFLite.
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// TFLite's int8 softmax preparation: (input_multiplier, input_left_shift, diff_min).
pub fn softmax_params_s8(input_scale: f32, beta: f32) -> (i32, i32, i32) {
    let (m, s) =
        preprocess_softmax_scaling(beta as f64, input_scale as f64, SCALED_DIFF_INTEGER_BITS);
    let diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, s);
    (m, s, diff_min)
}

/// int8 softmax with TFLite's reference fixed-point algorithm; output scale
/// 1/256, zero point −128.
pub fn softmax_s8(
    x: &[i8],
    rows: usize,
    depth: usize,
    input_multiplier: i32,
    input_left_shift: i32,
    diff_min: i32,
    y: &mut [i8],
) -> Result<()> {
    check_len(x.len(), rows.checked_mul(depth), "softmax: input length")?;
    check_len(y.len(), rows.checked_mul(depth), "softmax: output length")?;
    if depth == 0 {
        return Ok(());
    }
    let shift = input_left_shift.clamp(0, 31) as u32;
    let scaled = |diff: i32| -> i32 {
        saturating_rounding_doubling_high_mul(diff.wrapping_shl(shift), input_multiplier)
    };
    for (xr, yr) in x.chunks_exact(depth).zip(y.chunks_exact_mut(depth)) {
        let max = xr.iter().copied().max().unwrap_or(0) as i32;
        let mut sum: i32 = 0;
        for &v in xr {
            let diff = v as i32 - max;
            if diff >= diff_min {
                let e = exp_on_negative_values(scaled(diff));
                sum = sum.wrapping_add(saturating_rounding_multiply_by_pot(
                    e,
                    -ACCUMULATION_INTEGER_BITS,
                ));
            }
        }
        let (shifted_scale, num_bits_over_unit) = get_reciprocal(sum, ACCUMULATION_INTEGER_BITS);
        for (&v, out) in xr.iter().zip(yr.iter_mut()) {
            let diff = v as i32 - max;
            *out = if diff >= diff_min {
                let e = exp_on_negative_values(scaled(diff));
                let unsat = rounding_divide_by_pot(
                    saturating_rounding_doubling_high_mul(shifted_scale, e),
                    num_bits_over_unit + 31 - 8,
                );
                (unsat - 128).clamp(-128, 127) as i8
            } else {
                -128
            };
        }
    }
    Ok(())
}

/// f32 softmax (max-subtracted).
pub fn softmax_f32(x: &[f32], rows: usize, depth: usize, beta: f32, y: &mut [f32]) -> Result<()> {
    check_len(x.len(), rows.checked_mul(depth), "softmax: input length")?;
    check_len(y.len(), rows.checked_mul(depth), "softmax: output length")?;
    if depth == 0 {
        return Ok(());
    }
    for (xr, yr) in x.chunks_exact(depth).zip(y.chunks_exact_mut(depth)) {
        let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for (&v, o) in xr.iter().zip(yr.iter_mut()) {
            *o = libm::expf((v - max) * beta);
            sum += *o;
        }
        let inv = 1.0 / sum;
        for o in yr.iter_mut() {
            *o *= inv;
        }
    }
    Ok(())
}

/// int8 softmax with onnxruntime semantics: dequantize, float softmax,
/// quantize rounding half to even.
#[allow(clippy::too_many_arguments)]
pub fn softmax_s8_float(
    x: &[i8],
    rows: usize,
    depth: usize,
    in_scale: f32,
    in_zp: i32,
    beta: f32,
    out_scale: f32,
    out_zp: i32,
    y: &mut [i8],
) -> Result<()> {
    check_len(x.len(), rows.checked_mul(depth), "softmax: input length")?;
    check_len(y.len(), rows.checked_mul(depth), "softmax: output length")?;
    if depth == 0 {
        return Ok(());
    }
    for (xr, yr) in x.chunks_exact(depth).zip(y.chunks_exact_mut(depth)) {
        let max = xr.iter().copied().max().unwrap_or(0) as i32;
        let mut sum = 0f32;
        for &v in xr {
            sum += libm::expf((v as i32 - max) as f32 * in_scale * beta);
        }
        for (&v, o) in xr.iter().zip(yr.iter_mut()) {
            let p = libm::expf((v as i32 - max) as f32 * in_scale * beta) / sum;
            let _ = in_zp; // cancels in (x - zp) - (max - zp)
            *o = round_half_even_to_i32(p / out_scale)
                .saturating_add(out_zp)
                .clamp(-128, 127) as i8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s8_uniform_row() {
        let (m, s, d) = softmax_params_s8(0.1, 1.0);
        let mut y = [0i8; 4];
        softmax_s8(&[5, 5, 5, 5], 1, 4, m, s, d, &mut y).unwrap();
        assert!(y.iter().all(|&v| v == y[0]));
        assert_eq!(y[0], -64); // 0.25 · 256 − 128
    }

    #[test]
    fn s8_close_to_float() {
        let scale = 0.14469251f32;
        let (m, s, d) = softmax_params_s8(scale, 1.0);
        let x = [-20i8, 10, 30, 31, -128, 0, 5, 12];
        let mut y = [0i8; 8];
        softmax_s8(&x, 1, 8, m, s, d, &mut y).unwrap();
        let mut f = [0f32; 8];
        let xf: [f32; 8] = core::array::from_fn(|i| x[i] as f32 * scale);
        softmax_f32(&xf, 1, 8, 1.0, &mut f).unwrap();
        for i in 0..8 {
            let want = f[i] * 256.0 - 128.0;
            assert!((y[i] as f32 - want).abs() <= 1.0, "{i}: {} vs {want}", y[i]);
        }
    }
}
