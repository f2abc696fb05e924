//! Batched f32 matrix product over strided views: `y[b, m, n] = Σ_k a[b, m,
//! k] · b[b, k, n]`. The compiler describes each operand by strides instead
//! of copying it into row-major order, so an ONNX `Transpose` in front of a
//! `MatMul` (attention's `Kᵀ`, heads split from the hidden axis) costs
//! nothing at run time.

use crate::error::{Error, Result};

/// A 3-D view `[batch, rows, cols]` into a flat slice, element strides per
/// axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StridedView {
    /// Extent of the batch axis.
    pub batch: usize,
    /// Extent of the row axis.
    pub rows: usize,
    /// Extent of the column axis.
    pub cols: usize,
    /// Stride of the batch axis, in elements.
    pub s_batch: usize,
    /// Stride of the row axis, in elements.
    pub s_row: usize,
    /// Stride of the column axis, in elements.
    pub s_col: usize,
}

impl StridedView {
    /// A row-major `[batch, rows, cols]` view.
    pub const fn dense(batch: usize, rows: usize, cols: usize) -> Self {
        StridedView {
            batch,
            rows,
            cols,
            s_batch: rows * cols,
            s_row: cols,
            s_col: 1,
        }
    }

    /// One past the largest index the view touches (0 when empty), `None`
    /// on overflow.
    pub fn span(&self) -> Option<usize> {
        if self.batch == 0 || self.rows == 0 || self.cols == 0 {
            return Some(0);
        }
        let last = |n: usize, s: usize| (n - 1).checked_mul(s);
        last(self.batch, self.s_batch)?
            .checked_add(last(self.rows, self.s_row)?)?
            .checked_add(last(self.cols, self.s_col)?)?
            .checked_add(1)
    }

    /// Number of elements, `None` on overflow.
    pub fn numel(&self) -> Option<usize> {
        self.batch.checked_mul(self.rows)?.checked_mul(self.cols)
    }

    /// Whether the view visits every element of a slice of `len` elements
    /// exactly once (an axis permutation of a dense array): needed for an
    /// output, so that every element is written.
    pub fn is_permutation_of(&self, len: usize) -> bool {
        let mut axes = [
            (self.s_batch, self.batch),
            (self.s_row, self.rows),
            (self.s_col, self.cols),
        ];
        if self.numel() != Some(len) {
            return false;
        }
        if len == 0 {
            return true;
        }
        // Axes of extent 1 have no say; the others, sorted by stride, must
        // nest exactly: each stride is the product of the smaller extents.
        axes.sort_unstable();
        let mut want = 1usize;
        for (s, n) in axes {
            if n == 1 {
                continue;
            }
            if s != want {
                return false;
            }
            want = match want.checked_mul(n) {
                Some(v) => v,
                None => return false,
            };
        }
        want == len
    }

    #[inline]
    fn at(&self, b: usize, r: usize, c: usize) -> usize {
        b * self.s_batch + r * self.s_row + c * self.s_col
    }
}

fn check_view(v: &StridedView, len: usize, what: &'static str) -> Result<()> {
    match v.span() {
        Some(s) if s <= len => Ok(()),
        _ => Err(Error::ShapeMismatch(what)),
    }
}

/// `y[b, m, n] = Σ_k a[b, m, k] · w[b, k, n]` with `a` viewed as `[batch, M,
/// K]`, `w` as `[batch, K, N]` and `y` row-major `[batch, M, N]`; the sum
/// runs over `k` in order.
pub fn matmul_f32(
    a: &[f32],
    av: &StridedView,
    w: &[f32],
    wv: &StridedView,
    y: &mut [f32],
) -> Result<()> {
    check_view(av, a.len(), "matmul: A view outside its tensor")?;
    check_view(wv, w.len(), "matmul: B view outside its tensor")?;
    if av.batch != wv.batch || av.cols != wv.rows {
        return Err(Error::ShapeMismatch("matmul: operand shapes differ"));
    }
    let (m, n, k) = (av.rows, wv.cols, av.cols);
    if Some(y.len()) != StridedView::dense(av.batch, m, n).numel() {
        return Err(Error::ShapeMismatch("matmul: output length"));
    }
    if n == 0 {
        return Ok(());
    }
    for (i, yr) in y.chunks_exact_mut(n).enumerate() {
        let (bi, mi) = (i / m, i % m);
        for (ni, o) in yr.iter_mut().enumerate() {
            let mut acc = 0f32;
            for ki in 0..k {
                acc += a[av.at(bi, mi, ki)] * w[wv.at(bi, ki, ni)];
            }
            *o = acc;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn transposed_operand_through_strides() {
        // a [1, 2, 3], w given as wᵀ [1, 2(n), 3(k)] viewed as [1, 3, 2].
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let wt = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let wv = StridedView {
            batch: 1,
            rows: 3,
            cols: 2,
            s_batch: 6,
            s_row: 1,
            s_col: 3,
        };
        let mut y = [0f32; 4];
        matmul_f32(&a, &StridedView::dense(1, 2, 3), &wt, &wv, &mut y).unwrap();
        assert_eq!(y, [4.0, 2.0, 10.0, 5.0]);
    }

    #[test]
    fn views_outside_the_tensor_are_errors() {
        let a = [0f32; 5];
        let mut y = [0f32; 4];
        let v = StridedView::dense(1, 2, 3);
        assert!(matmul_f32(&a, &v, &[0.0; 6], &StridedView::dense(1, 3, 2), &mut y).is_err());
        let bad = StridedView {
            s_row: usize::MAX,
            ..v
        };
        assert!(bad.span().is_none());
    }

    #[test]
    fn permutation_check() {
        // [2, 3, 4] stored as [3, 2, 4]: batch stride 4, row stride 8.
        let v = StridedView {
            batch: 2,
            rows: 3,
            cols: 4,
            s_batch: 4,
            s_row: 8,
            s_col: 1,
        };
        assert!(v.is_permutation_of(24));
        assert!(!StridedView { s_row: 4, ..v }.is_permutation_of(24));
        assert!(StridedView::dense(1, 1, 5).is_permutation_of(5));
        let order: Vec<usize> = (0..3).map(|r| v.at(1, r, 0)).collect();
        assert_eq!(order, [4, 12, 20]);
    }
}
