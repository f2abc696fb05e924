//! Quantize / dequantize at the model's edges.

use super::quant::round_half_even_to_i32;
use crate::error::{Error, Result};

fn same(a: usize, b: usize) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(Error::ShapeMismatch("quantize: lengths differ"))
    }
}

/// ONNX QuantizeLinear to int8: `saturate(round_half_even(x / scale) + zp)`.
pub fn quantize_f32_s8(x: &[f32], scale: f32, zp: i32, y: &mut [i8]) -> Result<()> {
    same(x.len(), y.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = round_half_even_to_i32(v / scale)
            .saturating_add(zp)
            .clamp(-128, 127) as i8;
    }
    Ok(())
}

/// ONNX QuantizeLinear to uint8.
pub fn quantize_f32_u8(x: &[f32], scale: f32, zp: i32, y: &mut [u8]) -> Result<()> {
    same(x.len(), y.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = round_half_even_to_i32(v / scale)
            .saturating_add(zp)
            .clamp(0, 255) as u8;
    }
    Ok(())
}

/// int8 → f32: `(q - zp) · scale`.
pub fn dequantize_s8_f32(x: &[i8], scale: f32, zp: i32, y: &mut [f32]) -> Result<()> {
    same(x.len(), y.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v as i32 - zp) as f32 * scale;
    }
    Ok(())
}

/// uint8 → f32.
pub fn dequantize_u8_f32(x: &[u8], scale: f32, zp: i32, y: &mut [f32]) -> Result<()> {
    same(x.len(), y.len())?;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v as i32 - zp) as f32 * scale;
    }
    Ok(())
}

/// int32 → f32.
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
    fn roundtrip_and_ties() {
        let mut q = [0i8; 4];
        quantize_f32_s8(&[0.25, 0.75, -0.25, 1000.0], 0.5, 1, &mut q).unwrap();
        assert_eq!(q, [1, 3, 1, 127]); // 0.5 → 0, 1.5 → 2, -0.5 → -0
        let mut f = [0f32; 4];
        dequantize_s8_f32(&q, 0.5, 1, &mut f).unwrap();
        assert_eq!(f, [0.0, 1.0, 0.0, 63.0]);
    }
}
