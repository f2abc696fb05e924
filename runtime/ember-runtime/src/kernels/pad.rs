//! Constant padding.

use crate::error::{Error, Result};
use crate::format::MAX_RANK;

/// Pads `x` with `before[i]`/`after[i]` elements of `value` on each axis.
pub fn pad<T: Copy>(
    x: &[T],
    x_dims: &[usize],
    before: &[usize],
    after: &[usize],
    value: T,
    y: &mut [T],
) -> Result<()> {
    let r = x_dims.len();
    if r == 0 || r > MAX_RANK || before.len() != r || after.len() != r {
        return Err(Error::ShapeMismatch("pad: rank"));
    }
    let mut y_dims = [1usize; MAX_RANK];
    for i in 0..r {
        y_dims[i] = x_dims[i]
            .checked_add(before[i])
            .and_then(|v| v.checked_add(after[i]))
            .ok_or(Error::ShapeMismatch("pad: overflow"))?;
    }
    let xn = x_dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let yn = y_dims[..r]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    if xn != Some(x.len()) || yn != Some(y.len()) {
        return Err(Error::ShapeMismatch("pad: lengths"));
    }
    y.fill(value);
    if x.is_empty() {
        return Ok(());
    }
    // Copy rows of the innermost axis.
    let inner = x_dims[r - 1];
    let mut y_strides = [0usize; MAX_RANK];
    let mut acc = 1;
    for i in (0..r).rev() {
        y_strides[i] = acc;
        acc *= y_dims[i];
    }
    let mut idx = [0usize; MAX_RANK];
    for row in x.chunks_exact(inner.max(1)) {
        let mut dst = before[r - 1];
        for i in 0..r - 1 {
            dst += (idx[i] + before[i]) * y_strides[i];
        }
        y[dst..dst + inner].copy_from_slice(row);
        let mut d = r - 1;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            if idx[d] < x_dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_2d() {
        let mut y = [0i8; 12];
        pad(&[1i8, 2, 3, 4], &[2, 2], &[1, 0], &[0, 2], -1, &mut y).unwrap();
        assert_eq!(y, [-1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1]);
        assert!(pad(&[1i8], &[1], &[1], &[1], 0, &mut y).is_err());
    }
}
