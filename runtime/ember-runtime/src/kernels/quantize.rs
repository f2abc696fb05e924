//! Quantize / dequantize at the model's edges (ONNX `QuantizeLinear` /
//! `DequantizeLinear`, per-tensor).

use super::quant::round_half_even_to_i32;
use crate::error::{Error, Result};

fn same(a: usize, b: usize) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(Error::ShapeMismatch("quantize: lengths differ"))
    }
}

/// ONNX `QuantizeLinear` to int8: `saturate(round_half_even(x / scale) + zp)`.
/// NaN quantizes to `zp`.
pub fn quantize_f32_s8(x: &[f32], scale: f32, zp: i32, y: &mut [i8]) -> Result<()> {
    same(x.len(), y.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = quantize_one_s8(v, scale, zp);
    }
    Ok(())
}

/// One value of [`quantize_f32_s8`] (for kernels that quantize as they
/// write).
#[inline]
pub fn quantize_one_s8(v: f32, scale: f32, zp: i32) -> i8 {
    round_half_even_to_i32(v / scale)
        .saturating_add(zp)
        .clamp(-128, 127) as i8
}

/// One value of [`dequantize_s8_f32`] (for kernels that dequantize as they
/// read).
#[inline]
pub fn dequantize_one_s8(q: i8, scale: f32, zp: i32) -> f32 {
    (q as i64 - zp as i64) as f32 * scale
}

/// ONNX `QuantizeLinear` to uint8: `saturate(round_half_even(x / scale) + zp)`
/// into `0..=255`.
pub fn quantize_f32_u8(x: &[f32], scale: f32, zp: i32, y: &mut [u8]) -> Result<()> {
    same(x.len(), y.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = round_half_even_to_i32(v / scale)
            .saturating_add(zp)
            .clamp(0, 255) as u8;
    }
    Ok(())
}

/// int8 → f32: `(q − zp) · scale`.
pub fn dequantize_s8_f32(x: &[i8], scale: f32, zp: i32, y: &mut [f32]) -> Result<()> {
    same(x.len(), y.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = dequantize_one_s8(v, scale, zp);
    }
    Ok(())
}

/// uint8 → f32: `(q − zp) · scale`.
pub fn dequantize_u8_f32(x: &[u8], scale: f32, zp: i32, y: &mut [f32]) -> Result<()> {
    same(x.len(), y.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v as i64 - zp as i64) as f32 * scale;
    }
    Ok(())
}

/// int32 → f32: `(q − zp) · scale` (the difference is exact in i64, then
/// rounded to f32).
pub fn dequantize_i32_f32(x: &[i32], scale: f32, zp: i32, y: &mut [f32]) -> Result<()> {
    same(x.len(), y.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v as i64 - zp as i64) as f32 * scale;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s8_roundtrip_and_ties() {
        let mut q = [0i8; 6];
        quantize_f32_s8(
            &[0.25, 0.75, -0.25, 1000.0, -1000.0, f32::NAN],
            0.5,
            1,
            &mut q,
        )
        .unwrap();
        assert_eq!(q, [1, 3, 1, 127, -128, 1]); // 0.5 → 0, 1.5 → 2, -0.5 → -0
        let mut f = [0f32; 6];
        dequantize_s8_f32(&q, 0.5, 1, &mut f).unwrap();
        assert_eq!(f, [0.0, 1.0, 0.0, 63.0, -64.5, 0.0]);
    }

    #[test]
    fn u8_and_i32() {
        let mut q = [0u8; 5];
        quantize_f32_u8(&[0.0, 1.25, -3.0, 300.0, 0.75], 0.5, 128, &mut q).unwrap();
        assert_eq!(q, [128, 130, 122, 255, 130]); // 2.5 → 2, 1.5 → 2
        let mut f = [0f32; 5];
        dequantize_u8_f32(&q, 0.5, 128, &mut f).unwrap();
        assert_eq!(f, [0.0, 1.0, -3.0, 63.5, 1.0]);
        let mut g = [0f32; 3];
        dequantize_i32_f32(&[i32::MIN, 0, 1000], 0.25, i32::MAX, &mut g).unwrap();
        assert_eq!(g[2], (1000.0 - i32::MAX as f64) as f32 * 0.25);
        assert_eq!(g[0], -4294967295.0f32 * 0.25);
    }

    #[test]
    fn lengths_must_match() {
        assert!(quantize_f32_s8(&[0.0; 2], 1.0, 0, &mut [0; 3]).is_err());
        assert!(quantize_f32_u8(&[0.0; 2], 1.0, 0, &mut [0; 1]).is_err());
        assert!(dequantize_s8_f32(&[0; 2], 1.0, 0, &mut [0.0; 3]).is_err());
        assert!(dequantize_u8_f32(&[0; 2], 1.0, 0, &mut [0.0; 3]).is_err());
        assert!(dequantize_i32_f32(&[0; 2], 1.0, 0, &mut [0.0; 3]).is_err());
        // Zero scale saturates instead of panicking.
        let mut q = [0i8; 3];
        quantize_f32_s8(&[1.0, -1.0, 0.0], 0.0, i32::MAX, &mut q).unwrap();
    }
}
