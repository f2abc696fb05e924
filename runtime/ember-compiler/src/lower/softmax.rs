//! `Softmax` over any axis (float, or int8 in the QDQ pattern), and
//! `LogSoftmax` and `Hardmax` (float). The kernel
//! normalizes the physical last axis: the compiler brings the softmax axis
//! there by a layout change (opset 13 on), or flattens the input to 2-D the
//! way opsets 1–12 define the operator.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::softmax::softmax_params_s8;
use ember_runtime::ops::softmax;
use ember_runtime::{DType, Rounding};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, axis_of, unsupported};
use super::layout::{identity, permuted};
use super::{Act, Lowerer, Val};
use crate::error::Result;

impl Lowerer<'_> {
    pub(super) fn lower_softmax(&mut self, node: &NodeProto) -> Result<()> {
        let rank = self.input_rank(node, 0).unwrap_or(0);
        let legacy = self.opset < 13;
        let axis = axis_of(
            node,
            attr_i(node, "axis", if legacy { 1 } else { -1 }),
            rank,
        )?;
        // Opsets 1–12 normalize over all axes from `axis` on, as one.
        self.lower_softmax_on(node, axis, legacy && axis + 1 != rank)
    }

    /// Softmax (or LogSoftmax, Hardmax: by `node.op_type`) over `axis`, or
    /// over every axis from `axis` on when `flatten`.
    pub(super) fn lower_softmax_on(
        &mut self,
        node: &NodeProto,
        axis: usize,
        flatten: bool,
    ) -> Result<()> {
        let out = Self::out_name(node);
        let xv = self.req_input(node, 0)?;
        let shape = match &xv {
            Val::Act(a) | Val::DqAct { src: a, .. } => a.shape.clone(),
            _ => return Err(unsupported(node, "softmax of a constant")),
        };
        let opcode = match node.op_type.as_str() {
            "LogSoftmax" => OpCode::LogSoftmax,
            "Hardmax" => OpCode::Hardmax,
            _ => OpCode::Softmax,
        };
        let tail = match &xv {
            Val::DqAct { .. } if opcode == OpCode::Softmax => self
                .match_qtail(&out)
                .filter(|t| t.act.lo == f32::NEG_INFINITY && t.act.hi == f32::INFINITY),
            _ => None,
        };
        if let (Val::DqAct { src, scale, zp }, Some(tail)) = (&xv, tail) {
            let ok_tflite = tail.scale == 1.0 / 256.0 && tail.zp == -128;
            if self.rounding == Rounding::OnnxFloat || ok_tflite {
                self.mark(&tail.nodes);
                let x = self.softmax_view(src.clone(), axis, flatten, &node.name)?;
                self.g.set_quant(x.t, Some((*scale, *zp)));
                let fixed = (self.rounding == Rounding::TfliteFixedPoint).then(|| {
                    let (m, s, d) = softmax_params_s8(*scale, 1.0);
                    softmax::Fixed {
                        input_left_shift: s,
                        diff_min: d,
                        input_multiplier: m,
                    }
                });
                let params = softmax::Params { beta: 1.0, fixed };
                let y = self.g.activation(
                    &tail.out_name,
                    DType::I8,
                    permuted(&x.shape, &x.perm),
                    Some((tail.scale, tail.zp)),
                );
                self.g
                    .push(OpCode::Softmax, vec![Some(x.t)], y, &params, &node.name);
                let y = self.softmax_unview(Act { t: y, ..x }, &shape, flatten, &node.name)?;
                self.vals.insert(tail.out_name, Val::Act(y));
                return Ok(());
            }
        }
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let x = self.softmax_view(x, axis, flatten, &node.name)?;
        let y = self
            .g
            .activation(&out, DType::F32, permuted(&x.shape, &x.perm), None);
        self.g.push(
            opcode,
            vec![Some(x.t)],
            y,
            &softmax::Params {
                beta: 1.0,
                fixed: None,
            },
            &node.name,
        );
        let y = self.softmax_unview(Act { t: y, ..x }, &shape, flatten, &node.name)?;
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    /// `x` laid out so that the softmax axis is the physical last one: a
    /// 2-D `[outer, inner]` view when `flatten`, else a layout with `axis`
    /// innermost (free when it already is).
    fn softmax_view(&mut self, x: Act, axis: usize, flatten: bool, name: &str) -> Result<Act> {
        if flatten {
            let outer = x.shape[..axis].iter().product();
            let inner = x.shape[axis..].iter().product();
            return self.reshape_act(x, vec![outer, inner], name);
        }
        let mut want: Vec<usize> = identity(x.shape.len())
            .into_iter()
            .filter(|&d| d != axis)
            .collect();
        want.push(axis);
        Ok(self.in_layout(x, &want, name))
    }

    /// The softmax result `y` (laid out as [`Self::softmax_view`] made it)
    /// seen with the operator's output shape.
    fn softmax_unview(
        &mut self,
        y: Act,
        shape: &[usize],
        flatten: bool,
        name: &str,
    ) -> Result<Act> {
        if flatten {
            self.reshape_act(y, shape.to_vec(), name)
        } else {
            Ok(y)
        }
    }
}
