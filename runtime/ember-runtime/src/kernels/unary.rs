//! Element-wise f32 functions without parameters: `erf`, the exact (erf)
//! GELU, `sqrt`, the logistic sigmoid.

use super::check_len;
use super::dynamic_fc::{dynamic_quant_params, quantize_u8};
use super::erf_table::{ERF, ERF_SLOPE};
use crate::error::Result;

/// Which function [`unary_f32`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UnaryOp {
    /// The error function.
    Erf = 0,
    /// `x · 0.5 · (1 + erf(x / √2))`, evaluated in the order of the ONNX
    /// subgraph it replaces: `((erf(x / √2) + 1) · x) · 0.5`.
    Gelu = 1,
    /// Square root (NaN below zero).
    Sqrt = 2,
    /// `DynamicQuantizeLinear` of the whole tensor, dequantized again:
    /// `(q − zp) · scale` with the parameters of
    /// [`super::dynamic_fc::dynamic_quant_params`]. Feeds a float kernel
    /// what `ConvInteger` would see (the weights are dequantized by the
    /// compiler).
    FakeQuantDynamic = 3,
    /// The logistic function `1 / (1 + e^(−x))`.
    Sigmoid = 4,
}

impl UnaryOp {
    /// Decodes the op's param.
    pub fn from_i32(v: i32) -> Option<UnaryOp> {
        Some(match v {
            0 => UnaryOp::Erf,
            1 => UnaryOp::Gelu,
            2 => UnaryOp::Sqrt,
            3 => UnaryOp::FakeQuantDynamic,
            4 => UnaryOp::Sigmoid,
            _ => return None,
        })
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
pub fn unary_f32(op: UnaryOp, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len(y.len(), Some(x.len()), "unary: output length")?;
    match op {
        UnaryOp::Erf => x.iter().zip(y).for_each(|(v, o)| *o = erf(*v)),
        UnaryOp::Gelu => x.iter().zip(y).for_each(|(&v, o)| {
            *o = ((erf(v / core::f32::consts::SQRT_2) + 1.0) * v) * 0.5;
        }),
        UnaryOp::Sqrt => x.iter().zip(y).for_each(|(v, o)| *o = libm::sqrtf(*v)),
        // e^(−x) overflows to +inf below about −88.7, giving 0 as it should.
        UnaryOp::Sigmoid => x
            .iter()
            .zip(y)
            .for_each(|(&v, o)| *o = 1.0 / (1.0 + libm::expf(-v))),
        UnaryOp::FakeQuantDynamic => {
            let (scale, zp) = dynamic_quant_params(x);
            x.iter()
                .zip(y)
                .for_each(|(&v, o)| *o = (quantize_u8(v, scale, zp) - zp) as f32 * scale);
        }
    }
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
    fn sigmoid_values() {
        let x = [-100.0, -1.0, 0.0, 2.0, 100.0, f32::NAN];
        let mut y = [0f32; 6];
        unary_f32(UnaryOp::Sigmoid, &x, &mut y).unwrap();
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
        unary_f32(UnaryOp::Gelu, &x, &mut y).unwrap();
        let want = [-0.158_655_25, 0.0, 0.345_731_14, 2.995_950_4];
        for (a, w) in y.iter().zip(want) {
            assert!((a - w).abs() < 1e-6, "{a} {w}");
        }
        unary_f32(UnaryOp::Erf, &x, &mut y).unwrap();
        assert!((y[3] - 0.999_977_9).abs() < 1e-6);
        unary_f32(UnaryOp::Sqrt, &[4.0, -1.0], &mut y[..2]).unwrap();
        assert_eq!(y[0], 2.0);
        assert!(y[1].is_nan());
        assert!(unary_f32(UnaryOp::Erf, &x, &mut y[..3]).is_err());
        // [-1, 3]: scale 4/255, zero point 64; 0.5 → 32 steps above it.
        let mut q = [0f32; 3];
        unary_f32(UnaryOp::FakeQuantDynamic, &[-1.0, 3.0, 0.5], &mut q).unwrap();
        let s = 4.0f32 / 255.0;
        assert_eq!(q, [-64.0 * s, 191.0 * s, 32.0 * s]);
        assert_eq!(UnaryOp::from_i32(4), Some(UnaryOp::Sigmoid));
        assert_eq!(UnaryOp::from_i32(5), None);
    }
}
