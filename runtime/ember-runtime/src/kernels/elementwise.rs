//! Element-wise binary operators with broadcasting.

use super::broadcast::Broadcast;
use super::quant::{multiply_by_quantized_multiplier, quantize_multiplier, round_half_even_to_i32};
use crate::error::Result;

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

/// Computes [`AddParamsS8`] exactly as TFLite's Add prepare does for int8.
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
    let twice_max = 2.0 * a_scale.max(b_scale) as f64;
    let real_a = a_scale as f64 / twice_max;
    let real_b = b_scale as f64 / twice_max;
    let real_out = twice_max / (((1i64 << left_shift) as f64) * out_scale as f64);
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

/// int8 Add with TFLite reference semantics.
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
        let av = (a[ia] as i32 - p.a_zp).wrapping_shl(ls);
        let bv = (b[ib] as i32 - p.b_zp).wrapping_shl(ls);
        let sa = multiply_by_quantized_multiplier(av, p.a_mult, p.a_shift);
        let sb = multiply_by_quantized_multiplier(bv, p.b_mult, p.b_shift);
        let raw = multiply_by_quantized_multiplier(sa.wrapping_add(sb), p.out_mult, p.out_shift)
            .saturating_add(p.out_zp);
        y[o] = raw.clamp(p.act_min, p.act_max) as i8;
    });
    Ok(())
}

/// int8 Add with onnxruntime semantics (float, round half to even).
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
        let real = (a[ia] as i32 - a_zp) as f32 * a_scale + (b[ib] as i32 - b_zp) as f32 * b_scale;
        let q = round_half_even_to_i32(real / out_scale).saturating_add(out_zp);
        y[o] = q.clamp(act_min, act_max) as i8;
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

/// Computes [`MulParamsS8`] as TFLite's Mul prepare does.
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

/// int8 Mul with TFLite reference semantics.
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
        let prod = (a[ia] as i32 - p.a_zp) * (b[ib] as i32 - p.b_zp);
        let raw = multiply_by_quantized_multiplier(prod, p.out_mult, p.out_shift)
            .saturating_add(p.out_zp);
        y[o] = raw.clamp(p.act_min, p.act_max) as i8;
    });
    Ok(())
}

/// Float binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// a + b
    Add,
    /// a − b
    Sub,
    /// a × b
    Mul,
    /// a ÷ b
    Div,
}

/// f32 binary op with broadcasting, clamped to `[act_min, act_max]`.
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
    bc.for_each(|o, ia, ib| {
        let (x, z) = (a[ia], b[ib]);
        let v = match op {
            BinaryOp::Add => x + z,
            BinaryOp::Sub => x - z,
            BinaryOp::Mul => x * z,
            BinaryOp::Div => x / z,
        };
        y[o] = v.max(act_min).min(act_max);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_broadcast_add() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [10.0, 20.0, 30.0, 40.0];
        let mut y = [0f32; 24];
        binary_f32(
            BinaryOp::Add,
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
        assert_eq!(y[0], 11.0);
        assert_eq!(y[4], 22.0);
        assert_eq!(y[23], 46.0);
    }

    #[test]
    fn s8_add_equal_scales_adds_reals() {
        let p = add_params_s8(0.5, 0, 0.5, 0, 0.5, 0, -128, 127);
        let mut y = [0i8; 3];
        add_s8(&[10, -20, 100], &[3], &[5, -5, 100], &[3], &p, &mut y, &[3]).unwrap();
        assert_eq!(y, [15, -25, 127]);
    }

    #[test]
    fn s8_mul() {
        let p = mul_params_s8(0.5, 0, 0.5, 0, 0.25, 0, -128, 127);
        let mut y = [0i8; 2];
        mul_s8(&[3, -4], &[2], &[5, 6], &[2], &p, &mut y, &[2]).unwrap();
        assert_eq!(y, [15, -24]);
    }
}
