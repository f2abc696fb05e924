//! Reductions over one axis, f32: `x` viewed as `[outer, n, inner]` → `y`
//! `[outer, inner]`. Sums are accumulated in f64.

use super::check_len;
use crate::error::Result;

/// Which reduction [`reduce_f32`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReduceOp {
    /// Σ x
    Sum = 0,
    /// Σ x / n
    Mean = 1,
    /// sqrt(Σ x²)
    L2 = 2,
    /// max x (−∞ for an empty axis)
    Max = 3,
}

impl ReduceOp {
    /// Decodes the op's param.
    pub fn from_i32(v: i32) -> Option<ReduceOp> {
        Some(match v {
            0 => ReduceOp::Sum,
            1 => ReduceOp::Mean,
            2 => ReduceOp::L2,
            3 => ReduceOp::Max,
            _ => return None,
        })
    }
}

/// Reduces the middle axis of `x` `[outer, n, inner]` into `y` `[outer, inner]`.
pub fn reduce_f32(
    op: ReduceOp,
    x: &[f32],
    outer: usize,
    n: usize,
    inner: usize,
    y: &mut [f32],
) -> Result<()> {
    check_len(
        x.len(),
        outer.checked_mul(n).and_then(|v| v.checked_mul(inner)),
        "reduce: input length",
    )?;
    check_len(y.len(), outer.checked_mul(inner), "reduce: output length")?;
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| x[(o * n + j) * inner + i] as f64;
            let v = match op {
                ReduceOp::Sum => (0..n).map(at).sum::<f64>(),
                ReduceOp::Mean => (0..n).map(at).sum::<f64>() / n as f64,
                ReduceOp::L2 => libm::sqrt((0..n).map(|j| at(j) * at(j)).sum::<f64>()),
                ReduceOp::Max => (0..n).map(at).fold(f64::NEG_INFINITY, f64::max),
            };
            y[o * inner + i] = v as f32;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn middle_axis() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [1, 3, 2]
        let mut y = [0f32; 2];
        reduce_f32(ReduceOp::Sum, &x, 1, 3, 2, &mut y).unwrap();
        assert_eq!(y, [9.0, 12.0]);
        reduce_f32(ReduceOp::Mean, &x, 1, 3, 2, &mut y).unwrap();
        assert_eq!(y, [3.0, 4.0]);
        reduce_f32(ReduceOp::Max, &x, 1, 3, 2, &mut y).unwrap();
        assert_eq!(y, [5.0, 6.0]);
        let mut y1 = [0f32; 1];
        reduce_f32(ReduceOp::L2, &[3.0, 4.0], 1, 2, 1, &mut y1).unwrap();
        assert_eq!(y1, [5.0]);
        assert!(reduce_f32(ReduceOp::Sum, &x, 1, 2, 2, &mut y).is_err());
    }
}
