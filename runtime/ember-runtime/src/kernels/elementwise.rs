//! Element-wise binary operators with broadcasting.

use super::broadcast::Broadcast;
use super::quant::{multiply_by_quantized_multiplier, quantize_multiplier, round_half_even_to_i32};
use super::{clamp_f32, sat_i8};
use crate::error::{Error, Result};

/// Precomputed parameters of TFLite's int8 Add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddParamsS8 {
    /// Zero point of `a`.
    pub a_zp: i32,
    /// Zero point of `b`.
    pub b_zp: i32,
    /// Output zero point.
    pub out_zp: i32,
    /// Left shift applied to both inputs (20 for int8).
    pub left_shift: i32,
    /// Multiplier of `a`.
    pub a_mult: i32,
    /// Shift of `a` (≤ 0).
    pub a_shift: i32,
    /// Multiplier of `b`.
    pub b_mult: i32,
    /// Shift of `b` (≤ 0).
    pub b_shift: i32,
    /// Output multiplier.
    pub out_mult: i32,
    /// Output shift.
    pub out_shift: i32,
    /// Lowest output.
    pub act_min: i32,
    /// Highest output.
    pub act_max: i32,
}

/// Computes [`AddParamsS8`] exactly as TFLite's Add prepare does for int8
/// (also valid for Sub with `b`'s multiplier negated by the caller):
/// `left_shift = 20`, `twice_max = 2·max(a_scale, b_scale)`, input
/// multipliers `scale / twice_max`, output multiplier
/// `twice_max / (2^20 · out_scale)`, each through [`quantize_multiplier`].
#[allow(clippy::too_many_arguments)]
pub fn add_params_s8(
    a_scale: f32,
    a_zp: i32,
    b_scale: f32,
    b_zp: i32,
    out_scale: f32,
    out_zp: i32,
    act_min: i32,
    act_max: i32,
) -> AddParamsS8 {
    let left_shift = 20;
    // As in TFLite: the max and the doubling in f32 (exact), the quotients
    // in f64; `(1 << 20) * out_scale` is an f32 product (exact: a power of two).
    let twice_max = (2.0 * a_scale.max(b_scale)) as f64;
    let real_a = a_scale as f64 / twice_max;
    let real_b = b_scale as f64 / twice_max;
    let real_out = twice_max / ((1i32 << left_shift) as f32 * out_scale) as f64;
    let (a_mult, a_shift) = quantize_multiplier(real_a);
    let (b_mult, b_shift) = quantize_multiplier(real_b);
    let (out_mult, out_shift) = quantize_multiplier(real_out);
    AddParamsS8 {
        a_zp,
        b_zp,
        out_zp,
        left_shift,
        a_mult,
        a_shift,
        b_mult,
        b_shift,
        out_mult,
        out_shift,
        act_min,
        act_max,
    }
}

/// int8 Add with TFLite reference semantics (`reference_integer_ops::Add`):
/// each input is offset by its zero point, shifted left by `left_shift`,
/// scaled by its multiplier; the sum is scaled by the output multiplier,
/// offset by the output zero point and clamped. Operands broadcast
/// numpy-style to `y_dims`.
pub fn add_s8(
    a: &[i8],
    a_dims: &[usize],
    b: &[i8],
    b_dims: &[usize],
    p: &AddParamsS8,
    y: &mut [i8],
    y_dims: &[usize],
) -> Result<()> {
    let bc = Broadcast::new(a_dims, b_dims, y_dims)?;
    bc.check(a.len(), b.len(), y.len())?;
    let ls = p.left_shift.clamp(0, 30) as u32;
    bc.for_each(|o, ia, ib| {
        let av = (a[ia] as i32).wrapping_sub(p.a_zp).wrapping_shl(ls);
        let bv = (b[ib] as i32).wrapping_sub(p.b_zp).wrapping_shl(ls);
        let sa = multiply_by_quantized_multiplier(av, p.a_mult, p.a_shift);
        let sb = multiply_by_quantized_multiplier(bv, p.b_mult, p.b_shift);
        let raw = multiply_by_quantized_multiplier(sa.wrapping_add(sb), p.out_mult, p.out_shift)
            .saturating_add(p.out_zp);
        y[o] = sat_i8(raw, p.act_min, p.act_max);
    });
    Ok(())
}

/// int8 Add with onnxruntime-style float semantics: with
/// `r = (a − a_zp)·a_scale + (b − b_zp)·b_scale`, the output is
/// `round_half_even(r / out_scale) + out_zp`, clamped to `[act_min, act_max]`.
#[allow(clippy::too_many_arguments)]
pub fn add_s8_float(
    a: &[i8],
    a_dims: &[usize],
    a_scale: f32,
    a_zp: i32,
    b: &[i8],
    b_dims: &[usize],
    b_scale: f32,
    b_zp: i32,
    out_scale: f32,
    out_zp: i32,
    act_min: i32,
    act_max: i32,
    y: &mut [i8],
    y_dims: &[usize],
) -> Result<()> {
    let bc = Broadcast::new(a_dims, b_dims, y_dims)?;
    bc.check(a.len(), b.len(), y.len())?;
    bc.for_each(|o, ia, ib| {
        let ra = (a[ia] as i32).wrapping_sub(a_zp) as f32 * a_scale;
        let rb = (b[ib] as i32).wrapping_sub(b_zp) as f32 * b_scale;
        let q = round_half_even_to_i32((ra + rb) / out_scale).saturating_add(out_zp);
        y[o] = sat_i8(q, act_min, act_max);
    });
    Ok(())
}

/// Precomputed parameters of TFLite's int8 Mul.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MulParamsS8 {
    /// Zero point of `a`.
    pub a_zp: i32,
    /// Zero point of `b`.
    pub b_zp: i32,
    /// Output zero point.
    pub out_zp: i32,
    /// Output multiplier.
    pub out_mult: i32,
    /// Output shift.
    pub out_shift: i32,
    /// Lowest output.
    pub act_min: i32,
    /// Highest output.
    pub act_max: i32,
}

/// Computes [`MulParamsS8`] as TFLite's Mul prepare does:
/// `real = a_scale·b_scale / out_scale` in f64, through [`quantize_multiplier`].
#[allow(clippy::too_many_arguments)]
pub fn mul_params_s8(
    a_scale: f32,
    a_zp: i32,
    b_scale: f32,
    b_zp: i32,
    out_scale: f32,
    out_zp: i32,
    act_min: i32,
    act_max: i32,
) -> MulParamsS8 {
    let real = (a_scale as f64 * b_scale as f64) / out_scale as f64;
    let (out_mult, out_shift) = quantize_multiplier(real);
    MulParamsS8 {
        a_zp,
        b_zp,
        out_zp,
        out_mult,
        out_shift,
        act_min,
        act_max,
    }
}

/// int8 Mul with TFLite reference semantics (`reference_integer_ops::Mul`):
/// `clamp(mbqm((a − a_zp)·(b − b_zp), out_mult, out_shift) + out_zp)`,
/// broadcasting numpy-style to `y_dims`.
pub fn mul_s8(
    a: &[i8],
    a_dims: &[usize],
    b: &[i8],
    b_dims: &[usize],
    p: &MulParamsS8,
    y: &mut [i8],
    y_dims: &[usize],
) -> Result<()> {
    let bc = Broadcast::new(a_dims, b_dims, y_dims)?;
    bc.check(a.len(), b.len(), y.len())?;
    bc.for_each(|o, ia, ib| {
        let av = (a[ia] as i32).wrapping_sub(p.a_zp);
        let bv = (b[ib] as i32).wrapping_sub(p.b_zp);
        let raw = multiply_by_quantized_multiplier(av.wrapping_mul(bv), p.out_mult, p.out_shift)
            .saturating_add(p.out_zp);
        y[o] = sat_i8(raw, p.act_min, p.act_max);
    });
    Ok(())
}

/// Binary operator of [`binary_f32`] and [`binary_i32`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// a + b
    Add,
    /// a − b
    Sub,
    /// a × b
    Mul,
    /// a ÷ b (integers: truncated toward zero)
    Div,
    /// a to the power b
    Pow,
    /// The smaller (NaN if either is NaN)
    Min,
    /// The larger (NaN if either is NaN)
    Max,
    /// Remainder with the divisor's sign (Python's `%`; f32: `fmod`, as
    /// ONNX requires `fmod = 1` for floats)
    Mod,
    /// Remainder with the dividend's sign (C's `fmod`, `%` on integers)
    Fmod,
    /// a where a ≥ 0, else a × b (b is the slope)
    PRelu,
}

impl BinaryOp {
    /// `op(a, b)` in f32.
    #[inline]
    pub fn f32(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => libm::powf(a, b),
            BinaryOp::Min if a.is_nan() || b.is_nan() => f32::NAN,
            BinaryOp::Max if a.is_nan() || b.is_nan() => f32::NAN,
            BinaryOp::Min => a.min(b),
            BinaryOp::Max => a.max(b),
            BinaryOp::Mod | BinaryOp::Fmod => libm::fmodf(a, b),
            BinaryOp::PRelu if a < 0.0 => a * b,
            BinaryOp::PRelu => a,
        }
    }

    /// `op(a, b)` in i32, wrapping on overflow like the int32 arithmetic
    /// of every ONNX runtime; `None` for a division by zero.
    #[inline]
    pub fn i32(self, a: i32, b: i32) -> Option<i32> {
        Some(match self {
            BinaryOp::Add => a.wrapping_add(b),
            BinaryOp::Sub => a.wrapping_sub(b),
            BinaryOp::Mul => a.wrapping_mul(b),
            BinaryOp::Div => a.checked_div(b).or((b != 0).then_some(i32::MIN))?,
            BinaryOp::Pow => match b {
                0.. => a.wrapping_pow(b as u32),
                // 1/a^|b| truncated: 0 unless |a| is 1.
                _ => match a {
                    1 => 1,
                    -1 if b % 2 == 0 => 1,
                    -1 => -1,
                    0 => return None,
                    _ => 0,
                },
            },
            BinaryOp::Min => a.min(b),
            BinaryOp::Max => a.max(b),
            BinaryOp::PRelu if a < 0 => a.wrapping_mul(b),
            BinaryOp::PRelu => a,
            BinaryOp::Fmod => a.checked_rem(b).or((b != 0).then_some(0))?,
            BinaryOp::Mod => {
                let r = a.checked_rem(b).or((b != 0).then_some(0))?;
                if r != 0 && (r < 0) != (b < 0) {
                    r + b
                } else {
                    r
                }
            }
        })
    }
}

/// f32 binary op with numpy broadcasting to `y_dims`, clamped to
/// `[act_min, act_max]`. Division follows IEEE 754 (x/0 is ±inf or NaN).
#[allow(clippy::too_many_arguments)]
pub fn binary_f32(
    op: BinaryOp,
    a: &[f32],
    a_dims: &[usize],
    b: &[f32],
    b_dims: &[usize],
    act_min: f32,
    act_max: f32,
    y: &mut [f32],
    y_dims: &[usize],
) -> Result<()> {
    let bc = Broadcast::new(a_dims, b_dims, y_dims)?;
    bc.check(a.len(), b.len(), y.len())?;
    macro_rules! each {
        ($($o:ident),*) => {
            match op {
                $(BinaryOp::$o => bc.for_each(|o, ia, ib| {
                    y[o] = clamp_f32(BinaryOp::$o.f32(a[ia], b[ib]), act_min, act_max);
                }),)*
            }
        };
    }
    each!(Add, Sub, Mul, Div, Pow, Min, Max, Mod, Fmod, PRelu);
    Ok(())
}

/// i32 binary op with numpy broadcasting to `y_dims` (int32 data, and
/// int64 data run as int32). A division or remainder by zero is
/// [`Error::DivisionByZero`].
pub fn binary_i32(
    op: BinaryOp,
    a: &[i32],
    a_dims: &[usize],
    b: &[i32],
    b_dims: &[usize],
    y: &mut [i32],
    y_dims: &[usize],
) -> Result<()> {
    let bc = Broadcast::new(a_dims, b_dims, y_dims)?;
    bc.check(a.len(), b.len(), y.len())?;
    let mut ok = true;
    bc.for_each(|o, ia, ib| match op.i32(a[ia], b[ib]) {
        Some(v) => y[o] = v,
        None => {
            y[o] = 0;
            ok = false;
        }
    });
    if ok {
        Ok(())
    } else {
        Err(Error::DivisionByZero)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::error::Error;
    use std::vec;

    #[test]
    fn f32_broadcast_ops() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [10.0, 20.0, 30.0, 40.0];
        let mut y = [0f32; 24];
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
            binary_f32(
                op,
                &a,
                &[2, 1, 3],
                &b,
                &[1, 4, 1],
                f32::MIN,
                f32::MAX,
                &mut y,
                &[2, 4, 3],
            )
            .unwrap();
            for (o, &v) in y.iter().enumerate() {
                let (i, j, k) = (o / 12, o / 3 % 4, o % 3);
                let (x, z) = (a[i * 3 + k], b[j]);
                let want = match op {
                    BinaryOp::Add => x + z,
                    BinaryOp::Sub => x - z,
                    BinaryOp::Mul => x * z,
                    BinaryOp::Div => x / z,
                    _ => unreachable!(),
                };
                assert_eq!(v, want, "{op:?} {o}");
            }
        }
        assert_eq!(y[4], 2.0 / 20.0); // a[0, 0, 1] / b[0, 1, 0]
                                      // Fused clamp.
        binary_f32(
            BinaryOp::Sub,
            &a,
            &[6],
            &[3.0],
            &[1],
            0.0,
            2.0,
            &mut y[..6],
            &[6],
        )
        .unwrap();
        assert_eq!(&y[..6], &[0.0, 0.0, 0.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn min_max_pow_mod_f32() {
        let a = [1.0f32, -3.5, f32::NAN, 7.0];
        let b = [2.0f32, 2.0, 0.0, -2.0];
        let mut y = [0f32; 4];
        let run = |op, y: &mut [f32]| {
            binary_f32(
                op,
                &a,
                &[4],
                &b,
                &[4],
                f32::NEG_INFINITY,
                f32::INFINITY,
                y,
                &[4],
            )
            .unwrap()
        };
        run(BinaryOp::Max, &mut y);
        assert_eq!(&y[..2], &[2.0, 2.0]);
        assert!(y[2].is_nan(), "NaN propagates through Max");
        run(BinaryOp::Min, &mut y);
        assert_eq!([y[0], y[1], y[3]], [1.0, -3.5, -2.0]);
        run(BinaryOp::Pow, &mut y);
        assert_eq!([y[0], y[3]], [1.0, 1.0 / 49.0]);
        run(BinaryOp::Fmod, &mut y);
        assert_eq!([y[0], y[1], y[3]], [1.0, -1.5, 1.0]);
    }

    #[test]
    fn int32_ops_wrap_and_refuse_division_by_zero() {
        let op = |o: BinaryOp, a: i32, b: i32| o.i32(a, b);
        assert_eq!(op(BinaryOp::Add, i32::MAX, 1), Some(i32::MIN));
        assert_eq!(op(BinaryOp::Div, -7, 2), Some(-3));
        assert_eq!(op(BinaryOp::Div, i32::MIN, -1), Some(i32::MIN));
        assert_eq!(op(BinaryOp::Div, 1, 0), None);
        assert_eq!(op(BinaryOp::Mod, -7, 3), Some(2));
        assert_eq!(op(BinaryOp::Mod, 7, -3), Some(-2));
        assert_eq!(op(BinaryOp::Fmod, -7, 3), Some(-1));
        assert_eq!(op(BinaryOp::Mod, 5, 0), None);
        assert_eq!(op(BinaryOp::Pow, 3, 4), Some(81));
        assert_eq!(op(BinaryOp::Pow, 2, -1), Some(0));
        assert_eq!(op(BinaryOp::Pow, -1, -3), Some(-1));
        let mut y = [0i32; 6];
        binary_i32(
            BinaryOp::Sub,
            &[10, 20],
            &[2, 1],
            &[1, 2, 3],
            &[1, 3],
            &mut y,
            &[2, 3],
        )
        .unwrap();
        assert_eq!(y, [9, 8, 7, 19, 18, 17]);
        assert_eq!(
            binary_i32(
                BinaryOp::Div,
                &[1, 2],
                &[2],
                &[1, 0],
                &[2],
                &mut y[..2],
                &[2]
            ),
            Err(Error::DivisionByZero)
        );
    }

    #[test]
    fn add_params_by_hand() {
        let p = add_params_s8(0.5, 1, 0.25, -2, 1.0, 3, -128, 127);
        assert_eq!(p.left_shift, 20);
        assert_eq!((p.a_mult, p.a_shift), (1 << 30, 0)); // 0.5
        assert_eq!((p.b_mult, p.b_shift), (1 << 30, -1)); // 0.25
        assert_eq!((p.out_mult, p.out_shift), (1 << 30, -19)); // 2^-20
                                                               // (4 - 1)·0.5 + (3 + 2)·0.25 = 2.75 → 3, + 3
        let mut y = [0i8; 1];
        add_s8(&[4], &[1], &[3], &[1], &p, &mut y, &[1]).unwrap();
        assert_eq!(y, [6]);
        // Ties round half away from zero: ±2.5 → ±3.
        add_s8(&[6], &[1], &[-2], &[1], &p, &mut y, &[1]).unwrap();
        assert_eq!(y, [6]);
        add_s8(&[-4], &[1], &[-2], &[1], &p, &mut y, &[1]).unwrap();
        assert_eq!(y, [0]);
        add_s8(&[-3], &[1], &[-5], &[1], &p, &mut y, &[1]).unwrap(); // -2.75
        assert_eq!(y, [0]);
    }

    #[test]
    fn s8_add_equal_scales_adds_reals() {
        let p = add_params_s8(0.5, 0, 0.5, 0, 0.5, 0, -128, 127);
        let mut y = [0i8; 3];
        add_s8(&[10, -20, 100], &[3], &[5, -5, 100], &[3], &p, &mut y, &[3]).unwrap();
        assert_eq!(y, [15, -25, 127]);
    }

    #[test]
    fn s8_add_broadcast_close_to_float() {
        let (sa, za, sb, zb, so, zo) = (0.07f32, -5, 0.031f32, 12, 0.09f32, 3);
        let p = add_params_s8(sa, za, sb, zb, so, zo, -128, 127);
        let a: [i8; 6] = [-128, -50, 0, 17, 90, 127];
        let b: [i8; 4] = [-100, -3, 44, 127];
        let mut y = [0i8; 24];
        let mut yf = [0i8; 24];
        add_s8(&a, &[2, 1, 3], &b, &[1, 4, 1], &p, &mut y, &[2, 4, 3]).unwrap();
        add_s8_float(
            &a,
            &[2, 1, 3],
            sa,
            za,
            &b,
            &[1, 4, 1],
            sb,
            zb,
            so,
            zo,
            -128,
            127,
            &mut yf,
            &[2, 4, 3],
        )
        .unwrap();
        for o in 0..24 {
            let (i, j, k) = (o / 12, o / 3 % 4, o % 3);
            let real = (a[i * 3 + k] as i32 - za) as f64 * sa as f64
                + (b[j] as i32 - zb) as f64 * sb as f64;
            let want = (libm::round(real / so as f64) as i32 + zo).clamp(-128, 127);
            assert!((y[o] as i32 - want).abs() <= 1, "{o}: {} vs {want}", y[o]);
            assert!((yf[o] as i32 - want).abs() <= 1, "{o}: {} vs {want}", yf[o]);
        }
    }

    #[test]
    fn s8_add_float_rounds_half_to_even() {
        // 0.5·1 + 0.5·2 = 1.5 → 2; 0.5·1 + 0.5·0 = 0.5 → 0; -0.5 → 0; 2.5 → 2
        let mut y = [0i8; 4];
        add_s8_float(
            &[1, 1, -1, 3],
            &[4],
            0.5,
            0,
            &[2, 0, 0, 2],
            &[4],
            0.5,
            0,
            1.0,
            0,
            -128,
            127,
            &mut y,
            &[4],
        )
        .unwrap();
        assert_eq!(y, [2, 0, 0, 2]);
    }

    #[test]
    fn s8_mul() {
        let p = mul_params_s8(0.5, 0, 0.5, 0, 0.25, 0, -128, 127);
        assert_eq!((p.out_mult, p.out_shift), (1 << 30, 1)); // × 1.0
        let mut y = [0i8; 2];
        mul_s8(&[3, -4], &[2], &[5, 6], &[2], &p, &mut y, &[2]).unwrap();
        assert_eq!(y, [15, -24]);
        // Zero points and broadcasting a scalar: (a - 2)·(7 - 3)·0.5 - 1
        let p = mul_params_s8(0.5, 2, 0.25, 3, 0.25, -1, -10, 10);
        let mut y = [0i8; 4];
        mul_s8(&[2, 3, 5, 100], &[4], &[7], &[], &p, &mut y, &[4]).unwrap();
        assert_eq!(y, [-1, 1, 5, 10]);
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let p = add_params_s8(0.5, 0, 0.5, 0, 0.5, 0, -128, 127);
        let mut y = [0i8; 3];
        let e = Err(Error::ShapeMismatch("element-wise operand length"));
        assert_eq!(add_s8(&[1, 2], &[3], &[1, 2, 3], &[3], &p, &mut y, &[3]), e);
        assert!(add_s8(&[1, 2, 3], &[3], &[1, 2], &[2], &p, &mut y, &[3]).is_err());
        assert!(add_s8(&[1, 2, 3], &[3], &[1, 2, 3], &[3], &p, &mut y[..2], &[3]).is_err());
        let m = mul_params_s8(0.5, 0, 0.5, 0, 0.5, 0, -128, 127);
        assert!(mul_s8(&[1, 2, 3], &[3], &[1], &[1], &m, &mut y, &[4]).is_err());
        assert!(add_s8_float(
            &[1],
            &[1],
            1.0,
            0,
            &[1],
            &[1],
            1.0,
            0,
            1.0,
            0,
            0,
            1,
            &mut y,
            &[1]
        )
        .is_err());
        let mut yf = vec![0f32; 3];
        assert!(binary_f32(
            BinaryOp::Div,
            &[1.0; 3],
            &[3],
            &[1.0; 2],
            &[2],
            0.0,
            1.0,
            &mut yf,
            &[3]
        )
        .is_err());
        // Extreme zero points and inverted bounds do not panic.
        let p = AddParamsS8 {
            a_zp: i32::MIN,
            b_zp: i32::MAX,
            out_zp: i32::MAX,
            act_min: 9,
            act_max: -9,
            ..p
        };
        add_s8(&[1, 2, 3], &[3], &[1, 2, 3], &[3], &p, &mut y, &[3]).unwrap();
        let m = MulParamsS8 {
            a_zp: i32::MIN,
            b_zp: i32::MIN,
            out_zp: i32::MIN,
            ..m
        };
        mul_s8(&[1, 2, 3], &[3], &[1, 2, 3], &[3], &m, &mut y, &[3]).unwrap();
        add_s8_float(
            &[1],
            &[1],
            1.0,
            i32::MIN,
            &[1],
            &[1],
            0.0,
            i32::MAX,
            0.0,
            i32::MIN,
            5,
            -5,
            &mut y[..1],
            &[1],
        )
        .unwrap();
    }
}
