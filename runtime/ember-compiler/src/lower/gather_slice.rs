//! `Gather` (folded for constants; quantized embedding tables gathered as
//! int8) and `Slice` (of constants, folded).

use ember_runtime::format::OpCode;
use ember_runtime::ops::gather;
use ember_runtime::DType;
use ndarray::{Axis, IxDyn};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, axis_of, unsupported};
use super::fold::{f64_array, like_dtype, runtime_dtype};
use super::layout::identity;
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

    pub(super) fn fold_slice(&mut self, node: &NodeProto) -> Result<()> {
        let data = self
            .const_input(node, 0)?
            .ok_or_else(|| unsupported(node, "Slice of a runtime tensor"))?;
        let get = |s: &Self, i: usize| -> Result<Option<Vec<i64>>> {
            Ok(s.const_input(node, i)?.map(|c| c.to_i64()))
        };
        let starts = get(self, 1)?.ok_or_else(|| unsupported(node, "starts must be constant"))?;
        let ends = get(self, 2)?.ok_or_else(|| unsupported(node, "ends must be constant"))?;
        let rank = data.shape().len();
        let axes = get(self, 3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = get(self, 4)?.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(malformed(format!(
                "node '{}': starts, ends, axes and steps differ in length",
                node.name
            )));
        }
        let mut a = f64_array(&data);
        for (k, &ax) in axes.iter().enumerate() {
            let ax = axis_of(node, ax, rank)?;
            let n = a.shape()[ax] as i64;
            let step = steps[k];
            if step != 1 {
                return Err(unsupported(node, "steps other than 1"));
            }
            let clamp = |v: i64| (if v < 0 { v + n } else { v }).clamp(0, n);
            let (s, e) = (clamp(starts[k]), clamp(ends[k]));
            let idx: Vec<usize> = (s..e.max(s)).map(|v| v as usize).collect();
            a = a.select(Axis(ax), &idx);
        }
        self.set(node, 0, Val::Const(like_dtype(&data, a)));
        Ok(())
    }
}
