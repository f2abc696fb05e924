//! Fused scaled-dot-product attention, f32:
//!
//! `y[h, i, :] = Σ_j softmax_j(scale · (q[h, i, :] · k[h, j, :]) + mask[h, i, j]) · v[h, j, :]`
//!
//! One query row at a time: its `Sk` scores live in a scratch row, so the
//! `[heads, Sq, Sk]` score tensor of the unfused graph (54 MB for Whisper's
//! 1500 frames × 6 heads) never exists. The softmax is the reference one
//! ([`super::softmax::softmax_f32`]: subtract the row maximum, `exp`, divide
//! by the sum). Operands are [`StridedView`]s `[heads, seq, dim]`, so split
//! heads and transposed keys are read in place and the output can be
//! written straight into the `[seq, heads · dim]` order the next layer
//! wants.

use super::matmul::StridedView;
use crate::error::{Error, Result};

/// Geometry and constants of one attention op.
#[derive(Clone, Copy, Debug)]
pub struct AttentionParams {
    /// Queries `[heads, Sq, D]`.
    pub q: StridedView,
    /// Keys `[heads, Sk, D]`.
    pub k: StridedView,
    /// Values `[heads, Sk, Dv]`.
    pub v: StridedView,
    /// Output `[heads, Sq, Dv]` (a permutation of the output tensor).
    pub y: StridedView,
    /// Additive mask `[heads, Sq, Sk]` (strides 0 where it broadcasts).
    pub mask: Option<StridedView>,
    /// Factor applied to each dot product before the mask.
    pub scale: f32,
}

/// Mask values at or below this remove a key: its weight underflows to 0.
const MASKED: f32 = -1.0e30;

/// Scratch bytes the kernel needs: one row of `Sk` f32 scores and one of
/// `Dv` output sums.
pub const fn attention_f32_scratch_size(sk: usize, dv: usize) -> usize {
    (sk + dv) * 4
}

fn fits(v: &StridedView, len: usize) -> bool {
    matches!(v.span(), Some(s) if s <= len)
}

/// Σ a[i]·b[i] over strided operands; eight partial sums (lanes `i mod 8`)
/// added pairwise at the end, so contiguous operands vectorize. The order
/// is fixed, so results do not depend on the target.
#[inline]
fn dot(a: &[f32], a0: usize, sa: usize, b: &[f32], b0: usize, sb: usize, n: usize) -> f32 {
    let mut acc = [0f32; 8];
    if sa == 1 && sb == 1 {
        let (x, y) = (&a[a0..a0 + n], &b[b0..b0 + n]);
        let mut xc = x.chunks_exact(8);
        let mut yc = y.chunks_exact(8);
        for (xs, ys) in (&mut xc).zip(&mut yc) {
            for l in 0..8 {
                acc[l] += xs[l] * ys[l];
            }
        }
        for (l, (xv, yv)) in xc.remainder().iter().zip(yc.remainder()).enumerate() {
            acc[l] += xv * yv;
        }
    } else {
        for i in 0..n {
            acc[i % 8] += a[a0 + i * sa] * b[b0 + i * sb];
        }
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// Runs attention; `scratch` holds at least
/// [`attention_f32_scratch_size`]`(Sk, Dv)` bytes viewed as f32.
///
/// Order of the sums (the spec for optimized variants): each score is the
/// eight-lane `dot` of a query and a key row; each output value is
/// `Σ_j p_j · v[j, c]` accumulated over `j` in order.
pub fn attention_f32(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    p: &AttentionParams,
    scratch: &mut [f32],
    y: &mut [f32],
) -> Result<()> {
    let (heads, sq, d) = (p.q.batch, p.q.rows, p.q.cols);
    let (sk, dv) = (p.k.rows, p.v.cols);
    let shapes_ok = p.k.batch == heads
        && p.k.cols == d
        && p.v.batch == heads
        && p.v.rows == sk
        && (p.y.batch, p.y.rows, p.y.cols) == (heads, sq, dv)
        && p.mask
            .is_none_or(|m| (m.batch, m.rows, m.cols) == (heads, sq, sk));
    if !shapes_ok {
        return Err(Error::ShapeMismatch("attention: operand shapes differ"));
    }
    let views_ok = fits(&p.q, q.len())
        && fits(&p.k, k.len())
        && fits(&p.v, v.len())
        && p.y.is_permutation_of(y.len())
        && match (p.mask, mask) {
            (Some(mv), Some(m)) => fits(&mv, m.len()),
            (None, None) => true,
            _ => false,
        };
    if !views_ok {
        return Err(Error::ShapeMismatch("attention: view outside its tensor"));
    }
    if scratch.len() < sk + dv {
        return Err(Error::ShapeMismatch("attention: scratch too small"));
    }
    if sk == 0 {
        // softmax over nothing: the output is an empty sum.
        y.iter_mut().for_each(|o| *o = 0.0);
        return Ok(());
    }
    let (row, acc) = scratch.split_at_mut(sk);
    let acc = &mut acc[..dv];
    for h in 0..heads {
        for i in 0..sq {
            let q0 = h * p.q.s_batch + i * p.q.s_row;
            // Keys the mask removes (an additive −3.4e38, `finfo.min` as
            // exporters write it) get weight exactly 0 after the softmax
            // whatever their dot product: skip the product. Unless every
            // key is removed, the result is the same bit for bit.
            let removed = |j: usize| match (p.mask, mask) {
                (Some(mv), Some(m)) => m[h * mv.s_batch + i * mv.s_row + j * mv.s_col] <= MASKED,
                _ => false,
            };
            let skip = (0..sk).any(|j| !removed(j));
            for (j, s) in row.iter_mut().enumerate() {
                if skip && removed(j) {
                    *s = f32::NEG_INFINITY;
                    continue;
                }
                let k0 = h * p.k.s_batch + j * p.k.s_row;
                let mut v = dot(q, q0, p.q.s_col, k, k0, p.k.s_col, d) * p.scale;
                if let (Some(mv), Some(m)) = (p.mask, mask) {
                    v += m[h * mv.s_batch + i * mv.s_row + j * mv.s_col];
                }
                *s = v;
            }
            let max = row.iter().copied().fold(f32::MIN, f32::max);
            let mut sum = 0f32;
            for s in row.iter_mut() {
                *s = libm::expf(*s - max);
                sum += *s;
            }
            for s in row.iter_mut() {
                *s /= sum;
            }
            acc.iter_mut().for_each(|a| *a = 0.0);
            for (j, &pj) in row.iter().enumerate() {
                if pj == 0.0 {
                    // Adds nothing (finite values).
                    continue;
                }
                let v0 = h * p.v.s_batch + j * p.v.s_row;
                if p.v.s_col == 1 {
                    for (a, &vv) in acc.iter_mut().zip(&v[v0..v0 + dv]) {
                        *a += pj * vv;
                    }
                } else {
                    for (c, a) in acc.iter_mut().enumerate() {
                        *a += pj * v[v0 + c * p.v.s_col];
                    }
                }
            }
            let y0 = h * p.y.s_batch + i * p.y.s_row;
            for (c, &a) in acc.iter().enumerate() {
                y[y0 + c * p.y.s_col] = a;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::matmul::matmul_f32;
    use super::super::softmax::softmax_f32;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn values(seed: &mut u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((*seed >> 8) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The fused kernel against the unfused graph (MatMul, scale, mask,
    /// softmax, MatMul), with keys stored transposed and the output written
    /// heads-interleaved.
    #[test]
    fn matches_the_unfused_graph() {
        let mut seed = 7;
        for (heads, sq, sk, d, dv) in [(2, 3, 5, 4, 3), (3, 7, 7, 16, 16), (1, 1, 9, 17, 2)] {
            let q = values(&mut seed, heads * sq * d);
            let k = values(&mut seed, heads * sk * d); // stored [Sk, heads, D]
            let v = values(&mut seed, heads * sk * dv);
            let mask: Vec<f32> = (0..sk)
                .map(|j| if j % 3 == 2 { -3.0e38 } else { 0.0 })
                .collect();
            let scale = 0.3;
            // Unfused reference.
            let kt = StridedView {
                batch: heads,
                rows: d,
                cols: sk,
                s_batch: d,
                s_row: 1,
                s_col: heads * d,
            };
            let mut scores = vec![0f32; heads * sq * sk];
            matmul_f32(&q, &StridedView::dense(heads, sq, d), &k, &kt, &mut scores).unwrap();
            for (i, s) in scores.iter_mut().enumerate() {
                *s = *s * scale + mask[i % sk];
            }
            let mut probs = vec![0f32; scores.len()];
            softmax_f32(&scores, heads * sq, sk, 1.0, &mut probs).unwrap();
            let mut want = vec![0f32; heads * sq * dv];
            let vv = StridedView::dense(heads, sk, dv);
            matmul_f32(
                &probs,
                &StridedView::dense(heads, sq, sk),
                &v,
                &vv,
                &mut want,
            )
            .unwrap();
            // Fused, output as [Sq, heads, Dv].
            let p = AttentionParams {
                q: StridedView::dense(heads, sq, d),
                k: StridedView {
                    batch: heads,
                    rows: sk,
                    cols: d,
                    s_batch: d,
                    s_row: heads * d,
                    s_col: 1,
                },
                v: vv,
                y: StridedView {
                    batch: heads,
                    rows: sq,
                    cols: dv,
                    s_batch: dv,
                    s_row: heads * dv,
                    s_col: 1,
                },
                mask: Some(StridedView {
                    batch: heads,
                    rows: sq,
                    cols: sk,
                    s_batch: 0,
                    s_row: 0,
                    s_col: 1,
                }),
                scale,
            };
            let mut scratch = vec![0f32; sk + dv];
            let mut y = vec![0f32; want.len()];
            attention_f32(&q, &k, &v, Some(&mask), &p, &mut scratch, &mut y).unwrap();
            for h in 0..heads {
                for i in 0..sq {
                    for c in 0..dv {
                        let (a, b) = (y[(i * heads + h) * dv + c], want[(h * sq + i) * dv + c]);
                        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
                    }
                }
            }
        }
    }

    /// Every key masked: no key is skipped, the scores decide (as in the
    /// unfused graph, where all of them carry the same huge offset).
    #[test]
    fn fully_masked_rows_fall_back_to_the_scores() {
        let p = AttentionParams {
            q: StridedView::dense(1, 1, 2),
            k: StridedView::dense(1, 2, 2),
            v: StridedView::dense(1, 2, 1),
            y: StridedView::dense(1, 1, 1),
            mask: Some(StridedView::dense(1, 1, 2)),
            scale: 1.0,
        };
        let (q, k, v) = ([1.0f32, 0.0], [0.0f32, 0.0, 0.0, 0.0], [2.0f32, 4.0]);
        let mut y = [0f32; 1];
        let mut s = [0f32; 3];
        let m = [f32::MIN, f32::MIN];
        attention_f32(&q, &k, &v, Some(&m), &p, &mut s, &mut y).unwrap();
        assert_eq!(y, [3.0]);
    }

    #[test]
    fn bad_views_are_errors() {
        let p = AttentionParams {
            q: StridedView::dense(1, 2, 4),
            k: StridedView::dense(1, 3, 4),
            v: StridedView::dense(1, 3, 2),
            y: StridedView::dense(1, 2, 2),
            mask: None,
            scale: 1.0,
        };
        let (q, k, v) = ([0f32; 8], [0f32; 12], [0f32; 6]);
        let mut y = [0f32; 4];
        let mut s = [0f32; 5];
        assert!(attention_f32(&q, &k, &v, None, &p, &mut s, &mut y).is_ok());
        assert!(attention_f32(&q, &k[..11], &v, None, &p, &mut s, &mut y).is_err());
        assert!(attention_f32(&q, &k, &v, None, &p, &mut s[..4], &mut y).is_err());
        assert!(attention_f32(&q, &k, &v, Some(&[0.0]), &p, &mut s, &mut y).is_err());
    }
}
