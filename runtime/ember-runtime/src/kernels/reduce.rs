//! Reductions over one axis, f32: `x` viewed as `[outer, n, inner]` → `y`
//! `[outer, inner]`. Sums are accumulated in f64.

use super::check_len;
use crate::error::{Error, Result};

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
    /// min x
    Min = 4,
    /// Π x
    Prod = 5,
    /// Σ x²
    SumSquare = 6,
    /// Σ |x|
    L1 = 7,
    /// ln Σ x
    LogSum = 8,
    /// ln Σ exp x (computed around the maximum)
    LogSumExp = 9,
    /// Index of the first maximum (i32 output)
    ArgMax = 10,
    /// Index of the first minimum (i32 output)
    ArgMin = 11,
    /// Index of the last maximum (i32 output)
    ArgMaxLast = 12,
    /// Index of the last minimum (i32 output)
    ArgMinLast = 13,
}

impl ReduceOp {
    /// Decodes the op's param.
    pub fn from_i32(v: i32) -> Option<ReduceOp> {
        Some(match v {
            0 => ReduceOp::Sum,
            1 => ReduceOp::Mean,
            2 => ReduceOp::L2,
            3 => ReduceOp::Max,
            4 => ReduceOp::Min,
            5 => ReduceOp::Prod,
            6 => ReduceOp::SumSquare,
            7 => ReduceOp::L1,
            8 => ReduceOp::LogSum,
            9 => ReduceOp::LogSumExp,
            10 => ReduceOp::ArgMax,
            11 => ReduceOp::ArgMin,
            12 => ReduceOp::ArgMaxLast,
            13 => ReduceOp::ArgMinLast,
            _ => return None,
        })
    }

    /// Whether the result is an index (i32) rather than a value (f32).
    pub fn is_arg(self) -> bool {
        matches!(
            self,
            ReduceOp::ArgMax | ReduceOp::ArgMin | ReduceOp::ArgMaxLast | ReduceOp::ArgMinLast
        )
    }
}

/// Checks that `[outer, n, inner]` reduces `x_len` elements to `y_len`.
fn check_lengths(x_len: usize, outer: usize, n: usize, inner: usize, y_len: usize) -> Result<()> {
    check_len(
        x_len,
        outer.checked_mul(n).and_then(|v| v.checked_mul(inner)),
        "reduce: input length",
    )?;
    check_len(y_len, outer.checked_mul(inner), "reduce: output length")
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
    check_lengths(x.len(), outer, n, inner, y.len())?;
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| x[(o * n + j) * inner + i] as f64;
            let v = match op {
                ReduceOp::Sum => (0..n).map(at).sum::<f64>(),
                ReduceOp::Mean => (0..n).map(at).sum::<f64>() / n as f64,
                ReduceOp::L2 => libm::sqrt((0..n).map(|j| at(j) * at(j)).sum::<f64>()),
                ReduceOp::Max => (0..n).map(at).fold(f64::NEG_INFINITY, f64::max),
                ReduceOp::Min => (0..n).map(at).fold(f64::INFINITY, f64::min),
                ReduceOp::Prod => (0..n).map(at).product::<f64>(),
                ReduceOp::SumSquare => (0..n).map(|j| at(j) * at(j)).sum::<f64>(),
                ReduceOp::L1 => (0..n).map(|j| at(j).abs()).sum::<f64>(),
                ReduceOp::LogSum => libm::log((0..n).map(at).sum::<f64>()),
                ReduceOp::LogSumExp => {
                    let m = (0..n).map(at).fold(f64::NEG_INFINITY, f64::max);
                    if m.is_infinite() {
                        m
                    } else {
                        m + libm::log((0..n).map(|j| libm::exp(at(j) - m)).sum::<f64>())
                    }
                }
                _ => {
                    return Err(Error::ShapeMismatch(
                        "reduce: an index reduction writes i32",
                    ))
                }
            };
            y[o * inner + i] = v as f32;
        }
    }
    Ok(())
}

/// Index reductions ([`ReduceOp::ArgMax`] and relatives) of the middle
/// axis of `x` `[outer, n, inner]` into `y` `[outer, inner]` (`n ≥ 1`). NaN
/// never wins a comparison.
pub fn arg_reduce_f32(
    op: ReduceOp,
    x: &[f32],
    outer: usize,
    n: usize,
    inner: usize,
    y: &mut [i32],
) -> Result<()> {
    check_lengths(x.len(), outer, n, inner, y.len())?;
    if n == 0 || n > i32::MAX as usize {
        return Err(Error::ShapeMismatch("arg reduce: axis extent"));
    }
    let (max, last) = match op {
        ReduceOp::ArgMax => (true, false),
        ReduceOp::ArgMin => (false, false),
        ReduceOp::ArgMaxLast => (true, true),
        ReduceOp::ArgMinLast => (false, true),
        _ => return Err(Error::ShapeMismatch("reduce: a value reduction writes f32")),
    };
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| x[(o * n + j) * inner + i];
            let mut best = 0;
            for j in 1..n {
                let (v, b) = (at(j), at(best));
                let better = if max { v > b } else { v < b };
                if better || (last && v == b) {
                    best = j;
                }
            }
            y[o * inner + i] = best as i32;
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

    #[test]
    fn more_reductions_and_indices() {
        let x = [1.0, -2.0, 3.0, 4.0, -5.0, 6.0]; // [1, 3, 2]: columns [1, 3, -5], [-2, 4, 6]
        let mut y = [0f32; 2];
        reduce_f32(ReduceOp::Min, &x, 1, 3, 2, &mut y).unwrap();
        assert_eq!(y, [-5.0, -2.0]);
        reduce_f32(ReduceOp::Prod, &x, 1, 3, 2, &mut y).unwrap();
        assert_eq!(y, [-15.0, -48.0]);
        reduce_f32(ReduceOp::L1, &x, 1, 3, 2, &mut y).unwrap();
        assert_eq!(y, [9.0, 12.0]);
        reduce_f32(ReduceOp::SumSquare, &x, 1, 3, 2, &mut y).unwrap();
        assert_eq!(y, [35.0, 56.0]);
        reduce_f32(ReduceOp::LogSumExp, &[1000.0, 1000.0], 1, 2, 1, &mut y[..1]).unwrap();
        assert!(
            (y[0] - (1000.0 + core::f32::consts::LN_2)).abs() < 1e-3,
            "no overflow"
        );
        let mut ix = [0i32; 2];
        arg_reduce_f32(ReduceOp::ArgMax, &x, 1, 3, 2, &mut ix).unwrap();
        assert_eq!(ix, [1, 2]);
        arg_reduce_f32(ReduceOp::ArgMin, &x, 1, 3, 2, &mut ix).unwrap();
        assert_eq!(ix, [2, 0]);
        let ties = [2.0, 2.0, 1.0];
        arg_reduce_f32(ReduceOp::ArgMax, &ties, 1, 3, 1, &mut ix[..1]).unwrap();
        assert_eq!(ix[0], 0);
        arg_reduce_f32(ReduceOp::ArgMaxLast, &ties, 1, 3, 1, &mut ix[..1]).unwrap();
        assert_eq!(ix[0], 1);
        assert!(reduce_f32(ReduceOp::ArgMax, &x, 1, 3, 2, &mut y).is_err());
    }
}
