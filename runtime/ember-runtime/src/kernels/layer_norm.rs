//! Layer normalization over the last axis, f32: per row of `D` values,
//! `y = (x − mean) / sqrt(var + eps) · gamma + beta` with the biased
//! variance, both moments computed in two passes in f64 (the row sums of a
//! 384-wide hidden state lose digits in f32).

use super::check_len;
use crate::error::Result;

/// `x` and `y` are `[rows, d]` with `d = gamma.len()`; `beta` is `[d]` or
/// absent (zero).
pub fn layer_norm_f32(
    x: &[f32],
    gamma: &[f32],
    beta: Option<&[f32]>,
    eps: f32,
    y: &mut [f32],
) -> Result<()> {
    let d = gamma.len();
    check_len(y.len(), Some(x.len()), "layer norm: output length")?;
    if let Some(b) = beta {
        check_len(b.len(), Some(d), "layer norm: beta length")?;
    }
    if d == 0 {
        return check_len(x.len(), Some(0), "layer norm: input length");
    }
    check_len(x.len() % d, Some(0), "layer norm: input length")?;
    for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = xr
            .iter()
            .map(|&v| {
                let c = v as f64 - mean;
                c * c
            })
            .sum::<f64>()
            / d as f64;
        let inv = 1.0 / libm::sqrt(var + eps as f64);
        for (i, (o, &v)) in yr.iter_mut().zip(xr).enumerate() {
            let n = ((v as f64 - mean) * inv) as f32;
            *o = n * gamma[i] + beta.map_or(0.0, |b| b[i]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_rows() {
        let x = [1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0];
        let g = [1.0, 1.0, 2.0, 1.0];
        let b = [0.0, 0.5, 0.0, 0.0];
        let mut y = [0f32; 8];
        layer_norm_f32(&x, &g, Some(&b), 1e-5, &mut y).unwrap();
        let s = 1.0 / (1.25f64 + 1e-5).sqrt();
        let want = [-1.5 * s, -0.5 * s + 0.5, 2.0 * 0.5 * s, 1.5 * s];
        for (a, w) in y[..4].iter().zip(want) {
            assert!((*a as f64 - w).abs() < 1e-6);
        }
        assert_eq!(&y[4..], &[0.0, 0.5, 0.0, 0.0]);
        assert!(layer_norm_f32(&x[..7], &g, None, 1e-5, &mut y[..7]).is_err());
    }
}
