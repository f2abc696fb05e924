//! Fixed-point arithmetic with TFLite / gemmlowp semantics (bit-exact).

/// Words per block of four channels in the blocked requantization table
/// the optimized kernels read (`[mult ×4, left shift ×4, −right shift ×4]`,
/// built by [`super::opt::requant_blocks`]); here because the reference
/// side checks such tables too ([`super::Requant::FixedBlocked`]).
pub const REQUANT_BLOCK_WORDS: usize = 12;

/// gemmlowp `SaturatingRoundingDoublingHighMul`: `(a·b·2 + 2^31) >> 32`
/// with rounding toward nearest, saturating the one overflow case.
#[inline(always)]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent`, rounding half away
/// from zero. `exponent` is clamped to `0..=31`.
#[inline(always)]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let e = exponent.clamp(0, 31) as u32;
    let mask: i32 = ((1i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(remainder > threshold)
}

/// TFLite `MultiplyByQuantizedMultiplier` (double rounding: gemmlowp
/// `SaturatingRoundingDoublingHighMul`, then `RoundingDivideByPOT`): `x ·
/// multiplier · 2^shift / 2^31`. TFLite's reference convolution, depthwise
/// convolution and add kernels requantize this way.
#[inline(always)]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.clamp(0, 31) as u32;
    let right = shift.saturating_neg().clamp(0, 31);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_shl(left), multiplier),
        right,
    )
}

/// The single-rounding form (`TFLITE_SINGLE_ROUNDING`): the exact 64-bit
/// product rounded half up once. TFLite's reference fully-connected kernel
/// requantizes this way (verified bit-exact on the MLPerf Tiny AD model,
/// ten fully-connected layers). `shift` is clamped to `[-31, 30]`.
#[inline(always)]
pub fn multiply_by_quantized_multiplier_single_rounding(
    x: i32,
    multiplier: i32,
    shift: i32,
) -> i32 {
    let total_shift = (31 - shift.clamp(-31, 30)) as u32; // 1..=62
    let round = 1i64 << (total_shift - 1);
    let r = (x as i64 * multiplier as i64 + round) >> total_shift;
    r.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// TFLite `QuantizeMultiplier`: a real multiplier as a Q0.31 significand
/// and a power-of-two exponent, `real ≈ q · 2^shift / 2^31`, with `q` in
/// `[2^30, 2^31)` (negative reals give a negative `q`).
///
/// Zero (and NaN / infinity) give `(0, 0)`; exponents below −31 flush to
/// `(0, 0)`; exponents above 30 saturate to `(2^31 − 1, 30)` (TFLite only
/// does this in its single-rounding build; a requantization multiplier that
/// large never occurs in practice, and softmax uses the unclamped form, see
/// [`preprocess_softmax_scaling`]).
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    let (q, shift) = quantize_multiplier_unclamped(real);
    if shift > 30 {
        (i32::MAX, 30)
    } else {
        (q, shift)
    }
}

/// [`quantize_multiplier`] without the clamp of large exponents (TFLite's
/// default double-rounding build).
fn quantize_multiplier_unclamped(real: f64) -> (i32, i32) {
    if real == 0.0 || !real.is_finite() {
        return (0, 0);
    }
    let (q, mut shift) = libm::frexp(real);
    // |q| is in [0.5, 1): |q_fixed| is in [2^30, 2^31]. Like TFLite, only
    // the positive end is renormalized (−2^31 is representable).
    let mut q_fixed = libm::round(q * (1i64 << 31) as f64) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    (q_fixed as i32, shift)
}

/// Rounds half to even (C `rint`), saturating to `i32`; NaN gives 0.
#[inline(always)]
pub fn round_half_even_to_i32(x: f32) -> i32 {
    if x.is_nan() {
        return 0;
    }
    let r = libm::rintf(x);
    if r >= 2147483647.0 {
        i32::MAX
    } else if r <= -2147483648.0 {
        i32::MIN
    } else {
        r as i32
    }
}

/// Rounds half away from zero (C `round`), saturating to `i32`; NaN gives 0.
#[inline(always)]
pub fn round_half_away_to_i32(x: f32) -> i32 {
    if x.is_nan() {
        return 0;
    }
    let r = libm::roundf(x);
    if r >= 2147483647.0 {
        i32::MAX
    } else if r <= -2147483648.0 {
        i32::MIN
    } else {
        r as i32
    }
}

/// gemmlowp `SaturatingRoundingMultiplyByPOT`: `x · 2^exponent`, saturating
/// for positive exponents, rounding for negative ones.
#[inline(always)]
pub fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent > 0 {
        let e = exponent.min(31);
        let threshold: i32 = ((1i64 << (31 - e)) - 1) as i32;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x.wrapping_shl(e as u32)
        }
    } else {
        rounding_divide_by_pot(x, exponent.saturating_neg())
    }
}

/// gemmlowp `exp_on_interval_between_negative_one_quarter_and_0_excl`
/// (Q0.31 in, Q0.31 out).
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const ONE_THIRD: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28);
    let x2 = saturating_rounding_doubling_high_mul(x, x);
    let x3 = saturating_rounding_doubling_high_mul(x2, x);
    let x4 = saturating_rounding_doubling_high_mul(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    let poly = saturating_rounding_multiply_by_pot(
        saturating_rounding_doubling_high_mul(x4_over_4.wrapping_add(x3), ONE_THIRD)
            .wrapping_add(x2),
        -1,
    );
    CONSTANT_TERM.wrapping_add(saturating_rounding_doubling_high_mul(
        CONSTANT_TERM,
        x.wrapping_add(poly),
    ))
}

/// gemmlowp `exp_on_negative_values` for a Q5.26 input; Q0.31 output.
pub fn exp_on_negative_values(a: i32) -> i32 {
    const FRACTIONAL_BITS: i32 = 26;
    let one_quarter: i32 = 1 << (FRACTIONAL_BITS - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, 5),
    );
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if remainder & (1 << (FRACTIONAL_BITS + exponent)) != 0 {
            result = saturating_rounding_doubling_high_mul(result, multiplier);
        }
    }
    if a == 0 {
        i32::MAX
    } else {
        result
    }
}

fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign: i64 = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1` (Q0.31 in and out).
pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let half_denominator = rounding_half_sum(a, i32::MAX);
    const C48_17: i32 = 1_515_870_810; // Q2.29
    const CNEG32_17: i32 = -1_010_580_540; // Q2.29
    let mut x = C48_17.wrapping_add(saturating_rounding_doubling_high_mul(
        half_denominator,
        CNEG32_17,
    ));
    for _ in 0..3 {
        let half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x);
        let one_minus = (1i32 << 29).wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(saturating_rounding_multiply_by_pot(
            saturating_rounding_doubling_high_mul(x, one_minus),
            2,
        ));
    }
    saturating_rounding_multiply_by_pot(x, 1)
}

/// TFLite `GetReciprocal`: returns (1 / x as Q0.31 scaled, num_bits_over_unit).
pub fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = x_integer_digits.saturating_sub(headroom_plus_one);
    let shifted_sum_minus_one = ((x as u32)
        .wrapping_shl(headroom_plus_one as u32)
        .wrapping_sub(1u32 << 31)) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    )
}

/// TFLite `MultiplyByQuantizedMultiplierGreaterThanOne` (double-rounding
/// build): `srdhm(x · 2^left_shift, multiplier)`. The shift wraps like the
/// C code's two's-complement multiply; callers bound `x` so it does not.
#[inline(always)]
pub fn multiply_by_quantized_multiplier_greater_than_one(
    x: i32,
    multiplier: i32,
    left_shift: i32,
) -> i32 {
    saturating_rounding_doubling_high_mul(
        x.wrapping_shl(left_shift.clamp(0, 31) as u32),
        multiplier,
    )
}

/// TFLite `PreprocessSoftmaxScaling` (double-rounding build): the input
/// multiplier and left shift that map an input difference `x_i − max` to a
/// fixed-point value with `input_integer_bits` integer bits, scaled by
/// `beta · input_scale`. The real multiplier is capped at `2^31 − 1`, which
/// can give a left shift of 31.
pub fn preprocess_softmax_scaling(
    beta: f64,
    input_scale: f64,
    input_integer_bits: i32,
) -> (i32, i32) {
    let iib = input_integer_bits.clamp(0, 31);
    let max_real = ((1i64 << 31) - 1) as f64;
    let real = (beta * input_scale * (1i64 << (31 - iib)) as f64).min(max_real);
    let (m, s) = quantize_multiplier_unclamped(real);
    // TFLite CHECKs that the shift is non-negative (multiplier > 1).
    (m, s.max(0))
}

/// TFLite `CalculateInputRadius` (31 signed bits): the largest input
/// difference magnitude that still fits `input_integer_bits` integer bits
/// after the softmax input scaling with `input_left_shift`.
pub fn calculate_input_radius(input_integer_bits: i32, input_left_shift: i32) -> i32 {
    let iib = input_integer_bits.clamp(0, 31);
    let max_input_rescaled = ((1i64 << iib) - 1) as f64 * (1i64 << (31 - iib)) as f64
        / (1i64 << input_left_shift.clamp(0, 62)) as f64;
    libm::floor(max_input_rescaled) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srdhm_edges() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(-(1 << 30), 1 << 30),
            -(1 << 29)
        );
    }

    #[test]
    fn rounding_divide_rounds_half_away() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-4, 2), -1);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    // Vectors from TFLite's quantization_util_test.cc.
    #[test]
    fn quantize_multiplier_matches_tflite_tests() {
        assert_eq!(quantize_multiplier(0.25), (1073741824, -1));
        assert_eq!(quantize_multiplier(0.50 - 5e-9), (2147483627, -1));
        assert_eq!(quantize_multiplier(0.50 - 1e-10), (1073741824, 0));
        assert_eq!(quantize_multiplier(0.75), (1610612736, 0));
        assert_eq!(quantize_multiplier(1.0 - 1e-9), (2147483646, 0));
        assert_eq!(quantize_multiplier(1.0 + 1e-11), (1073741824, 1));
        assert_eq!(quantize_multiplier(1.25), (1342177280, 1));
        assert_eq!(quantize_multiplier(1.75), (1879048192, 1));
        assert_eq!(quantize_multiplier(2.0 - 1e-9), (2147483647, 1));
        assert_eq!(quantize_multiplier(2.0 - 1e-11), (1073741824, 2));
        assert_eq!(quantize_multiplier(2.0), (1073741824, 2));
        // Underflow.
        assert_eq!(
            quantize_multiplier(libm::ldexp(1.0, -31)),
            (1073741824, -30)
        );
        assert_eq!(
            quantize_multiplier(libm::ldexp(1.0, -32)),
            (1073741824, -31)
        );
        assert_eq!(
            quantize_multiplier(libm::ldexp(0.99f32 as f64, -32)),
            (0, 0)
        );
        assert_eq!(quantize_multiplier(libm::ldexp(1.0, -33)), (0, 0));
        // Negative reals keep their sign in the significand.
        assert_eq!(quantize_multiplier(-4.0), (-1073741824, 3));
        assert_eq!(quantize_multiplier(-0.125), (-1073741824, -2));
        assert_eq!(quantize_multiplier(0.125), (1073741824, -2));
        // Large exponents saturate.
        assert_eq!(quantize_multiplier(1e12), (i32::MAX, 30));
        assert_eq!(quantize_multiplier(f64::NAN), (0, 0));
    }

    #[test]
    fn multiply_by_quantized_multiplier_matches_tflite_tests() {
        let qm = |x: i32, real: f64| {
            let (m, s) = quantize_multiplier(real);
            multiply_by_quantized_multiplier(x, m, s)
        };
        assert_eq!(qm(0, 0.1), 0);
        assert_eq!(qm(1, 0.0), 0);
        assert_eq!(qm(10000, 0.00097656), 10);
        assert_eq!(qm(10000, -0.00097656), -10);
        assert_eq!(qm(-10000, 0.00097656), -10);
        assert_eq!(qm(-10000, -0.00097656), 10);
        assert_eq!(qm(i32::MIN, 0.00001), -21475);
        assert_eq!(qm(i32::MIN, -0.00001), 21475);
        assert_eq!(qm(i32::MAX, 0.00001), 21475);
        assert_eq!(qm(i32::MAX, -0.00001), -21475);
        // Maximum x and multiplier: the exact product rounded.
        let want = libm::round(i32::MAX as f64 * i32::MAX as f64 / (1u64 << 34) as f64) as i32;
        assert_eq!(
            multiply_by_quantized_multiplier(i32::MAX, i32::MAX, -3),
            want
        );
        assert_eq!(
            multiply_by_quantized_multiplier(-i32::MAX, i32::MAX, -3),
            -want
        );
        // Extreme shifts do not panic.
        let _ = multiply_by_quantized_multiplier(i32::MIN, i32::MIN, 40);
        let _ = multiply_by_quantized_multiplier(i32::MAX, i32::MAX, -40);
        let _ = multiply_by_quantized_multiplier_single_rounding(i32::MIN, i32::MIN, 40);
        for shift in [i32::MIN, i32::MAX] {
            let _ = multiply_by_quantized_multiplier(-7, 1 << 30, shift);
            let _ = multiply_by_quantized_multiplier_single_rounding(-7, 1 << 30, shift);
            let _ = multiply_by_quantized_multiplier_greater_than_one(-7, 1 << 30, shift);
            let _ = saturating_rounding_multiply_by_pot(-7, shift);
            let _ = rounding_divide_by_pot(-7, shift);
            let _ = get_reciprocal(12345, shift);
        }
    }

    #[test]
    fn softmax_scaling_matches_tflite_tests() {
        assert_eq!(preprocess_softmax_scaling(1.0, 16.0, 4), (2147483647, 31));
        assert_eq!(preprocess_softmax_scaling(1.0, 8.0, 4), (1073741824, 31));
        assert_eq!(preprocess_softmax_scaling(2.0, 16.0, 5), (2147483647, 31));
        assert_eq!(preprocess_softmax_scaling(2.0, 8.0, 5), (1073741824, 31));
        assert_eq!(calculate_input_radius(4, 27), 15);
        assert_eq!(calculate_input_radius(3, 27), 14);
        assert_eq!(calculate_input_radius(3, 28), 7);
        assert_eq!(calculate_input_radius(4, 2), 503316480);
        // Out-of-range arguments do not panic.
        let _ = preprocess_softmax_scaling(1.0, 1.0, 99);
        let _ = calculate_input_radius(-5, 99);
    }

    #[test]
    fn saturating_multiply_by_pot() {
        assert_eq!(saturating_rounding_multiply_by_pot(1 << 20, 3), 1 << 23);
        assert_eq!(saturating_rounding_multiply_by_pot(1 << 30, 1), i32::MAX);
        assert_eq!(saturating_rounding_multiply_by_pot(-(1 << 30), 1), i32::MIN);
        assert_eq!(
            saturating_rounding_multiply_by_pot(-(1 << 30) + 1, 1),
            i32::MIN + 2
        );
        assert_eq!(saturating_rounding_multiply_by_pot(5, -1), 3);
        assert_eq!(saturating_rounding_multiply_by_pot(-5, -1), -3);
        assert_eq!(saturating_rounding_multiply_by_pot(7, 0), 7);
    }

    #[test]
    fn exp_special_points() {
        // exp(0) is One() of Q0.31.
        assert_eq!(exp_on_negative_values(0), i32::MAX);
        // exp(-1/4) is the interval polynomial (Taylor around -1/8, fourth
        // order) at its left end: error about (1/8)^5 / 120.
        let got = exp_on_negative_values(-(1 << 24)) as f64 / (1i64 << 31) as f64;
        assert!((got - libm::exp(-0.25)).abs() < 3e-7, "{got}");
        // Large negative inputs underflow to (nearly) zero without panicking.
        assert!(exp_on_negative_values(i32::MIN) <= 1);
    }

    #[test]
    fn quantize_multiplier_known_values() {
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(0.25), (1 << 30, -1));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        let (m, s) = quantize_multiplier(0.1);
        assert_eq!(s, -3);
        assert_eq!(m, 1717986918);
    }

    #[test]
    fn multiply_by_quantized_multiplier_scales() {
        let (m, s) = quantize_multiplier(0.5);
        assert_eq!(multiply_by_quantized_multiplier(100, m, s), 50);
        assert_eq!(multiply_by_quantized_multiplier(101, m, s), 51);
        assert_eq!(multiply_by_quantized_multiplier(-101, m, s), -50); // ties round up
        assert_eq!(
            multiply_by_quantized_multiplier_single_rounding(-101, m, s),
            -50
        );
        assert_eq!(
            multiply_by_quantized_multiplier_single_rounding(-103, m, s),
            -51
        );
        assert_eq!(multiply_by_quantized_multiplier(-103, m, s), -51);
        let (m, s) = quantize_multiplier(3.0);
        assert_eq!(multiply_by_quantized_multiplier(7, m, s), 21);
    }

    #[test]
    fn exp_matches_float() {
        for k in 0..200 {
            let x = -(k as f64) * 0.08; // 0 .. -16
            let raw = (x * (1i64 << 26) as f64) as i32;
            let got = exp_on_negative_values(raw) as f64 / (1i64 << 31) as f64;
            assert!((got - libm::exp(x)).abs() < 1e-6, "exp({x}) = {got}");
        }
    }

    #[test]
    fn reciprocal_matches_float() {
        for &v in &[1.0f64, 1.5, 2.0, 3.7, 100.0, 4000.0] {
            let raw = (v * (1i64 << 19) as f64) as i32; // Q12.19
            let (r, bits) = get_reciprocal(raw, 12);
            let got = r as f64 / (1i64 << 31) as f64 / libm::pow(2.0, bits as f64);
            assert!(
                (got - 1.0 / v).abs() < 1e-6 * (1.0 / v).max(1.0),
                "1/{v}: {got}"
            );
        }
    }

    #[test]
    fn rounding_helpers() {
        assert_eq!(round_half_even_to_i32(2.5), 2);
        assert_eq!(round_half_even_to_i32(3.5), 4);
        assert_eq!(round_half_even_to_i32(-2.5), -2);
        assert_eq!(round_half_away_to_i32(2.5), 3);
        assert_eq!(round_half_away_to_i32(-2.5), -3);
        assert_eq!(round_half_even_to_i32(f32::NAN), 0);
        assert_eq!(round_half_even_to_i32(1e20), i32::MAX);
    }
}
