//! Padding: with a constant, or with the input's own values (edge,
//! reflect, wrap).

use super::next_index;
use crate::error::{Error, Result};
use crate::format::MAX_RANK;

/// The padded dims (each below `isize::MAX`), after checking the ranks and
/// that `x_len` and `y_len` are the element counts before and after.
fn padded_dims(
    x_dims: &[usize],
    before: &[usize],
    after: &[usize],
    x_len: usize,
    y_len: usize,
) -> Result<[usize; MAX_RANK]> {
    let r = x_dims.len();
    if r > MAX_RANK || before.len() != r || after.len() != r {
        return Err(Error::ShapeMismatch("pad: rank"));
    }
    let mut y_dims = [1usize; MAX_RANK];
    for i in 0..r {
        y_dims[i] = x_dims[i]
            .checked_add(before[i])
            .and_then(|v| v.checked_add(after[i]))
            .filter(|&v| v <= isize::MAX as usize)
            .ok_or(Error::ShapeMismatch("pad: overflow"))?;
    }
    let xn = x_dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let yn = y_dims[..r]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    if xn != Some(x_len) || yn != Some(y_len) {
        return Err(Error::ShapeMismatch("pad: lengths"));
    }
    Ok(y_dims)
}

/// Pads `x` (dims `x_dims`, rank ≤ [`MAX_RANK`]) with `before[i]` and
/// `after[i]` elements of `value` on each axis `i`; `y` has dims
/// `x_dims[i] + before[i] + after[i]`.
pub fn pad<T: Copy>(
    x: &[T],
    x_dims: &[usize],
    before: &[usize],
    after: &[usize],
    value: T,
    y: &mut [T],
) -> Result<()> {
    let r = x_dims.len();
    let y_dims = padded_dims(x_dims, before, after, x.len(), y.len())?;
    y.fill(value);
    if x.is_empty() {
        return Ok(());
    }
    if r == 0 {
        y.copy_from_slice(x); // scalar: nothing to pad
        return Ok(());
    }
    // Row-major output strides (no overflow: the product is y.len()).
    let mut y_strides = [0usize; MAX_RANK];
    let mut acc = 1;
    for i in (0..r).rev() {
        y_strides[i] = acc;
        acc *= y_dims[i];
    }
    // Copy the input row by row (innermost axis), an odometer over the
    // outer axes giving each row's place in the output.
    let inner = x_dims[r - 1];
    let mut idx = [0usize; MAX_RANK];
    for row in x.chunks_exact(inner) {
        let mut dst = before[r - 1];
        for i in 0..r - 1 {
            dst += (idx[i] + before[i]) * y_strides[i];
        }
        y[dst..dst + inner].copy_from_slice(row);
        next_index(&mut idx[..r - 1], &x_dims[..r - 1]);
    }
    Ok(())
}

/// How the border is filled when it is not a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum PadMode {
    /// Repeat the edge element (`[1, 2, 3]` → `1 1 | 1 2 3 | 3 3`).
    Edge = 1,
    /// Mirror without repeating the edge (`3 2 | 1 2 3 | 2 1`).
    Reflect = 2,
    /// Continue periodically (`2 3 | 1 2 3 | 1 2`).
    Wrap = 3,
}

impl PadMode {
    /// From its word (1, 2, 3).
    pub fn from_i32(v: i32) -> Option<PadMode> {
        Some(match v {
            1 => PadMode::Edge,
            2 => PadMode::Reflect,
            3 => PadMode::Wrap,
            _ => return None,
        })
    }

    /// The input index (in `0..n`, `n ≥ 1`) that output position `i`
    /// (counted from the input's first element, so negative in the
    /// leading border) reads.
    pub fn source(self, i: isize, n: usize) -> usize {
        let n = n as isize;
        let j = match self {
            PadMode::Edge => i.clamp(0, n - 1),
            PadMode::Wrap => i.rem_euclid(n),
            PadMode::Reflect if n == 1 => 0,
            PadMode::Reflect => {
                let period = 2 * (n - 1);
                let k = i.rem_euclid(period);
                if k < n {
                    k
                } else {
                    period - k
                }
            }
        };
        j as usize
    }
}

/// Pads `x` (dims `x_dims`, every dim ≥ 1, rank ≤ [`MAX_RANK`]) by
/// `before[i]` and `after[i]` elements on each axis `i`, filled from the
/// input itself as `mode` says (any pad width: reflection and wrapping
/// repeat as often as needed).
pub fn pad_from_input<T: Copy>(
    x: &[T],
    x_dims: &[usize],
    before: &[usize],
    after: &[usize],
    mode: PadMode,
    y: &mut [T],
) -> Result<()> {
    let r = x_dims.len();
    let y_dims = padded_dims(x_dims, before, after, x.len(), y.len())?;
    if x.is_empty() {
        return if y.is_empty() {
            Ok(())
        } else {
            Err(Error::ShapeMismatch("pad: nothing to pad from"))
        };
    }
    let mut x_strides = [0usize; MAX_RANK];
    let mut acc = 1;
    for i in (0..r).rev() {
        x_strides[i] = acc;
        acc *= x_dims[i];
    }
    // Odometer over the output; each element reads the input element its
    // per-axis sources name (all inside `x`: `source` stays in `0..n`).
    let mut idx = [0usize; MAX_RANK];
    for out in y.iter_mut() {
        let mut src = 0;
        for d in 0..r {
            let i = idx[d] as isize - before[d] as isize;
            src += mode.source(i, x_dims[d]) * x_strides[d];
        }
        *out = x[src];
        next_index(&mut idx, &y_dims[..r]);
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
    }

    #[test]
    fn pads_nhwc_spatially() {
        // [1, 2, 2, 2] → pad H and W by 1 on each side → [1, 4, 4, 2].
        let x: [f32; 8] = core::array::from_fn(|i| i as f32 + 1.0);
        let mut y = [9f32; 32];
        pad(&x, &[1, 2, 2, 2], &[0, 1, 1, 0], &[0, 1, 1, 0], 0.0, &mut y).unwrap();
        for h in 0..4 {
            for w in 0..4 {
                for c in 0..2 {
                    let inside = (1..3).contains(&h) && (1..3).contains(&w);
                    let want = if inside {
                        x[((h - 1) * 2 + (w - 1)) * 2 + c]
                    } else {
                        0.0
                    };
                    assert_eq!(y[(h * 4 + w) * 2 + c], want);
                }
            }
        }
        // No padding is a copy; scalars too.
        let mut z = [0f32; 8];
        pad(&x, &[2, 4], &[0, 0], &[0, 0], 5.0, &mut z).unwrap();
        assert_eq!(z, x);
        let mut s = [0u8];
        pad(&[7u8], &[], &[], &[], 0, &mut s).unwrap();
        assert_eq!(s, [7]);
        // Empty input: all padding.
        let mut e = [0u8; 4];
        pad(&[], &[0, 2], &[1, 0], &[1, 0], 3, &mut e).unwrap();
        assert_eq!(e, [3; 4]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let mut y = [0i8; 12];
        assert!(pad(&[1i8], &[1], &[1], &[1], 0, &mut y).is_err());
        assert!(pad(&[1i8, 2], &[1], &[1], &[1], 0, &mut y[..3]).is_err());
        assert!(pad(&[1i8], &[1], &[1, 0], &[1], 0, &mut y[..3]).is_err());
        assert!(pad(&[1i8], &[1], &[usize::MAX], &[1], 0, &mut y[..3]).is_err());
        assert!(pad(&[1i8], &[1; 7], &[0; 7], &[0; 7], 0, &mut y[..1]).is_err());
    }

    #[test]
    fn edge_reflect_wrap() {
        let x = [1u8, 2, 3];
        let mut y = [0u8; 9];
        let run = |m, y: &mut [u8]| pad_from_input(&x, &[3], &[3], &[3], m, y).unwrap();
        run(PadMode::Edge, &mut y);
        assert_eq!(y, [1, 1, 1, 1, 2, 3, 3, 3, 3]);
        run(PadMode::Reflect, &mut y);
        assert_eq!(y, [2, 3, 2, 1, 2, 3, 2, 1, 2]);
        run(PadMode::Wrap, &mut y);
        assert_eq!(y, [1, 2, 3, 1, 2, 3, 1, 2, 3]);
        // 2-D: [[1, 2], [3, 4]] with a row above and a column right.
        let x2 = [1u8, 2, 3, 4];
        let mut y2 = [0u8; 9];
        pad_from_input(&x2, &[2, 2], &[1, 0], &[0, 1], PadMode::Edge, &mut y2).unwrap();
        assert_eq!(y2, [1, 2, 2, 1, 2, 2, 3, 4, 4]);
        pad_from_input(&x2, &[2, 2], &[1, 0], &[0, 1], PadMode::Wrap, &mut y2).unwrap();
        assert_eq!(y2, [3, 4, 3, 1, 2, 1, 3, 4, 3]);
        assert!(pad_from_input::<u8>(&[], &[0], &[1], &[0], PadMode::Edge, &mut [0]).is_err());
    }
}
