//! Gather along one axis (embedding lookup): `y[o, i, r] = x[o, idx[i],
//! r]` for `x` viewed as `[outer, n, inner]`, any element type (the kernel
//! moves whole elements of `elem` bytes). Indices are i32; negative ones
//! count from the end, as in ONNX; anything outside `[-n, n)` is an error,
//! never a wrapped read.

use super::check_len;
use crate::error::{Error, Result};

/// Gathers `idx` along the middle axis of `x` `[outer, n, inner]` (each
/// element `elem` bytes) into `y` `[outer, idx.len(), inner]`.
pub fn gather(
    x: &[u8],
    outer: usize,
    n: usize,
    inner: usize,
    elem: usize,
    idx: &[i32],
    y: &mut [u8],
) -> Result<()> {
    let row = inner.checked_mul(elem);
    check_len(
        x.len(),
        outer.checked_mul(n).and_then(|v| v.checked_mul(row?)),
        "gather: input length",
    )?;
    check_len(
        y.len(),
        outer
            .checked_mul(idx.len())
            .and_then(|v| v.checked_mul(row?)),
        "gather: output length",
    )?;
    let row = row.unwrap_or(0);
    if row == 0 {
        return Ok(());
    }
    for (o, yo) in y.chunks_exact_mut(idx.len() * row).enumerate() {
        for (&i, yr) in idx.iter().zip(yo.chunks_exact_mut(row)) {
            let j = if i < 0 { i as i64 + n as i64 } else { i as i64 };
            if j < 0 || j >= n as i64 {
                return Err(Error::IndexOutOfRange);
            }
            let src = (o * n + j as usize) * row;
            yr.copy_from_slice(&x[src..src + row]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_negative_indices() {
        let x: [u8; 6] = [1, 2, 3, 4, 5, 6]; // [3, 2]
        let mut y = [0u8; 6];
        gather(&x, 1, 3, 2, 1, &[2, 0, -1], &mut y).unwrap();
        assert_eq!(y, [5, 6, 1, 2, 5, 6]);
        assert_eq!(
            gather(&x, 1, 3, 2, 1, &[3, 0, 0], &mut y),
            Err(Error::IndexOutOfRange)
        );
        assert!(gather(&x, 1, 3, 2, 1, &[0, 0, -4], &mut y).is_err());
        // axis 1 of [2, 3]: outer 2, n 3, inner 1.
        let mut y2 = [0u8; 2];
        gather(&x, 2, 3, 1, 1, &[1], &mut y2).unwrap();
        assert_eq!(y2, [2, 5]);
    }
}
