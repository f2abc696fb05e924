//! Element-wise functions of one tensor: the f32 functions of ONNX's
//! activations and math operators ([`UnaryOp`], some with the parameters
//! `alpha` and `beta` of [`UnaryFn`]), and the 256-entry lookup table that
//! runs any of them on int8 or uint8 data ([`lut_8`]).

use super::check_len;
use super::dynamic_fc::{dynamic_quant_params, quantize_u8};
use super::erf_table::{ERF, ERF_SLOPE};
use crate::error::{Error, Result};

/// Declares [`UnaryOp`] with its codes and whether it takes parameters.
macro_rules! unary_ops {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $params:literal; )*) => {
        /// Which function [`unary_f32`] applies.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum UnaryOp {
            $( $(#[$doc])* $name = $code, )*
        }

        impl UnaryOp {
            /// Every function, in code order.
            pub const ALL: &'static [UnaryOp] = &[$(UnaryOp::$name,)*];

            /// Decodes the op's param.
            pub fn from_i32(v: i32) -> Option<UnaryOp> {
                match v {
                    $( $code => Some(UnaryOp::$name), )*
                    _ => None,
                }
            }

            /// Whether the function reads `alpha` and `beta` (stored in
            /// the op's params after its code).
            pub fn has_params(self) -> bool {
                match self {
                    $( UnaryOp::$name => $params, )*
                }
            }
        }
    };
}

unary_ops! {
    /// The error function.
    Erf = 0, false;
    /// `x · 0.5 · (1 + erf(x / √2))`, evaluated in the order of the ONNX
    /// subgraph it replaces: `((erf(x / √2) + 1) · x) · 0.5`.
    Gelu = 1, false;
    /// Square root (NaN below zero).
    Sqrt = 2, false;
    /// `DynamicQuantizeLinear` of the whole tensor, dequantized again:
    /// `(q − zp) · scale` with the parameters of
    /// [`super::dynamic_fc::dynamic_quant_params`]. Feeds a float kernel
    /// what `ConvInteger` would see (the weights are dequantized by the
    /// compiler). Not element-wise: [`UnaryFn::at`] is the identity.
    FakeQuantDynamic = 3, false;
    /// The logistic function `1 / (1 + e^(−x))`.
    Sigmoid = 4, false;
    /// Hyperbolic tangent.
    Tanh = 5, false;
    /// `e^x`.
    Exp = 6, false;
    /// Natural logarithm (−inf at 0, NaN below).
    Log = 7, false;
    /// `|x|`.
    Abs = 8, false;
    /// `−x`.
    Neg = 9, false;
    /// `1 / x`.
    Reciprocal = 10, false;
    /// Rounds down.
    Floor = 11, false;
    /// Rounds up.
    Ceil = 12, false;
    /// Rounds to the nearest integer, halves to even.
    Round = 13, false;
    /// −1, 0 or 1 (NaN stays NaN).
    Sign = 14, false;
    /// `ln(1 + e^x)`.
    Softplus = 15, false;
    /// `x / (1 + |x|)`.
    Softsign = 16, false;
    /// `x · tanh(softplus(x))`.
    Mish = 17, false;
    /// `x · max(0, min(1, x/6 + 1/2))`.
    HardSwish = 18, false;
    /// GELU with the tanh approximation:
    /// `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
    GeluTanh = 19, false;
    /// Sine.
    Sin = 20, false;
    /// Cosine.
    Cos = 21, false;
    /// Tangent.
    Tan = 22, false;
    /// Arc sine.
    Asin = 23, false;
    /// Arc cosine.
    Acos = 24, false;
    /// Arc tangent.
    Atan = 25, false;
    /// Hyperbolic sine.
    Sinh = 26, false;
    /// Hyperbolic cosine.
    Cosh = 27, false;
    /// Inverse hyperbolic sine.
    Asinh = 28, false;
    /// Inverse hyperbolic cosine.
    Acosh = 29, false;
    /// Inverse hyperbolic tangent.
    Atanh = 30, false;
    /// `max(0, min(1, α·x + β))`.
    HardSigmoid = 64, true;
    /// `x` for `x ≥ 0`, else `α·x`.
    LeakyRelu = 65, true;
    /// `x` for `x > 0`, else `α·(e^x − 1)`.
    Elu = 66, true;
    /// `γ·x` for `x > 0`, else `γ·α·(e^x − 1)` (`α` then `γ` as `β`).
    Selu = 67, true;
    /// `max(0, x) + min(0, α·(e^(x/α) − 1))`.
    Celu = 68, true;
    /// `x` for `x > α`, else 0.
    ThresholdedRelu = 69, true;
    /// `x^α` (a `Pow` whose exponent is one constant).
    PowScalar = 70, true;
}

/// A function of [`UnaryOp`] with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnaryFn {
    /// The function.
    pub op: UnaryOp,
    /// Its first parameter (0 when it has none).
    pub alpha: f32,
    /// Its second parameter (0 when it has none).
    pub beta: f32,
}

impl UnaryFn {
    /// A function without parameters.
    pub const fn of(op: UnaryOp) -> UnaryFn {
        UnaryFn {
            op,
            alpha: 0.0,
            beta: 0.0,
        }
    }

    /// The function at `x`. The compiler builds int8 lookup tables from
    /// this same code, so the table and the f32 kernel agree exactly.
    #[inline]
    pub fn at(&self, x: f32) -> f32 {
        use libm::{expf, expm1f, log1pf, tanhf};
        let (a, b) = (self.alpha, self.beta);
        // ln(1 + e^x) without overflow: max(x, 0) + ln(1 + e^−|x|).
        let softplus = |x: f32| x.max(0.0) + log1pf(expf(-x.abs()));
        match self.op {
            UnaryOp::Erf => erf(x),
            UnaryOp::Gelu => ((erf(x / core::f32::consts::SQRT_2) + 1.0) * x) * 0.5,
            UnaryOp::Sqrt => libm::sqrtf(x),
            UnaryOp::FakeQuantDynamic => x,
            // e^(−x) overflows to +inf below about −88.7, giving 0 as it should.
            UnaryOp::Sigmoid => 1.0 / (1.0 + expf(-x)),
            UnaryOp::Tanh => tanhf(x),
            UnaryOp::Exp => expf(x),
            UnaryOp::Log => libm::logf(x),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Neg => -x,
            UnaryOp::Reciprocal => 1.0 / x,
            UnaryOp::Floor => libm::floorf(x),
            UnaryOp::Ceil => libm::ceilf(x),
            UnaryOp::Round => libm::rintf(x),
            UnaryOp::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            UnaryOp::Softplus => softplus(x),
            UnaryOp::Softsign => x / (1.0 + x.abs()),
            UnaryOp::Mish => x * tanhf(softplus(x)),
            UnaryOp::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            UnaryOp::GeluTanh => {
                const K: f32 = 0.797_884_6; // √(2/π)
                0.5 * x * (1.0 + tanhf(K * (x + 0.044_715 * x * x * x)))
            }
            UnaryOp::Sin => libm::sinf(x),
            UnaryOp::Cos => libm::cosf(x),
            UnaryOp::Tan => libm::tanf(x),
            UnaryOp::Asin => libm::asinf(x),
            UnaryOp::Acos => libm::acosf(x),
            UnaryOp::Atan => libm::atanf(x),
            UnaryOp::Sinh => libm::sinhf(x),
            UnaryOp::Cosh => libm::coshf(x),
            UnaryOp::Asinh => libm::asinhf(x),
            UnaryOp::Acosh => libm::acoshf(x),
            UnaryOp::Atanh => libm::atanhf(x),
            // NaN stays NaN: `clamp` keeps it, `max`/`min` would not.
            UnaryOp::HardSigmoid => (a * x + b).clamp(0.0, 1.0),
            UnaryOp::LeakyRelu => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            UnaryOp::Elu => {
                if x > 0.0 {
                    x
                } else {
                    a * expm1f(x)
                }
            }
            UnaryOp::Selu => {
                if x > 0.0 {
                    b * x
                } else {
                    b * (a * expm1f(x))
                }
            }
            UnaryOp::Celu => {
                if x > 0.0 {
                    x
                } else {
                    a * expm1f(x / a)
                }
            }
            UnaryOp::ThresholdedRelu => {
                if x > a || x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            UnaryOp::PowScalar => libm::powf(x, a),
        }
    }
}

/// The error function: cubic Hermite interpolation between tabulated
/// values and slopes at multiples of 1/32 on [0, 4) (odd symmetry; ±1 from
/// 4 on, where `erf` rounds to 1 in f32). Within 2e-7 of `erf` everywhere
/// (checked against `libm::erff` on a dense grid); about a quarter of its
/// instructions, with no `exp` call.
#[inline]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    if a.is_nan() {
        return x;
    }
    if a >= 4.0 {
        return 1f32.copysign(x);
    }
    let s = a * 32.0;
    let i = s as usize; // 0..=127: a < 4
    let t = s - i as f32;
    let (Some(f), Some(d)) = (ERF.get(i..i + 2), ERF_SLOPE.get(i..i + 2)) else {
        return libm::erff(x);
    };
    let (t2, t3) = (t * t, t * t * t);
    let h00 = 2.0 * t3 - 3.0 * t2 + 1.0;
    let h10 = t3 - 2.0 * t2 + t;
    let h01 = 3.0 * t2 - 2.0 * t3;
    let h11 = t3 - t2;
    (h00 * f[0] + h10 * d[0] + h01 * f[1] + h11 * d[1]).copysign(x)
}

/// `y[i] = f(x[i])`.
pub fn unary_f32(f: &UnaryFn, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(y.len(), Some(x.len()), "unary: output length")?;
    match f.op {
        UnaryOp::FakeQuantDynamic => {
            let (scale, zp) = dynamic_quant_params(x);
            x.iter()
                .zip(y)
                .for_each(|(&v, o)| *o = (quantize_u8(v, scale, zp) - zp) as f32 * scale);
        }
        // One loop per function, so each inlines `at` for its own case.
        op => {
            macro_rules! each {
                ($($o:ident),*) => {
                    match op {
                        $(UnaryOp::$o => {
                            let g = UnaryFn { op: UnaryOp::$o, ..*f };
                            x.iter().zip(y).for_each(|(&v, o)| *o = g.at(v));
                        })*
                        _ => x.iter().zip(y).for_each(|(&v, o)| *o = f.at(v)),
                    }
                };
            }
            each!(Erf, Gelu, Sigmoid, Tanh, HardSwish, LeakyRelu, GeluTanh)
        }
    }
    Ok(())
}

/// `y[i] = table[x[i]]` on bytes: int8 data index the table by their bit
/// pattern (`x as u8`), so the compiler lays the table out that way. The
/// int8 form of every [`UnaryOp`] (TFLite's approach for its LUT
/// activations): one load per element whatever the function costs.
pub fn lut_8(x: &[u8], table: &[u8], y: &mut [u8]) -> Result<()> {
    check_len(y.len(), Some(x.len()), "lut: output length")?;
    let table: &[u8; 256] = table
        .try_into()
        .map_err(|_| Error::ShapeMismatch("lut: the table must have 256 entries"))?;
    x.iter().zip(y).for_each(|(&v, o)| *o = table[v as usize]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_within_2e7_of_libm() {
        let mut worst = 0f32;
        for i in -600_000..=600_000 {
            let x = i as f32 * 1e-5;
            worst = worst.max((erf(x) - libm::erff(x)).abs());
        }
        assert!(worst <= 2e-7, "max |erf − erff| = {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-9.0), -1.0);
        assert!(erf(f32::NAN).is_nan());
        assert_eq!(erf(f32::INFINITY), 1.0);
    }

    #[test]
    fn activations_match_their_definitions() {
        let f = |op, alpha, beta, x: f32| UnaryFn { op, alpha, beta }.at(x);
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        for &x in &[-20.0f32, -3.0, -0.7, 0.0, 0.4, 2.5, 30.0] {
            let sp = (1.0 + (x as f64).exp()).ln() as f32;
            assert!(close(f(UnaryOp::Softplus, 0.0, 0.0, x), sp), "softplus {x}");
            assert!(
                close(f(UnaryOp::Mish, 0.0, 0.0, x), x * sp.tanh()),
                "mish {x}"
            );
            let hs = x * ((x + 3.0) / 6.0).clamp(0.0, 1.0);
            assert!(
                close(f(UnaryOp::HardSwish, 0.0, 0.0, x), hs),
                "hardswish {x}"
            );
            let elu = if x > 0.0 { x } else { 0.5 * (x.exp() - 1.0) };
            assert!(close(f(UnaryOp::Elu, 0.5, 0.0, x), elu), "elu {x}");
            let lr = if x >= 0.0 { x } else { 0.1 * x };
            assert_eq!(f(UnaryOp::LeakyRelu, 0.1, 0.0, x), lr);
            assert_eq!(
                f(UnaryOp::HardSigmoid, 0.2, 0.5, x),
                (0.2 * x + 0.5).clamp(0.0, 1.0)
            );
        }
        assert_eq!(f(UnaryOp::Round, 0.0, 0.0, 2.5), 2.0);
        assert_eq!(f(UnaryOp::Round, 0.0, 0.0, -1.5), -2.0);
        assert_eq!(f(UnaryOp::Sign, 0.0, 0.0, -0.0), 0.0);
        assert!(f(UnaryOp::Sign, 0.0, 0.0, f32::NAN).is_nan());
        assert!(f(UnaryOp::HardSigmoid, 0.2, 0.5, f32::NAN).is_nan());
        assert_eq!(f(UnaryOp::ThresholdedRelu, 1.0, 0.0, 1.0), 0.0);
        assert_eq!(f(UnaryOp::PowScalar, 3.0, 0.0, 2.0), 8.0);
        for op in UnaryOp::ALL {
            assert_eq!(UnaryOp::from_i32(*op as i32), Some(*op));
        }
    }

    #[test]
    fn lut_indexes_by_bit_pattern() {
        let table: [u8; 256] = core::array::from_fn(|i| (i as u8).wrapping_mul(3));
        let mut y = [0u8; 3];
        lut_8(&[0, 0x80, 0xff], &table, &mut y).unwrap();
        assert_eq!(y, [0, 0x80, 0xfd]);
        assert!(lut_8(&[0], &table[..255], &mut y[..1]).is_err());
        assert!(lut_8(&[0, 1], &table, &mut y[..1]).is_err());
    }

    #[test]
    fn sigmoid_values() {
        let x = [-100.0, -1.0, 0.0, 2.0, 100.0, f32::NAN];
        let mut y = [0f32; 6];
        unary_f32(&UnaryFn::of(UnaryOp::Sigmoid), &x, &mut y).unwrap();
        let want = [0.0, 0.268_941_43, 0.5, 0.880_797_1, 1.0];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() <= 1e-7, "{g} vs {w}");
        }
        assert!(y[5].is_nan());
    }

    #[test]
    fn values() {
        let x = [-1.0, 0.0, 0.5, 3.0];
        let mut y = [0f32; 4];
        unary_f32(&UnaryFn::of(UnaryOp::Gelu), &x, &mut y).unwrap();
        let want = [-0.158_655_25, 0.0, 0.345_731_14, 2.995_950_4];
        for (a, w) in y.iter().zip(want) {
            assert!((a - w).abs() < 1e-6, "{a} {w}");
        }
        unary_f32(&UnaryFn::of(UnaryOp::Erf), &x, &mut y).unwrap();
        assert!((y[3] - 0.999_977_9).abs() < 1e-6);
        unary_f32(&UnaryFn::of(UnaryOp::Sqrt), &[4.0, -1.0], &mut y[..2]).unwrap();
        assert_eq!(y[0], 2.0);
        assert!(y[1].is_nan());
        assert!(unary_f32(&UnaryFn::of(UnaryOp::Erf), &x, &mut y[..3]).is_err());
        // [-1, 3]: scale 4/255, zero point 64; 0.5 → 32 steps above it.
        let mut q = [0f32; 3];
        unary_f32(
            &UnaryFn::of(UnaryOp::FakeQuantDynamic),
            &[-1.0, 3.0, 0.5],
            &mut q,
        )
        .unwrap();
        let s = 4.0f32 / 255.0;
        assert_eq!(q, [-64.0 * s, 191.0 * s, 32.0 * s]);
        assert_eq!(UnaryOp::from_i32(4), Some(UnaryOp::Sigmoid));
        assert_eq!(UnaryOp::from_i32(31), None);
    }
}
