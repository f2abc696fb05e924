//! Standalone ReLU / ReLU6 / Clip (when not fused into the producer).

use crate::error::{Error, Result};

/// Clamps int8 values to `[lo, hi]`.
pub fn clamp_s8(x: &[i8], lo: i32, hi: i32, y: &mut [i8]) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::ShapeMismatch("clamp: lengths differ"));
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v as i32).clamp(lo.min(hi), hi) as i8;
    }
    Ok(())
}

/// Clamps f32 values to `[lo, hi]`.
pub fn clamp_f32(x: &[f32], lo: f32, hi: f32, y: &mut [f32]) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::ShapeMismatch("clamp: lengths differ"));
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v.max(lo).min(hi);
    }
    Ok(())
}
