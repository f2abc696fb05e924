//! `Gather` (folded for constants; quantized embedding tables gathered as
//! int8), `Slice` and `Split` (folded for constants; strided copies of
//! runtime tensors).

use ember_runtime::format::OpCode;
use ember_runtime::format::MAX_RANK;
use ember_runtime::ops::{gather, slice, PerAxis};
use ember_runtime::DType;
use ndarray::{Axis, IxDyn};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, attr_ints, axis_of, unsupported};
use super::fold::{f64_array, like_dtype, runtime_dtype};
use super::layout::{identity, permuted};
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;

impl Lowerer<'_> {
    pub(super) fn lower_gather(&mut self, node: &NodeProto) -> Result<()> {
        let data = self.req_input(node, 0)?;
        let idx = self.req_input(node, 1)?;
        let rank = self.input_rank(node, 0).unwrap_or(0);
        let axis = axis_of(node, attr_i(node, "axis", 0), rank)?;
        if let (Val::Const(d), Val::Const(ix)) = (&data, &idx) {
            let n = d.shape()[axis] as i64;
            let ids: Vec<usize> = ix
                .to_i64()
                .iter()
                .map(|&v| {
                    let j = if v < 0 { v + n } else { v };
                    if j < 0 || j >= n {
                        Err(malformed(format!(
                            "node '{}': index {v} out of range",
                            node.name
                        )))
                    } else {
                        Ok(j as usize)
                    }
                })
                .collect::<Result<_>>()?;
            let mut shape = d.shape()[..axis].to_vec();
            shape.extend_from_slice(ix.shape());
            shape.extend_from_slice(&d.shape()[axis + 1..]);
            let r = d.map_layout(|a| {
                a.select(Axis(axis), &ids)
                    .into_shape_with_order(IxDyn(&shape))
                    .map_err(|e| malformed(e.to_string()))
            })?;
            self.set(node, 0, Val::Const(r));
            return Ok(());
        }
        // A per-tensor dequantized table stays quantized in flash (4× smaller):
        // gather the integers, dequantize the rows gathered.
        let mut dq_after = None;
        let table = match data {
            Val::Const(c) => {
                let dt = runtime_dtype(&c);
                self.const_act(node, &c, dt, "table")
            }
            Val::DqConst {
                q: q @ (HostTensor::I8(_) | HostTensor::U8(_)),
                scale,
                zp,
                ..
            } if scale.len() == 1 => {
                let dt = runtime_dtype(&q);
                let a = self.const_act(node, &q, dt, "table");
                self.g.set_quant(a.t, Some((scale[0], zp[0] as i32)));
                dq_after = Some((scale[0], zp[0] as i32));
                a
            }
            Val::DqConst { .. } => self.runtime_operand(node, 0, None)?,
            Val::Act(a) => self.in_rowmajor(a, &node.name)?,
            Val::DqAct { .. } => {
                let a = self.float_act(&node.input[0], "Gather")?;
                self.in_rowmajor(a, &node.name)?
            }
        };
        let ix = self.runtime_operand(node, 1, Some(DType::I32))?;
        if self.g.tensors[ix.t].dtype != DType::I32 {
            return Err(unsupported(node, "indices must be integers"));
        }
        let mut shape = table.shape[..axis].to_vec();
        shape.extend_from_slice(&ix.shape);
        shape.extend_from_slice(&table.shape[axis + 1..]);
        let out = Self::out_name(node);
        let dt = self.g.tensors[table.t].dtype;
        let q = self.g.tensors[table.t].quant;
        let y = self.g.activation(&out, dt, shape.clone(), q);
        self.g.push(
            OpCode::Gather,
            vec![Some(table.t), Some(ix.t)],
            y,
            &gather::Params { axis },
            &node.name,
        );
        let a = Act {
            t: y,
            perm: identity(shape.len()),
            shape,
        };
        let v = match dq_after {
            Some((scale, zp)) => Val::DqAct { src: a, scale, zp },
            None => Val::Act(a),
        };
        self.vals.insert(out, v);
        Ok(())
    }

    /// `Slice`: folded for constants; a strided copy of a runtime tensor
    /// (int8 data stays int8), in its physical layout.
    pub(super) fn lower_slice(&mut self, node: &NodeProto) -> Result<()> {
        let data = self.req_input(node, 0)?;
        let shape = data.shape().to_vec();
        let rank = shape.len();
        let get = |s: &Self, i: usize| -> Result<Option<Vec<i64>>> {
            Ok(s.const_input(node, i)?.map(|c| c.to_i64()))
        };
        // Opset 1–9 carry the bounds as attributes.
        let legacy = attr_ints(node, "starts").is_some();
        let (starts, ends, axes, steps) = if legacy {
            let starts = attr_ints(node, "starts").unwrap_or_default();
            let ends = attr_ints(node, "ends")
                .ok_or_else(|| malformed(format!("node '{}': no ends", node.name)))?;
            let axes = attr_ints(node, "axes");
            (starts, ends, axes, None)
        } else {
            let need = |s: &Self, i: usize, what: &str| -> Result<Vec<i64>> {
                get(s, i)?.ok_or_else(|| unsupported(node, format!("{what} must be constant")))
            };
            let starts = need(self, 1, "starts")?;
            let ends = need(self, 2, "ends")?;
            let axes = match node.input.get(3).filter(|n| !n.is_empty()) {
                Some(_) => Some(need(self, 3, "axes")?),
                None => None,
            };
            let steps = match node.input.get(4).filter(|n| !n.is_empty()) {
                Some(_) => Some(need(self, 4, "steps")?),
                None => None,
            };
            (starts, ends, axes, steps)
        };
        let k = starts.len();
        let axes = axes.unwrap_or_else(|| (0..k as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; k]);
        if ends.len() != k || axes.len() != k || steps.len() != k {
            return Err(malformed(format!(
                "node '{}': starts, ends, axes and steps differ in length",
                node.name
            )));
        }
        let mut ranges: Vec<AxisSlice> = shape.iter().map(|&n| AxisSlice::whole(n)).collect();
        let mut seen = vec![false; rank];
        for i in 0..k {
            let ax = axis_of(node, axes[i], rank)?;
            if std::mem::replace(&mut seen[ax], true) {
                return Err(malformed(format!(
                    "node '{}': axis {ax} sliced twice",
                    node.name
                )));
            }
            ranges[ax] = AxisSlice::onnx(shape[ax], starts[i], ends[i], steps[i])
                .ok_or_else(|| malformed(format!("node '{}': a slice step is 0", node.name)))?;
        }
        self.emit_slice(node, data, &ranges, &Self::out_name(node))
    }

    /// `Split`: one slice per output along `axis` (sizes from the `split`
    /// input or attribute, else equal parts, the last one smaller when
    /// `num_outputs` does not divide the axis).
    pub(super) fn lower_split(&mut self, node: &NodeProto) -> Result<()> {
        let data = self.req_input(node, 0)?;
        let shape = data.shape().to_vec();
        let axis = axis_of(node, attr_i(node, "axis", 0), shape.len())?;
        let n = shape[axis];
        let outs = node.output.len();
        let sizes: Vec<i64> = match (self.const_input(node, 1)?, attr_ints(node, "split")) {
            (Some(c), _) => c.to_i64(),
            (None, _) if node.input.get(1).is_some_and(|s| !s.is_empty()) => {
                return Err(unsupported(node, "split sizes must be constant"))
            }
            (None, Some(a)) => a,
            (None, None) => {
                let parts = attr_i(node, "num_outputs", outs as i64);
                if parts != outs as i64 || outs == 0 {
                    return Err(malformed(format!(
                        "node '{}': num_outputs {parts} but {outs} outputs",
                        node.name
                    )));
                }
                let parts = outs;
                let each = n.div_ceil(parts);
                (0..parts)
                    .map(|i| (n.saturating_sub(i * each)).min(each) as i64)
                    .collect()
            }
        };
        if sizes.len() != outs
            || sizes.iter().any(|&s| s < 0)
            || sizes.iter().map(|&s| i128::from(s)).sum::<i128>() != n as i128
        {
            return Err(malformed(format!(
                "node '{}': split sizes {sizes:?} do not divide axis {axis} of extent {n} into {outs} outputs",
                node.name
            )));
        }
        let mut off = 0usize;
        for (i, &len) in sizes.iter().enumerate() {
            let len = len as usize;
            let mut ranges: Vec<AxisSlice> = shape.iter().map(|&d| AxisSlice::whole(d)).collect();
            ranges[axis] = AxisSlice {
                start: off,
                step: 1,
                len,
            };
            off += len;
            if node.output[i].is_empty() {
                continue;
            }
            self.emit_slice(node, data.clone(), &ranges, &node.output[i])?;
        }
        Ok(())
    }

    /// Binds `name` to the slice `ranges` of `data`: folded for constants,
    /// the value itself when the slice takes everything, else a
    /// [`OpCode::Slice`] over the physical layout.
    pub(super) fn emit_slice(
        &mut self,
        node: &NodeProto,
        data: Val,
        ranges: &[AxisSlice],
        name: &str,
    ) -> Result<()> {
        if ranges.iter().any(|r| r.len == 0) {
            return Err(unsupported(
                node,
                "a slice with no elements (empty tensors are not supported)",
            ));
        }
        let whole = ranges
            .iter()
            .zip(&data.shape().to_vec())
            .all(|(r, &n)| r.start == 0 && r.step == 1 && r.len == n);
        if whole {
            self.vals.insert(name.to_string(), data);
            return Ok(());
        }
        let (x, quant) = match data {
            Val::Const(c) => {
                let mut a = f64_array(&c);
                for (ax, r) in ranges.iter().enumerate() {
                    let idx: Vec<usize> = (0..r.len)
                        .map(|i| (r.start as i64 + i as i64 * r.step) as usize)
                        .collect();
                    a = a.select(Axis(ax), &idx);
                }
                self.vals
                    .insert(name.to_string(), Val::Const(like_dtype(&c, a)));
                return Ok(());
            }
            Val::DqConst { .. } => {
                let c = self
                    .const_input(node, 0)?
                    .ok_or_else(|| unsupported(node, "slice of a per-axis dequantized constant"))?;
                return self.emit_slice(node, Val::Const(c), ranges, name);
            }
            Val::Act(a) => (a, None),
            Val::DqAct { src, scale, zp } => (src, Some((scale, zp))),
        };
        if quant.is_some() {
            self.g.set_quant(x.t, quant);
        }
        if x.perm.len() > MAX_RANK {
            return Err(unsupported(
                node,
                format!(
                    "a slice of rank {} (Ember supports at most {MAX_RANK} dimensions)",
                    x.perm.len()
                ),
            ));
        }
        let src = self.g.tensors[x.t].clone();
        // The kernel walks the physical layout: physical axis j is logical
        // axis perm[j].
        let start: Vec<usize> = x.perm.iter().map(|&d| ranges[d].start).collect();
        let mut step = [0i32; MAX_RANK];
        for (j, &d) in x.perm.iter().enumerate() {
            step[j] = i32::try_from(ranges[d].step)
                .map_err(|_| unsupported(node, "a slice step beyond the int32 range"))?;
        }
        let shape: Vec<usize> = ranges.iter().map(|r| r.len).collect();
        let y = self
            .g
            .activation(name, src.dtype, permuted(&shape, &x.perm), src.quant);
        self.g.push(
            OpCode::Slice,
            vec![Some(x.t)],
            y,
            &slice::Params {
                start: PerAxis::new(&start),
                step,
            },
            &node.name,
        );
        let a = Act {
            t: y,
            shape,
            perm: x.perm,
        };
        let v = match quant {
            Some((scale, zp)) => Val::DqAct { src: a, scale, zp },
            None => Val::Act(a),
        };
        self.vals.insert(name.to_string(), v);
        Ok(())
    }
}

/// The elements one axis of a slice takes: `start + i·step` for `i <
/// len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AxisSlice {
    start: usize,
    step: i64,
    len: usize,
}

impl AxisSlice {
    /// All of an axis of extent `n`.
    pub(super) fn whole(n: usize) -> AxisSlice {
        AxisSlice::run(0, n)
    }

    /// `len` consecutive elements from `start`.
    pub(super) fn run(start: usize, len: usize) -> AxisSlice {
        AxisSlice {
            start,
            step: 1,
            len,
        }
    }

    /// ONNX `Slice` bounds on an axis of extent `n`: negative starts and
    /// ends count from the end, both are clamped (to `[0, n]` for positive
    /// steps, `[-1, n-1]` for negative ones); `None` for a zero step.
    fn onnx(n: usize, start: i64, end: i64, step: i64) -> Option<AxisSlice> {
        if step == 0 {
            return None;
        }
        let n = n as i64;
        let from_end = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
        let (s, e) = (from_end(start), from_end(end));
        let (s, len) = if step > 0 {
            let (s, e) = (s.clamp(0, n), e.clamp(0, n));
            (s, if e > s { (e - s - 1) / step + 1 } else { 0 })
        } else {
            let (s, e) = (s.clamp(-1, n - 1), e.clamp(-1, n - 1));
            (s, if s > e { (s - e - 1) / -step + 1 } else { 0 })
        };
        Some(AxisSlice {
            start: s.max(0) as usize,
            step,
            len: len as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::AxisSlice;

    fn take(n: usize, s: i64, e: i64, st: i64) -> Vec<i64> {
        let a = AxisSlice::onnx(n, s, e, st).unwrap();
        (0..a.len as i64)
            .map(|i| a.start as i64 + i * a.step)
            .collect()
    }

    #[test]
    fn onnx_slice_bounds_match_python() {
        // Python's range semantics on list(range(10))[s:e:st].
        assert_eq!(take(10, 1, 1000, 1), (1..10).collect::<Vec<_>>());
        assert_eq!(take(10, -3, i64::MAX, 1), vec![7, 8, 9]);
        assert_eq!(take(10, 0, 10, 3), vec![0, 3, 6, 9]);
        assert_eq!(
            take(10, -1, i64::MIN, -1),
            (0..10).rev().collect::<Vec<_>>()
        );
        assert_eq!(take(10, 20, 0, -3), vec![9, 6, 3]);
        assert_eq!(take(10, 5, 5, 1), Vec::<i64>::new());
        assert_eq!(take(10, 2, 8, -1), Vec::<i64>::new());
        assert!(AxisSlice::onnx(10, 0, 1, 0).is_none());
    }
}
