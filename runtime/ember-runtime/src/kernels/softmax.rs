//! Softmax over the last axis: `x` and `y` are `[rows, depth]`.

use super::check_len;
use super::quant::{
    calculate_input_radius, exp_on_negative_values, get_reciprocal,
    multiply_by_quantized_multiplier_greater_than_one, preprocess_softmax_scaling,
    round_half_even_to_i32, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
    saturating_rounding_multiply_by_pot,
};
use crate::error::Result;

/// Integer bits of the scaled input difference (Q5.26), as in TFLite.
const SCALED_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19), as in TFLite.
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// TFLite's int8 softmax preparation (reference kernel):
/// `(input_multiplier, input_left_shift, diff_min)` for an input scale and
/// `beta`, with 5 integer bits for the scaled differences.
pub fn softmax_params_s8(input_scale: f32, beta: f32) -> (i32, i32, i32) {
    let (m, s) =
        preprocess_softmax_scaling(beta as f64, input_scale as f64, SCALED_DIFF_INTEGER_BITS);
    let diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, s);
    (m, s, diff_min)
}

fn check(x: usize, y: usize, rows: usize, depth: usize) -> Result<()> {
    check_len(x, rows.checked_mul(depth), "softmax: input length")?;
    check_len(y, rows.checked_mul(depth), "softmax: output length")
}

/// int8 softmax with TFLite's reference fixed-point algorithm
/// (`reference_ops::Softmax`, gemmlowp arithmetic); the output has scale
/// 1/256 and zero point −128.
///
/// Per row: `d = x − max`; entries with `d < diff_min` output −128 and are
/// left out of the sum; the others get `exp(d · multiplier · 2^left_shift)`
/// in Q0.31 (input Q5.26), summed in Q12.19, and output
/// `exp · (1 / sum)` rescaled to 8 bits, minus 128, saturated.
/// Parameters come from [`softmax_params_s8`].
pub fn softmax_s8(
    x: &[i8],
    rows: usize,
    depth: usize,
    input_multiplier: i32,
    input_left_shift: i32,
    diff_min: i32,
    y: &mut [i8],
) -> Result<()> {
    check(x.len(), y.len(), rows, depth)?;
    if depth == 0 {
        return Ok(());
    }
    // exp of a scaled input difference; `diff >= diff_min` keeps the shift
    // from overflowing (TFLite relies on the same bound).
    let exp_of = |diff: i32| {
        exp_on_negative_values(multiply_by_quantized_multiplier_greater_than_one(
            diff,
            input_multiplier,
            input_left_shift,
        ))
    };
    for (xr, yr) in x.chunks_exact(depth).zip(y.chunks_exact_mut(depth)) {
        let max = xr.iter().copied().max().unwrap_or(i8::MIN) as i32;
        let mut sum_of_exps: i32 = 0; // Q12.19
        for &v in xr {
            let diff = v as i32 - max;
            if diff >= diff_min {
                let e =
                    saturating_rounding_multiply_by_pot(exp_of(diff), -ACCUMULATION_INTEGER_BITS);
                sum_of_exps = sum_of_exps.wrapping_add(e);
            }
        }
        let (shifted_scale, num_bits_over_unit) =
            get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
        let exponent = num_bits_over_unit + 31 - 8;
        for (&v, out) in xr.iter().zip(yr.iter_mut()) {
            let diff = v as i32 - max;
            *out = if diff >= diff_min {
                let unsat = rounding_divide_by_pot(
                    saturating_rounding_doubling_high_mul(shifted_scale, exp_of(diff)),
                    exponent,
                );
                unsat.saturating_sub(128).clamp(-128, 127) as i8
            } else {
                -128
            };
        }
    }
    Ok(())
}

/// The `(input, output)` rows of `depth` elements, after checking that
/// both hold `rows` of them.
fn row_pairs<'a>(
    x: &'a [f32],
    y: &'a mut [f32],
    rows: usize,
    depth: usize,
) -> Result<impl Iterator<Item = (&'a [f32], &'a mut [f32])>> {
    check(x.len(), y.len(), rows, depth)?;
    // Depth 0 means empty slices: no rows to visit.
    let d = depth.max(1);
    Ok(x.chunks_exact(d).zip(y.chunks_exact_mut(d)))
}

/// The largest value of a row (`f32::MIN` for an empty one).
fn row_max(row: &[f32]) -> f32 {
    row.iter().copied().fold(f32::MIN, f32::max)
}

/// f32 softmax as TFLite's reference: `e_i = exp((x_i − max)·beta)`,
/// `y_i = e_i / Σ e`.
pub fn softmax_f32(x: &[f32], rows: usize, depth: usize, beta: f32, y: &mut [f32]) -> Result<()> {
    for (xr, yr) in row_pairs(x, y, rows, depth)? {
        let max = row_max(xr);
        let mut sum = 0f32;
        for (&v, o) in xr.iter().zip(yr.iter_mut()) {
            *o = libm::expf((v - max) * beta);
            sum += *o;
        }
        for o in yr.iter_mut() {
            *o /= sum;
        }
    }
    Ok(())
}

/// f32 log-softmax over rows of `depth`: `(x − max)·beta − ln Σ
/// exp((x − max)·beta)`, computed without forming the softmax (no log of an
/// underflowed 0).
pub fn log_softmax_f32(
    x: &[f32],
    rows: usize,
    depth: usize,
    beta: f32,
    y: &mut [f32],
) -> Result<()> {
    for (xr, yr) in row_pairs(x, y, rows, depth)? {
        let max = row_max(xr);
        let mut sum = 0f32;
        for (&v, o) in xr.iter().zip(yr.iter_mut()) {
            *o = (v - max) * beta;
            sum += libm::expf(*o);
        }
        let log_sum = libm::logf(sum);
        for o in yr.iter_mut() {
            *o -= log_sum;
        }
    }
    Ok(())
}

/// f32 hardmax over rows of `depth`: 1 at the first maximum of each row, 0
/// elsewhere (a row of NaNs marks its first element).
pub fn hardmax_f32(x: &[f32], rows: usize, depth: usize, y: &mut [f32]) -> Result<()> {
    for (xr, yr) in row_pairs(x, y, rows, depth)? {
        let mut best = 0;
        for (i, &v) in xr.iter().enumerate() {
            if v > xr[best] {
                best = i;
            }
        }
        yr.fill(0.0);
        yr[best] = 1.0;
    }
    Ok(())
}

/// int8 softmax with onnxruntime-style float semantics: the difference to
/// the row maximum is taken on the integers (the zero point cancels) and
/// dequantized, `e = exp((x − max)·in_scale·beta)` (onnxruntime's
/// `QLinearSoftmax` table holds `exp((x − max)·in_scale)`), `p = e / Σ e`,
/// quantized as `round_half_even(p / out_scale) + out_zp`, saturated to
/// int8. `in_zp` does not affect the result.
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
    check(x.len(), y.len(), rows, depth)?;
    if depth == 0 {
        return Ok(());
    }
    let _ = in_zp; // (x − zp) − (max − zp) = x − max
    for (xr, yr) in x.chunks_exact(depth).zip(y.chunks_exact_mut(depth)) {
        let max = xr.iter().copied().max().unwrap_or(i8::MIN) as i32;
        let exp_of = |v: i8| libm::expf((v as i32 - max) as f32 * in_scale * beta);
        let mut sum = 0f32;
        for &v in xr {
            sum += exp_of(v);
        }
        for (&v, o) in xr.iter().zip(yr.iter_mut()) {
            *o = round_half_even_to_i32(exp_of(v) / sum / out_scale)
                .saturating_add(out_zp)
                .clamp(-128, 127) as i8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn params_by_hand() {
        // beta·scale·2^(31−5) = 2^25 = 0.5·2^26 → (2^30, 26).
        let (m, s, d) = softmax_params_s8(0.5, 1.0);
        assert_eq!((m, s), (1 << 30, 26));
        // radius: 31·2^26 / 2^26 = 31
        assert_eq!(d, -31);
        // A huge scale saturates: shift 31 and only the maximum survives.
        let (m, s, d) = softmax_params_s8(64.0, 1.0);
        assert_eq!((m, s, d), (i32::MAX, 31, 0));
        let mut y = [0i8; 3];
        softmax_s8(&[5, 4, 5], 1, 3, m, s, d, &mut y).unwrap();
        assert_eq!(y, [0, -128, 0]);
    }

    #[test]
    fn s8_uniform_rows() {
        for depth in [1usize, 2, 3, 4, 10, 100] {
            let (m, s, d) = softmax_params_s8(0.1, 1.0);
            let x = vec![5i8; depth * 2];
            let mut y = vec![0i8; depth * 2];
            softmax_s8(&x, 2, depth, m, s, d, &mut y).unwrap();
            assert!(y.iter().all(|&v| v == y[0]));
            let total: i32 = y[..depth].iter().map(|&v| v as i32 + 128).sum();
            assert!(
                (total - 256).abs() <= depth as i32,
                "depth {depth}: {total}"
            );
        }
        let (m, s, d) = softmax_params_s8(0.1, 1.0);
        let mut y = [0i8; 4];
        softmax_s8(&[5, 5, 5, 5], 1, 4, m, s, d, &mut y).unwrap();
        assert_eq!(y, [-64; 4]); // 0.25 · 256 − 128
        let mut y = [0i8; 1];
        softmax_s8(&[-128], 1, 1, m, s, d, &mut y).unwrap();
        assert_eq!(y, [127]); // 1.0 saturates
    }

    #[test]
    fn s8_close_to_float() {
        for &scale in &[0.14469251f32, 0.0390625, 0.5, 1.0 / 16.0] {
            let (m, s, d) = softmax_params_s8(scale, 1.0);
            let x = [-20i8, 10, 30, 31, -128, 0, 5, 12, 127, 126, 120, -5];
            let mut y = [0i8; 12];
            softmax_s8(&x, 2, 6, m, s, d, &mut y).unwrap();
            for r in 0..2 {
                let mut f = [0f32; 6];
                let xf: [f32; 6] = core::array::from_fn(|i| x[r * 6 + i] as f32 * scale);
                softmax_f32(&xf, 1, 6, 1.0, &mut f).unwrap();
                for i in 0..6 {
                    let want = (f[i] * 256.0 - 128.0).min(127.0);
                    let got = y[r * 6 + i] as f32;
                    assert!(
                        (got - want).abs() <= 1.0,
                        "scale {scale} {r},{i}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn s8_float_variant() {
        // Two equal maxima and a much smaller value: 0.5, 0.5, ~0.
        let mut y = [0i8; 3];
        softmax_s8_float(
            &[10, 10, -100],
            1,
            3,
            0.5,
            3,
            1.0,
            1.0 / 256.0,
            -128,
            &mut y,
        )
        .unwrap();
        assert_eq!(y, [0, 0, -128]);
        let mut y = [0i8; 2];
        softmax_s8_float(&[7, 7], 1, 2, 0.1, 0, 1.0, 1.0 / 256.0, -128, &mut y).unwrap();
        assert_eq!(y, [0, 0]);
        // Quantization ties round to even.
        let mut y = [0i8; 4];
        softmax_s8_float(&[1, 1, 1, 1], 1, 4, 1.0, 0, 1.0, 0.1, 0, &mut y).unwrap();
        assert_eq!(y, [2; 4]); // 0.25 / 0.1 = 2.5 → 2
    }

    #[test]
    fn f32_rows() {
        let x = [1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0];
        let mut y = [0f32; 6];
        softmax_f32(&x, 2, 3, 1.0, &mut y).unwrap();
        let e = [libm::expf(-2.0), libm::expf(-1.0), 1.0];
        let s = e[0] + e[1] + e[2];
        for i in 0..3 {
            assert!((y[i] - e[i] / s).abs() < 1e-7);
            assert!((y[3 + i] - 1.0 / 3.0).abs() < 1e-7);
        }
        // beta scales the logits.
        softmax_f32(&x, 2, 3, 0.0, &mut y).unwrap();
        assert!(y.iter().all(|&v| (v - 1.0 / 3.0).abs() < 1e-7));
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let mut y = [0i8; 4];
        assert!(softmax_s8(&[0; 3], 1, 4, 1 << 30, 20, -31, &mut y).is_err());
        assert!(softmax_s8(&[0; 4], 1, 4, 1 << 30, 20, -31, &mut y[..3]).is_err());
        assert!(softmax_s8(&[0; 4], usize::MAX, 4, 1 << 30, 20, -31, &mut y).is_err());
        assert!(softmax_s8_float(&[0; 4], 2, 4, 1.0, 0, 1.0, 1.0, 0, &mut y).is_err());
        assert!(softmax_f32(&[0.0; 4], 1, 3, 1.0, &mut [0.0; 4]).is_err());
        softmax_s8(&[], 0, 0, 0, 0, 0, &mut []).unwrap();
        // Nonsense parameters (no diff bound, negative multiplier, huge
        // shifts) produce garbage but never panic.
        let x = [-128i8, 127, 0, 5];
        for &(m, s, d) in &[
            (i32::MIN, 31, i32::MIN),
            (i32::MAX, 31, -1000),
            (-5, -7, -255),
            (1, 99, 0),
        ] {
            softmax_s8(&x, 1, 4, m, s, d, &mut y).unwrap();
        }
        softmax_s8_float(&x, 1, 4, f32::NAN, i32::MIN, 1.0, 0.0, i32::MAX, &mut y).unwrap();
    }
}
