//! Dynamically quantized fully connected: the reference kernel's
//! quantization and float epilogue, with the int8 products in blocks of
//! four input rows by four weight rows (`for_each_dot`: NEON
//! `SDOT` or `SMULL`/`SADALP` on aarch64, `SMLAD` on Cortex-M DSP cores). The int32
//! sums are exact in any order, so the result is bit-exact with
//! [`crate::kernels::dynamic_fc::fully_connected_dynamic_f32`].

use super::super::dynamic_fc::{output, prepare};
use super::for_each_dot;
use crate::error::Result;

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
    let Some((xq, scale, zq)) = prepare(x, rows, k, w, n, w_scale, w_sum, bias, scratch, y)? else {
        return Ok(());
    };
    for_each_dot(xq, rows, k, w, n, |r, c, d| {
        y[r * n + c] = output(d, c, zq, scale, w_scale, w_sum, bias);
    });
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
