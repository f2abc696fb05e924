//! Data-indexed ops: `GatherElements`, the negative log-likelihood loss,
//! and cumulative sums. Every index read from the input data is checked;
//! one outside its axis is [`Error::IndexOutOfRange`].

use super::next_index;
use crate::error::{Error, Result};
use crate::format::MAX_RANK;

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> [usize; MAX_RANK] {
    let mut s = [0usize; MAX_RANK];
    let mut acc = 1;
    for d in (0..dims.len()).rev() {
        s[d] = acc;
        acc *= dims[d];
    }
    s
}

/// An index along an axis of extent `n` (negative counts from the end).
fn resolve(i: i32, n: usize) -> Result<usize> {
    let j = if i < 0 { i as i64 + n as i64 } else { i as i64 };
    if j < 0 || j >= n as i64 {
        return Err(Error::IndexOutOfRange);
    }
    Ok(j as usize)
}

/// `GatherElements`: `y[p] = x[p with its axis coordinate replaced by
/// idx[p]]`; `idx` and `y` have dims `idx_dims` (each at most `x_dims`
/// off the axis).
pub fn gather_elements<T: Copy>(
    x: &[T],
    x_dims: &[usize],
    idx: &[i32],
    idx_dims: &[usize],
    axis: usize,
    y: &mut [T],
) -> Result<()> {
    let r = x_dims.len();
    if r == 0 || r > MAX_RANK || idx_dims.len() != r || axis >= r {
        return Err(Error::ShapeMismatch("gather_elements: rank"));
    }
    if (0..r).any(|d| d != axis && idx_dims[d] > x_dims[d]) {
        return Err(Error::ShapeMismatch("gather_elements: index dims"));
    }
    let xn = x_dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let n = idx_dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if xn != Some(x.len()) || n != Some(idx.len()) || idx.len() != y.len() {
        return Err(Error::ShapeMismatch("gather_elements: lengths"));
    }
    let xs = strides(x_dims);
    let mut p = [0usize; MAX_RANK];
    for (o, &i) in y.iter_mut().zip(idx) {
        let mut src = resolve(i, x_dims[axis])? * xs[axis];
        for d in 0..r {
            if d != axis {
                src += p[d] * xs[d];
            }
        }
        *o = x[src];
        next_index(&mut p, idx_dims);
    }
    Ok(())
}

/// How a loss is reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// One loss per element.
    None = 0,
    /// Their sum.
    Sum = 1,
    /// Their weighted mean (divided by the sum of the weights used).
    Mean = 2,
}

impl Reduction {
    /// From its word.
    pub fn from_i32(v: i32) -> Option<Reduction> {
        Some(match v {
            0 => Reduction::None,
            1 => Reduction::Sum,
            2 => Reduction::Mean,
            _ => return None,
        })
    }
}

/// Negative log-likelihood loss over `x` `[n, c, inner]` (log-probabilities)
/// and `target` `[n, inner]` class indices: `−x[b, t, i] · w[t]` per element
/// (0 where `t` is `ignore`), reduced as `reduction` says into `y`
/// (`n·inner` values, or one).
#[allow(clippy::too_many_arguments)]
pub fn nll_loss_f32(
    x: &[f32],
    n: usize,
    c: usize,
    inner: usize,
    target: &[i32],
    weight: Option<&[f32]>,
    ignore: Option<i32>,
    reduction: Reduction,
    y: &mut [f32],
) -> Result<()> {
    let total = n.checked_mul(c).and_then(|v| v.checked_mul(inner));
    if total != Some(x.len()) || n.checked_mul(inner) != Some(target.len()) {
        return Err(Error::ShapeMismatch("nll_loss: lengths"));
    }
    if weight.is_some_and(|w| w.len() != c) {
        return Err(Error::ShapeMismatch("nll_loss: weight length"));
    }
    let want = if reduction == Reduction::None {
        target.len()
    } else {
        1
    };
    if y.len() != want {
        return Err(Error::ShapeMismatch("nll_loss: output length"));
    }
    let (mut sum, mut wsum) = (0f32, 0f32);
    for b in 0..n {
        for i in 0..inner {
            let t = target[b * inner + i];
            let (loss, w) = if Some(t) == ignore {
                (0.0, 0.0)
            } else {
                if t < 0 || t as usize >= c {
                    return Err(Error::IndexOutOfRange);
                }
                let w = weight.map_or(1.0, |w| w[t as usize]);
                (-x[(b * c + t as usize) * inner + i] * w, w)
            };
            if reduction == Reduction::None {
                y[b * inner + i] = loss;
            }
            sum += loss;
            wsum += w;
        }
    }
    match reduction {
        Reduction::None => {}
        Reduction::Sum => y[0] = sum,
        Reduction::Mean => y[0] = sum / wsum,
    }
    Ok(())
}

/// Cumulative sum (by `add`, from `T::default()`) along the middle axis of
/// `[outer, n, inner]`, in order or `reverse`d, `exclusive` (each output
/// leaves its own input out) or not.
#[allow(clippy::too_many_arguments)]
pub fn cumsum<T: Copy + Default>(
    x: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    exclusive: bool,
    reverse: bool,
    add: impl Fn(T, T) -> T,
    y: &mut [T],
) -> Result<()> {
    let total = outer.checked_mul(n).and_then(|v| v.checked_mul(inner));
    if total != Some(x.len()) || x.len() != y.len() {
        return Err(Error::ShapeMismatch("cumsum: lengths"));
    }
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            let mut acc = T::default();
            for k in 0..n {
                let j = if reverse { n - 1 - k } else { k };
                if exclusive {
                    y[at(j)] = acc;
                    acc = add(acc, x[at(j)]);
                } else {
                    acc = add(acc, x[at(j)]);
                    y[at(j)] = acc;
                }
            }
        }
    }
    Ok(())
}

/// `TopK` along the middle axis of `x` `[outer, n, inner]`: the `k` largest
/// (or smallest) values of each line, best first, ties to the lower index;
/// `values` and/or `indices` are `[outer, k, inner]`. NaN is never
/// selected ahead of a number. No scratch: each rank is a scan for the
/// best element after the previous one, O(k·n).
#[allow(clippy::too_many_arguments)]
pub fn top_k_f32(
    x: &[f32],
    outer: usize,
    n: usize,
    inner: usize,
    k: usize,
    largest: bool,
    mut values: Option<&mut [f32]>,
    mut indices: Option<&mut [i32]>,
) -> Result<()> {
    let total = outer.checked_mul(n).and_then(|v| v.checked_mul(inner));
    let out = outer.checked_mul(k).and_then(|v| v.checked_mul(inner));
    if total != Some(x.len()) || k > n || n > i32::MAX as usize {
        return Err(Error::ShapeMismatch("top_k: lengths"));
    }
    if values.as_ref().is_some_and(|v| Some(v.len()) != out)
        || indices.as_ref().is_some_and(|v| Some(v.len()) != out)
    {
        return Err(Error::ShapeMismatch("top_k: output length"));
    }
    // `(v, j)` ranks ahead of `(w, l)`: a better value, or an equal one
    // at a lower index; NaN ranks last.
    let ahead = |v: f32, j: usize, w: f32, l: usize| -> bool {
        match (v.is_nan(), w.is_nan()) {
            (false, true) => true,
            (true, false) => false,
            (true, true) => j < l,
            _ => {
                let better = if largest { v > w } else { v < w };
                better || (v == w && j < l)
            }
        }
    };
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| x[(o * n + j) * inner + i];
            let mut prev: Option<usize> = None;
            for r in 0..k {
                let mut best: Option<usize> = None;
                for j in 0..n {
                    let after_prev = prev.is_none_or(|p| ahead(at(p), p, at(j), j));
                    if after_prev && best.is_none_or(|b| ahead(at(j), j, at(b), b)) {
                        best = Some(j);
                    }
                }
                let b = best.ok_or(Error::ShapeMismatch("top_k: k above n"))?;
                let dst = (o * k + r) * inner + i;
                if let Some(v) = values.as_deref_mut() {
                    v[dst] = at(b);
                }
                if let Some(ix) = indices.as_deref_mut() {
                    ix[dst] = b as i32;
                }
                prev = Some(b);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_elements_along_each_axis() {
        let x = [1, 2, 3, 4]; // [[1, 2], [3, 4]]
        let mut y = [0; 4];
        gather_elements(&x, &[2, 2], &[0, 0, 1, 0], &[2, 2], 1, &mut y).unwrap();
        assert_eq!(y, [1, 1, 4, 3]);
        gather_elements(&x, &[2, 2], &[1, 0, -2, 1], &[2, 2], 0, &mut y).unwrap();
        assert_eq!(y, [3, 2, 1, 4]);
        let e = gather_elements(&x, &[2, 2], &[2, 0, 0, 0], &[2, 2], 0, &mut y);
        assert_eq!(e, Err(Error::IndexOutOfRange));
    }

    #[test]
    fn nll_loss_reductions() {
        // n = 2, c = 3, inner = 1
        let x = [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0];
        let w = [1.0, 2.0, 0.5];
        let mut y = [0f32; 2];
        nll_loss_f32(
            &x,
            2,
            3,
            1,
            &[1, 2],
            Some(&w),
            None,
            Reduction::None,
            &mut y,
        )
        .unwrap();
        assert_eq!(y, [4.0, 3.0]);
        let mut s = [0f32];
        nll_loss_f32(
            &x,
            2,
            3,
            1,
            &[1, 2],
            Some(&w),
            None,
            Reduction::Mean,
            &mut s,
        )
        .unwrap();
        assert_eq!(s, [7.0 / 2.5]);
        nll_loss_f32(&x, 2, 3, 1, &[1, 2], None, Some(2), Reduction::Sum, &mut s).unwrap();
        assert_eq!(s, [2.0]);
        let e = nll_loss_f32(&x, 2, 3, 1, &[3, 0], None, None, Reduction::Sum, &mut s);
        assert_eq!(e, Err(Error::IndexOutOfRange));
    }

    #[test]
    fn cumsum_modes() {
        let x = [1, 2, 3];
        let mut y = [0; 3];
        let add = i32::wrapping_add;
        cumsum(&x, 1, 3, 1, false, false, add, &mut y).unwrap();
        assert_eq!(y, [1, 3, 6]);
        cumsum(&x, 1, 3, 1, true, false, add, &mut y).unwrap();
        assert_eq!(y, [0, 1, 3]);
        cumsum(&x, 1, 3, 1, false, true, add, &mut y).unwrap();
        assert_eq!(y, [6, 5, 3]);
        cumsum(&x, 1, 3, 1, true, true, add, &mut y).unwrap();
        assert_eq!(y, [5, 3, 0]);
        let mut yf = [0f32; 2];
        cumsum(
            &[0.5f32, 0.25],
            1,
            2,
            1,
            false,
            false,
            |a, b| a + b,
            &mut yf,
        )
        .unwrap();
        assert_eq!(yf, [0.5, 0.75]);
    }

    #[test]
    fn top_k_orders_and_breaks_ties_low() {
        let x = [1.0, 5.0, 3.0, 5.0, f32::NAN, -2.0];
        let (mut v, mut ix) = ([0f32; 3], [0i32; 3]);
        top_k_f32(&x, 1, 6, 1, 3, true, Some(&mut v), Some(&mut ix)).unwrap();
        assert_eq!((v, ix), ([5.0, 5.0, 3.0], [1, 3, 2]));
        top_k_f32(&x, 1, 6, 1, 3, false, Some(&mut v), Some(&mut ix)).unwrap();
        assert_eq!((v, ix), ([-2.0, 1.0, 3.0], [5, 0, 2]));
        assert!(top_k_f32(&x, 1, 6, 1, 7, true, Some(&mut v), None).is_err());
    }
}
