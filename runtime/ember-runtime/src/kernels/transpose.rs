//! Axis permutation: output axis `i` is input axis `perm[i]`, so
//! `y dims = [x_dims[perm[0]], x_dims[perm[1]], ..]`.

use crate::error::{Error, Result};
use crate::format::MAX_RANK;

/// Copies `x` (dims `x_dims`, rank ≤ [`MAX_RANK`]) into `y` with its axes
/// permuted: output axis `i` is input axis `perm[i]` (ONNX / numpy
/// `transpose` convention). `y` has as many elements as `x`.
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
    // Row-major input strides (no overflow: every dim is at least 1 here and
    // the product is x.len()), then for each output axis its input stride.
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
    // Odometer over the output index; `src` follows in the input.
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
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn nchw_to_nhwc_and_back() {
        let x: [u32; 24] = core::array::from_fn(|i| i as u32);
        let mut y = [0u32; 24];
        transpose(&x, &[1, 2, 3, 4], &[0, 2, 3, 1], &mut y).unwrap();
        // y[0, h, w, c] = x[0, c, h, w]
        for h in 0..3 {
            for w in 0..4 {
                for c in 0..2 {
                    assert_eq!(y[(h * 4 + w) * 2 + c], x[(c * 3 + h) * 4 + w]);
                }
            }
        }
        let mut z = [0u32; 24];
        transpose(&y, &[1, 3, 4, 2], &[0, 3, 1, 2], &mut z).unwrap();
        assert_eq!(z, x);
    }

    #[test]
    fn roundtrip_with_inverse_perm_rank_6() {
        let dims = [2, 1, 3, 2, 2, 3];
        let x: Vec<i8> = (0..72).map(|i| i as i8).collect();
        let perm = [4, 2, 0, 5, 1, 3];
        let mut inv = [0usize; 6];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        let ydims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        let (mut y, mut z) = (vec![0i8; 72], vec![0i8; 72]);
        transpose(&x, &dims, &perm, &mut y).unwrap();
        assert_ne!(y, x);
        transpose(&y, &ydims, &inv, &mut z).unwrap();
        assert_eq!(z, x);
        // 2-D matrix transpose and the identity / scalar cases.
        let mut t = [0f32; 6];
        transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], &[1, 0], &mut t).unwrap();
        assert_eq!(t, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let mut s = [0u8; 1];
        transpose(&[9u8], &[], &[], &mut s).unwrap();
        assert_eq!(s, [9]);
        transpose::<u8>(&[], &[0, 3], &[1, 0], &mut []).unwrap();
    }

    #[test]
    fn bad_arguments_are_errors() {
        let x = [0u8; 6];
        let mut y = [0u8; 6];
        assert!(transpose(&x, &[2, 3], &[0, 0], &mut y).is_err());
        assert!(transpose(&x, &[2, 3], &[0, 2], &mut y).is_err());
        assert!(transpose(&x, &[2, 3], &[0], &mut y).is_err());
        assert!(transpose(&x, &[2, 3], &[1, 0], &mut y[..5]).is_err());
        assert!(transpose(&x[..5], &[2, 3], &[1, 0], &mut y).is_err());
        assert!(transpose(&x, &[1; 7], &[0, 1, 2, 3, 4, 5, 6], &mut y).is_err());
        assert!(transpose(&x, &[usize::MAX, 2], &[1, 0], &mut y).is_err());
    }
}
