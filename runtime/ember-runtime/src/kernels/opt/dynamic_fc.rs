//! Dynamically quantized fully connected: the reference kernel's
//! quantization and float epilogue, with the int8 products four weight
//! rows at a time through [`super::dot::dot4_s8`] (NEON `SDOT` or
//! `SMULL`/`SADALP` on aarch64, `SMLAD` on Cortex-M DSP cores). The int32
//! sums are exact in any order, so the result is bit-exact with
//! [`crate::kernels::dynamic_fc::fully_connected_dynamic_f32`].

use super::super::check_len;
use super::super::dynamic_fc::{output, quantize_input, MAX_DEPTH};
use super::dot::{dot4_s8, dot4x4_s8, dot4x4_s8_no_min, dot_s8};
use crate::error::{Error, Result};

/// Scratch bytes: as the reference kernel's.
pub const fn fully_connected_dynamic_f32_opt_scratch_size(rows: usize, k: usize) -> usize {
    super::super::dynamic_fc::fully_connected_dynamic_scratch_size(rows, k)
}

/// Same contract as the reference kernel.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_dynamic_f32_opt(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[i8],
    n: usize,
    w_scale: &[f32],
    w_sum: &[i32],
    bias: Option<&[f32]>,
    scratch: &mut [i8],
    y: &mut [f32],
) -> Result<()> {
    check_len(x.len(), rows.checked_mul(k), "dynamic fc: input length")?;
    check_len(w.len(), n.checked_mul(k), "dynamic fc: weight length")?;
    check_len(y.len(), rows.checked_mul(n), "dynamic fc: output length")?;
    check_len(w_sum.len(), Some(n), "dynamic fc: weight sums length")?;
    if w_scale.len() != 1 && w_scale.len() != n {
        return Err(Error::ShapeMismatch("dynamic fc: weight scales length"));
    }
    if let Some(b) = bias {
        check_len(b.len(), Some(n), "dynamic fc: bias length")?;
    }
    if k > MAX_DEPTH {
        return Err(Error::ShapeMismatch("dynamic fc: depth overflows int32"));
    }
    let (xq, scale, zq) = quantize_input(x, scratch)?;
    if k == 0 || n == 0 {
        for (i, o) in y.iter_mut().enumerate() {
            *o = bias.map_or(0.0, |b| b[i % n.max(1)]);
        }
        return Ok(());
    }
    let n4 = n / 4 * 4;
    // Four input rows at a time against four weight rows, then one row at
    // a time for the rest.
    let r4 = rows / 4 * 4;
    // One scan of the weights (cheap next to `rows` passes over them).
    let no_min = r4 > 0 && !w.contains(&i8::MIN);
    for r in (0..r4).step_by(4) {
        let xr = |i: usize| &xq[(r + i) * k..(r + i + 1) * k];
        let x4 = [xr(0), xr(1), xr(2), xr(3)];
        for j in (0..n4).step_by(4) {
            let wr = |i: usize| &w[(j + i) * k..(j + i + 1) * k];
            let w4 = [wr(0), wr(1), wr(2), wr(3)];
            let d = if no_min {
                dot4x4_s8_no_min(x4, w4)
            } else {
                dot4x4_s8(x4, w4)
            };
            for (i, di) in d.iter().enumerate() {
                for (t, &v) in di.iter().enumerate() {
                    y[(r + i) * n + j + t] = output(v, j + t, zq, scale, w_scale, w_sum, bias);
                }
            }
        }
        for (i, xi) in x4.iter().enumerate() {
            for j in n4..n {
                let d = dot_s8(xi, &w[j * k..(j + 1) * k]);
                y[(r + i) * n + j] = output(d, j, zq, scale, w_scale, w_sum, bias);
            }
        }
    }
    for (xr, yr) in xq.chunks_exact(k).zip(y.chunks_exact_mut(n)).skip(r4) {
        for j in (0..n4).step_by(4) {
            let r = |i: usize| &w[(j + i) * k..(j + i + 1) * k];
            let d = dot4_s8(xr, r(0), r(1), r(2), r(3));
            for (i, &v) in d.iter().enumerate() {
                yr[j + i] = output(v, j + i, zq, scale, w_scale, w_sum, bias);
            }
        }
        for j in n4..n {
            let d = dot_s8(xr, &w[j * k..(j + 1) * k]);
            yr[j] = output(d, j, zq, scale, w_scale, w_sum, bias);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::super::dynamic_fc::fully_connected_dynamic_f32;
    use super::super::selftest::Rng;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Bit-exact with the reference on generated shapes, scales and biases.
    #[test]
    fn matches_the_reference() {
        let mut rng = Rng::new(0x5eed);
        for case in 0..300 {
            let rows = rng.range(1, 11) as usize;
            let k = rng.range(1, 70) as usize;
            let n = rng.range(1, 19) as usize;
            let spread = [0.01f32, 1.0, 300.0][case % 3];
            let x: Vec<f32> = (0..rows * k)
                .map(|_| {
                    rng.range(-1000, 1000) as f32 / 1000.0 * spread
                        + if case % 5 == 0 { spread } else { 0.0 }
                })
                .collect();
            // Half the cases without −128 (the paired path on cores without SDOT).
            let lo = if (case / 2) % 2 == 0 { -128 } else { -127 };
            let w: Vec<i8> = (0..n * k).map(|_| rng.range(lo, 127) as i8).collect();
            let sums: Vec<i32> = w
                .chunks(k)
                .map(|r| r.iter().map(|&v| v as i32).sum())
                .collect();
            let ws: Vec<f32> = if case % 2 == 0 {
                vec![0.003]
            } else {
                (0..n).map(|i| 0.001 * (i + 1) as f32).collect()
            };
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 1.0).collect();
            let bias = (case % 4 != 0).then_some(b.as_slice());
            let mut s1 = vec![0i8; rows * k];
            let mut s2 = vec![0i8; rows * k];
            let (mut y1, mut y2) = (vec![0f32; rows * n], vec![0f32; rows * n]);
            fully_connected_dynamic_f32(&x, rows, k, &w, n, &ws, &sums, bias, &mut s1, &mut y1)
                .unwrap();
            fully_connected_dynamic_f32_opt(&x, rows, k, &w, n, &ws, &sums, bias, &mut s2, &mut y2)
                .unwrap();
            assert_eq!(
                y1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                y2.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "case {case}: rows {rows} k {k} n {n}"
            );
        }
    }
}
