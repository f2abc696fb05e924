//! Standalone ReLU / ReLU6 / Clip (when not fused into the producer).

use super::sat_i8;
use crate::error::{Error, Result};

/// Clamps int8 values to `[lo, hi]` (`max` with `lo`, then `min` with `hi`;
/// bounds outside the int8 range are harmless).
pub fn clamp_s8(x: &[i8], lo: i32, hi: i32, y: &mut [i8]) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::ShapeMismatch("clamp: lengths differ"));
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o = sat_i8(v as i32, lo, hi);
    }
    Ok(())
}

/// Clamps f32 values to `[lo, hi]` (`max` with `lo`, then `min` with `hi`).
pub fn clamp_f32(x: &[f32], lo: f32, hi: f32, y: &mut [f32]) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::ShapeMismatch("clamp: lengths differ"));
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o = super::clamp_f32(v, lo, hi);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps() {
        let mut y = [0i8; 5];
        clamp_s8(&[-128, -1, 0, 6, 127], 0, 6, &mut y).unwrap();
        assert_eq!(y, [0, 0, 0, 6, 6]);
        clamp_s8(&[-128, -1, 0, 6, 127], -1000, 1000, &mut y).unwrap();
        assert_eq!(y, [-128, -1, 0, 6, 127]);
        clamp_s8(&[-128, -1, 0, 6, 127], 5, -5, &mut y).unwrap(); // inverted: hi wins
        assert_eq!(y, [-5; 5]);
        let mut f = [0f32; 4];
        clamp_f32(&[-3.0, 0.5, 7.0, f32::INFINITY], 0.0, 6.0, &mut f).unwrap();
        assert_eq!(f, [0.0, 0.5, 6.0, 6.0]);
        assert!(clamp_s8(&[0; 2], 0, 1, &mut y).is_err());
        assert!(clamp_f32(&[0.0; 2], 0.0, 1.0, &mut f).is_err());
    }
}
