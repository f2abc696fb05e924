//! Layouts: permutations between a value's logical (ONNX) shape and the
//! physical order of its bytes, free views (reshapes, added or removed unit
//! axes, strided matrix views) and the physical transposes inserted where
//! an op needs another layout.

use ember_runtime::format::OpCode;
use ember_runtime::ops::{transpose, PerAxis};
use tract_onnx::pb::NodeProto;

use super::attrs::unsupported;
use super::{Act, Lowerer};
use crate::error::Result;

pub(super) fn identity(n: usize) -> Vec<usize> {
    (0..n).collect()
}

pub(super) fn inverse(p: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; p.len()];
    for (i, &v) in p.iter().enumerate() {
        inv[v] = i;
    }
    inv
}

pub(super) fn permuted(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    perm.iter().map(|&p| shape[p]).collect()
}

pub(super) const NHWC: [usize; 4] = [0, 2, 3, 1];

/// Element strides of a logical dimension of `a`.
fn logical_strides(a: &Act) -> Vec<usize> {
    let phys = permuted(&a.shape, &a.perm);
    let mut ps = vec![0usize; phys.len()];
    let mut acc = 1;
    for i in (0..phys.len()).rev() {
        ps[i] = acc;
        acc *= phys[i];
    }
    let inv = inverse(&a.perm);
    (0..a.shape.len()).map(|d| ps[inv[d]]).collect()
}

/// `(batch, rows, cols)` extents and strides of `a` seen as `[..batch, rows,
/// cols]` broadcast to `target` (same rank; stride 0 along broadcast
/// axes), if the batch axes collapse into one stride.
pub(super) fn view3(a: &Act, target: &[usize]) -> Option<([usize; 3], [usize; 3])> {
    let r = target.len();
    if a.shape.len() != r || r < 2 {
        return None;
    }
    let st = logical_strides(a);
    let s: Vec<usize> = (0..r)
        .map(|d| {
            if a.shape[d] == 1 && target[d] != 1 {
                0
            } else {
                st[d]
            }
        })
        .collect();
    if (0..r).any(|d| a.shape[d] != target[d] && a.shape[d] != 1) {
        return None;
    }
    // Collapse the batch axes (those of extent 1 do not matter).
    let mut bs: Option<usize> = None;
    let mut prev: Option<(usize, usize)> = None; // (stride, extent) of the inner batch axis
    for d in (0..r - 2).rev() {
        if target[d] == 1 {
            continue;
        }
        match prev {
            None => bs = Some(s[d]),
            Some((ps, pe)) => {
                if s[d] != ps * pe {
                    return None;
                }
            }
        }
        prev = Some((s[d], target[d]));
    }
    let batch = target[..r - 2].iter().product();
    Some((
        [batch, target[r - 2], target[r - 1]],
        [bs.unwrap_or(0), s[r - 2], s[r - 1]],
    ))
}

impl Lowerer<'_> {
    /// Returns `a` with layout `want`, inserting a physical transpose if needed.
    pub(super) fn in_layout(&mut self, a: Act, want: &[usize], name: &str) -> Act {
        if a.perm == want {
            return a;
        }
        let src = self.g.tensors[a.t].clone();
        let inv = inverse(&a.perm);
        let non_unit = |p: &[usize]| -> Vec<usize> {
            p.iter().copied().filter(|&d| a.shape[d] != 1).collect()
        };
        if non_unit(&a.perm) == non_unit(want) {
            // Same bytes in the wanted order: a free view.
            let t = self
                .g
                .alias(a.t, &format!("{name}.view"), permuted(&a.shape, want));
            return Act {
                t,
                shape: a.shape,
                perm: want.to_vec(),
            };
        }
        let tperm: Vec<usize> = want.iter().map(|&w| inv[w]).collect();
        let t = self.g.activation(
            &format!("{name}.transposed"),
            src.dtype,
            permuted(&a.shape, want),
            src.quant,
        );
        self.g.push(
            OpCode::Transpose,
            vec![Some(a.t)],
            t,
            &transpose::Params {
                perm: PerAxis::new(&tperm),
            },
            name,
        );
        Act {
            t,
            shape: a.shape,
            perm: want.to_vec(),
        }
    }

    pub(super) fn in_rowmajor(&mut self, a: Act, name: &str) -> Result<Act> {
        let n = a.shape.len();
        Ok(self.in_layout(a, &identity(n), name))
    }

    /// Takes a 4-D logical NCHW activation into NHWC.
    pub(super) fn nhwc(&mut self, a: Act, node: &NodeProto) -> Result<Act> {
        if a.shape.len() != 4 {
            return Err(unsupported(
                node,
                format!(
                    "input of rank {} (only 2-D convolution/pooling on NCHW is supported)",
                    a.shape.len()
                ),
            ));
        }
        Ok(self.in_layout(a, &NHWC, &node.name))
    }

    pub(super) fn reshape_act(&mut self, a: Act, shape: Vec<usize>, name: &str) -> Result<Act> {
        let a = self.in_rowmajor(a, name)?;
        let t = self.g.alias(a.t, name, shape.clone());
        let perm = identity(shape.len());
        Ok(Act { t, shape, perm })
    }

    /// Inserts a logical axis of extent 1 at `axis` (free: a view).
    pub(super) fn unsqueeze_act(&mut self, a: Act, axis: usize, name: &str) -> Act {
        let mut shape = a.shape.clone();
        shape.insert(axis, 1);
        let mut perm: Vec<usize> = a
            .perm
            .iter()
            .map(|&p| if p >= axis { p + 1 } else { p })
            .collect();
        perm.push(axis);
        let t = self.g.alias(a.t, name, permuted(&shape, &perm));
        Act { t, shape, perm }
    }

    /// Removes the logical axis `axis` of extent 1 (free: a view).
    pub(super) fn squeeze_act(&mut self, a: Act, axis: usize, name: &str) -> Act {
        let mut shape = a.shape.clone();
        shape.remove(axis);
        let perm: Vec<usize> = a
            .perm
            .iter()
            .filter(|&&p| p != axis)
            .map(|&p| if p > axis { p - 1 } else { p })
            .collect();
        let t = self.g.alias(a.t, name, permuted(&shape, &perm));
        Act { t, shape, perm }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_perm() {
        assert_eq!(inverse(&[0, 2, 3, 1]), vec![0, 3, 1, 2]);
    }
}
