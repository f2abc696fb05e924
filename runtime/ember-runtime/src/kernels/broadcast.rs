//! Numpy-style broadcasting over up to [`MAX_RANK`] dimensions, without
//! allocation: shapes are right-aligned, and along each axis an operand
//! either matches the output or has extent 1 (stride 0).

use crate::error::{Error, Result};
use crate::format::MAX_RANK;

/// Index mapping from an output element to the two broadcast operands.
#[derive(Clone, Copy, Debug)]
pub struct Broadcast {
    dims: [usize; MAX_RANK],
    a_strides: [usize; MAX_RANK],
    b_strides: [usize; MAX_RANK],
    /// Elements in the output.
    pub len: usize,
    /// Both operands have exactly the output's shape.
    pub same: bool,
    a_len: usize,
    b_len: usize,
}

fn aligned(d: &[usize], rank: usize) -> Option<[usize; MAX_RANK]> {
    if d.len() > rank || rank > MAX_RANK {
        return None;
    }
    let mut out = [1usize; MAX_RANK];
    let off = MAX_RANK - d.len();
    out[off..].copy_from_slice(d);
    Some(out)
}

fn strides(d: &[usize; MAX_RANK], out: &[usize; MAX_RANK]) -> [usize; MAX_RANK] {
    let mut s = [0usize; MAX_RANK];
    let mut acc = 1usize;
    for i in (0..MAX_RANK).rev() {
        s[i] = if d[i] == 1 && out[i] != 1 { 0 } else { acc };
        acc = acc.saturating_mul(d[i]);
    }
    s
}

impl Broadcast {
    /// Checks that `a` and `b` broadcast to exactly `out` (ranks up to
    /// [`MAX_RANK`], operands of lower rank are right-aligned).
    pub fn new(a: &[usize], b: &[usize], out: &[usize]) -> Result<Self> {
        Self::build(a, b, out, true)
    }

    /// Like [`Broadcast::new`], but the output may be larger than both
    /// operands (it comes from a third one, as in `Where`).
    pub fn into_shape(a: &[usize], b: &[usize], out: &[usize]) -> Result<Self> {
        Self::build(a, b, out, false)
    }

    fn build(a: &[usize], b: &[usize], out: &[usize], strict: bool) -> Result<Self> {
        let err = Error::ShapeMismatch("shapes do not broadcast");
        let r = out.len();
        let (ad, bd, od) = (
            aligned(a, r).ok_or(err)?,
            aligned(b, r).ok_or(err)?,
            aligned(out, r).ok_or(err)?,
        );
        for i in 0..MAX_RANK {
            // Each operand matches the output or is 1; the output is one of
            // them (so 1 with 0 gives 0, as in numpy).
            let ok = |d: usize| d == od[i] || d == 1;
            if !ok(ad[i]) || !ok(bd[i]) || (strict && od[i] != ad[i] && od[i] != bd[i]) {
                return Err(err);
            }
        }
        let prod = |d: &[usize]| d.iter().try_fold(1usize, |acc, &v| acc.checked_mul(v));
        Ok(Broadcast {
            dims: od,
            a_strides: strides(&ad, &od),
            b_strides: strides(&bd, &od),
            len: prod(out).ok_or(err)?,
            same: a == out && b == out,
            a_len: prod(a).ok_or(err)?,
            b_len: prod(b).ok_or(err)?,
        })
    }

    /// Checks operand and output slice lengths.
    pub fn check(&self, a: usize, b: usize, y: usize) -> Result<()> {
        if a != self.a_len || b != self.b_len || y != self.len {
            return Err(Error::ShapeMismatch("element-wise operand length"));
        }
        Ok(())
    }

    /// Calls `f(out_index, a_index, b_index)` for every output element in
    /// order (row-major), with the flat indices of the operand elements it
    /// reads. Indices are below the lengths checked by [`Broadcast::check`].
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        if self.same {
            for i in 0..self.len {
                f(i, i, i);
            }
            return;
        }
        if self.len == 0 {
            return;
        }
        let mut idx = [0usize; MAX_RANK];
        let (mut ai, mut bi) = (0usize, 0usize);
        for o in 0..self.len {
            f(o, ai, bi);
            // odometer increment
            let mut d = MAX_RANK;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                ai += self.a_strides[d];
                bi += self.b_strides[d];
                if idx[d] < self.dims[d] {
                    break;
                }
                ai -= self.a_strides[d] * idx[d];
                bi -= self.b_strides[d] * idx[d];
                idx[d] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn pairs(b: &Broadcast) -> Vec<(usize, usize, usize)> {
        let mut v = Vec::new();
        b.for_each(|o, a, bb| v.push((o, a, bb)));
        v
    }

    #[test]
    fn broadcast_indices() {
        let b = Broadcast::new(&[2, 1, 3], &[1, 4, 1], &[2, 4, 3]).unwrap();
        assert!(!b.same);
        let seen = pairs(&b);
        assert_eq!(seen.len(), 24);
        for (o, a, bb) in seen {
            let (i, j, k) = (o / 12, o / 3 % 4, o % 3);
            assert_eq!(a, i * 3 + k); // a[i, 0, k]
            assert_eq!(bb, j); // b[0, j, 0]
        }
    }

    #[test]
    fn lower_rank_and_scalar_operands() {
        let b = Broadcast::new(&[3], &[2, 1], &[2, 3]).unwrap();
        let seen = pairs(&b);
        assert_eq!(
            seen,
            [
                (0, 0, 0),
                (1, 1, 0),
                (2, 2, 0),
                (3, 0, 1),
                (4, 1, 1),
                (5, 2, 1)
            ]
        );
        let b = Broadcast::new(&[3], &[], &[3]).unwrap();
        assert_eq!(pairs(&b), [(0, 0, 0), (1, 1, 0), (2, 2, 0)]);
        // The output must be the broadcast shape, not a larger one.
        assert!(Broadcast::new(&[3], &[], &[2, 3]).is_err());
        let b = Broadcast::new(&[2, 3], &[2, 3], &[2, 3]).unwrap();
        assert!(b.same);
        assert_eq!(pairs(&b).len(), 6);
        assert!(b.check(6, 6, 6).is_ok());
        assert!(b.check(6, 5, 6).is_err());
        // Zero-size outputs, including 1 broadcast against 0.
        let b = Broadcast::new(&[0, 3], &[1, 3], &[0, 3]).unwrap();
        assert_eq!(b.len, 0);
        assert!(pairs(&b).is_empty());
        // Rank 6.
        let b = Broadcast::new(
            &[2, 1, 1, 1, 1, 2],
            &[1, 1, 1, 1, 2, 1],
            &[2, 1, 1, 1, 2, 2],
        )
        .unwrap();
        assert_eq!(pairs(&b).last(), Some(&(7, 3, 1)));
    }

    #[test]
    fn incompatible_shapes_are_errors() {
        assert!(Broadcast::new(&[2, 3], &[3, 3], &[2, 3]).is_err());
        assert!(Broadcast::new(&[1], &[1], &[5]).is_err());
        assert!(Broadcast::new(&[2, 3], &[3], &[3]).is_err());
        assert!(Broadcast::new(&[1; 7], &[1], &[1; 7]).is_err());
        assert!(Broadcast::new(&[usize::MAX, 2], &[1], &[usize::MAX, 2]).is_err());
    }
}
