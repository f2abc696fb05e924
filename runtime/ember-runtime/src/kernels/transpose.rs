//! Axis permutation (`y dims = x dims permuted`, `y[i…] = x[perm…]`).

use crate::error::{Error, Result};
use crate::format::MAX_RANK;

/// Copies `x` (dims `x_dims`) into `y` with axes permuted: output axis `i`
/// is input axis `perm[i]`.
pub fn transpose<T: Copy>(x: &[T], x_dims: &[usize], perm: &[usize], y: &mut [T]) -> Result<()> {
    let r = x_dims.len();
    if r > MAX_RANK || perm.len() != r {
        return Err(Error::ShapeMismatch("transpose: rank"));
    }
    let mut seen = [false; MAX_RANK];
    for &p in perm {
        if p >= r || seen[p] {
            return Err(Error::ShapeMismatch("transpose: perm is not a permutation"));
        }
        seen[p] = true;
    }
    let n = x_dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n != Some(x.len()) || x.len() != y.len() {
        return Err(Error::ShapeMismatch("transpose: lengths"));
    }
    if x.is_empty() {
        return Ok(());
    }
    // Input strides, then per output axis the stride in the input.
    let mut in_strides = [0usize; MAX_RANK];
    let mut acc = 1;
    for i in (0..r).rev() {
        in_strides[i] = acc;
        acc *= x_dims[i];
    }
    let mut out_dims = [1usize; MAX_RANK];
    let mut strides = [0usize; MAX_RANK];
    for i in 0..r {
        out_dims[i] = x_dims[perm[i]];
        strides[i] = in_strides[perm[i]];
    }
    let mut idx = [0usize; MAX_RANK];
    let mut src = 0usize;
    for out in y.iter_mut() {
        *out = x[src];
        let mut d = r;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            src += strides[d];
            if idx[d] < out_dims[d] {
                break;
            }
            src -= strides[d] * idx[d];
            idx[d] = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nchw_to_nhwc_and_back() {
        let x: [u32; 24] = core::array::from_fn(|i| i as u32);
        let mut y = [0u32; 24];
        transpose(&x, &[1, 2, 3, 4], &[0, 2, 3, 1], &mut y).unwrap();
        // y[0, h, w, c] = x[0, c, h, w]
        assert_eq!(y[1], x[12]); // h0 w0 c1
        assert_eq!(y[2], x[1]); // h0 w1 c0
        let mut z = [0u32; 24];
        transpose(&y, &[1, 3, 4, 2], &[0, 3, 1, 2], &mut z).unwrap();
        assert_eq!(z, x);
        assert!(transpose(&x, &[1, 2, 3, 4], &[0, 0, 1, 2], &mut y).is_err());
    }
}
