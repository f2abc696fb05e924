//! Layer normalization over the last axis, f32: per row of `D` values,
//! `y = (x − mean) / sqrt(var + eps) · gamma + beta` with the biased
//! variance.
//!
//! The arithmetic is pinned down so that results agree bit for bit with
//! onnxruntime's CPU kernel (1.32, x86-64), the reference most exported
//! models are checked against; a one-ulp difference here flips the
//! `QuantizeLinear` that follows in QDQ transformers, and the flip grows
//! layer after layer. Per row:
//! - `mean`: the f64 sum of the row divided by `D`, rounded to f32;
//! - `var`: the centred values `c = x − mean` (f32) squared and accumulated
//!   with fused multiply-adds into eight f32 lanes (element `i` into lane
//!   `i mod 8`), the lanes summed pairwise (`0..4 + 4..8`, `0..2 + 2..4`,
//!   `0 + 1`), the `D mod 8` last squares added to that sum one by one
//!   (not fused), divided by `D` in f32;
//! - `inv = 1 / sqrt(var + eps)` in f32;
//! - `y = fma(c · inv, gamma, beta)`.
//!
//! Checked against onnxruntime 1.32 on rows of 384 and 1536 (every output
//! bit equal on 470 rows) and of 16, 13 and 20 values (all but one row of
//! 150); rows shorter than eight take another path there and agree to an
//! ulp or two.

use super::check_len;
use crate::error::Result;

/// Number of partial sums of squares (one AVX register of f32).
const LANES: usize = 8;

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
        let mean = (xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64) as f32;
        let mut acc = [0f32; LANES];
        let mut blocks = xr.chunks_exact(LANES);
        for block in &mut blocks {
            for (a, &v) in acc.iter_mut().zip(block) {
                let c = v - mean;
                *a = libm::fmaf(c, c, *a);
            }
        }
        let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
        let (b0, b1, b2, b3) = (a0 + a4, a1 + a5, a2 + a6, a3 + a7);
        let mut sum = (b0 + b2) + (b1 + b3);
        for &v in blocks.remainder() {
            let c = v - mean;
            sum += c * c;
        }
        let var = sum / d as f32;
        let inv = 1.0 / libm::sqrtf(var + eps);
        match beta {
            Some(b) => {
                for (((o, &v), &g), &bb) in yr.iter_mut().zip(xr).zip(gamma).zip(b) {
                    *o = libm::fmaf((v - mean) * inv, g, bb);
                }
            }
            None => {
                for ((o, &v), &g) in yr.iter_mut().zip(xr).zip(gamma) {
                    *o = (v - mean) * inv * g;
                }
            }
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

    /// Two rows of 16 run through onnxruntime 1.32's `LayerNormalization`
    /// (epsilon 1e-12): every output bit must agree. An f64 two-pass kernel
    /// differs from these in 17 of the 32 values.
    #[test]
    fn matches_onnxruntime_bit_for_bit() {
        const X: [u32; 32] = [
            0x3fb047c9, 0x3f1a8b21, 0x403af60e, 0x3fa8481a, 0xbf1b64e2, 0x40056d1f, 0x409d2f1b,
            0x4075d6ec, 0xbf8e3bfd, 0xc032f5ff, 0xbf5eacbf, 0x3f8fde82, 0xc0bf33f5, 0x3eafef9e,
            0xc02f3704, 0xbf9930cf, 0xbf21fdac, 0x3d514dbe, 0x400f0877, 0x408414cf, 0x3f1d490f,
            0x40a32e35, 0xbf7ede98, 0x40037d6c, 0x406d775e, 0x3fa419c9, 0xbf9d80f3, 0xbfe1f14b,
            0xbebf111e, 0x3fd48e10, 0xc001d8c1, 0x3ebeb4d1,
        ];
        const GAMMA: [u32; 16] = [
            0xbe230be2, 0x3f0a74db, 0x3e5bcf9a, 0x3eb5f369, 0xbf276150, 0xbe04b970, 0x3f48b29e,
            0x3fbf28c0, 0xbfa1290f, 0x3fc1c841, 0x3fac45a5, 0x3f480406, 0x3e8766ba, 0xbea0ba7e,
            0x3fbaa06c, 0x3ffae9bf,
        ];
        const BETA: [u32; 16] = [
            0x3fe69bf9, 0x3fa85552, 0x3eb6fa91, 0xbf9aaa2f, 0xbb91f3fa, 0x3f280ebe, 0xbfa4e907,
            0x3eca4d70, 0x3edc1718, 0x3f322fdb, 0xbf97912d, 0xbf296557, 0xbedf7471, 0xbf95bc12,
            0x3fdea39b, 0xbefde803,
        ];
        const WANT: [u32; 32] = [
            0x3fdd86ab, 0x3fb2e200, 0x3f14273e, 0xbf877846, 0x3e48c254, 0x3f105e02, 0x3de4f065,
            0x401d2f22, 0x3f87414b, 0xbf8330d2, 0xbfdd907c, 0xbec6ea1d, 0xbf8724bb, 0xbf97e54d,
            0x3dea1877, 0xbfc48906, 0x3ff58e55, 0x3f8c6b46, 0x3efe8810, 0xbf26f9f1, 0x3da6aafd,
            0x3ec923cc, 0xc0000a2e, 0x3f9e620b, 0xbfa4b2cb, 0x3f7c3986, 0xc023cf04, 0xbfd4b6ab,
            0xbf18e480, 0xbfa4c10a, 0xbea00a3f, 0xbf7b7140,
        ];
        let x = X.map(f32::from_bits);
        let g = GAMMA.map(f32::from_bits);
        let b = BETA.map(f32::from_bits);
        let mut y = [0f32; 32];
        layer_norm_f32(&x, &g, Some(&b), 1e-12, &mut y).unwrap();
        assert_eq!(y.map(f32::to_bits), WANT);
    }
}
