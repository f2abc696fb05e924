//! `Softmax` over the last axis (float, or int8 in the QDQ pattern).

use ember_runtime::format::OpCode;
use ember_runtime::kernels::softmax::softmax_params_s8;
use ember_runtime::ops::softmax;
use ember_runtime::{DType, Rounding};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, unsupported};
use super::{Act, Lowerer, Val};
use crate::error::Result;

impl Lowerer<'_> {
    pub(super) fn lower_softmax(&mut self, node: &NodeProto) -> Result<()> {
        let out = Self::out_name(node);
        let xv = self.req_input(node, 0)?;
        let shape = match &xv {
            Val::Act(a) | Val::DqAct { src: a, .. } => a.shape.clone(),
            _ => return Err(unsupported(node, "softmax of a constant")),
        };
        let rank = shape.len() as i64;
        let mut axis = attr_i(node, "axis", -1);
        if axis < 0 {
            axis += rank;
        }
        if axis != rank - 1 {
            return Err(unsupported(
                node,
                format!("softmax over axis {axis} (only the last axis is supported)"),
            ));
        }
        let tail = match &xv {
            Val::DqAct { .. } => self
                .match_qtail(&out)
                .filter(|t| t.act.lo == f32::NEG_INFINITY && t.act.hi == f32::INFINITY),
            _ => None,
        };
        if let (Val::DqAct { src, scale, zp }, Some(tail)) = (&xv, tail) {
            let ok_tflite = tail.scale == 1.0 / 256.0 && tail.zp == -128;
            if self.rounding == Rounding::OnnxFloat || ok_tflite {
                self.mark(&tail.nodes);
                let x = self.in_rowmajor(src.clone(), &node.name)?;
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
                    x.shape.clone(),
                    Some((tail.scale, tail.zp)),
                );
                self.g
                    .push(OpCode::Softmax, vec![Some(x.t)], y, &params, &node.name);
                self.vals.insert(tail.out_name, Val::Act(Act { t: y, ..x }));
                return Ok(());
            }
        }
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let x = self.in_rowmajor(x, &node.name)?;
        let y = self.g.activation(&out, DType::F32, x.shape.clone(), None);
        self.g.push(
            OpCode::Softmax,
            vec![Some(x.t)],
            y,
            &softmax::Params {
                beta: 1.0,
                fixed: None,
            },
            &node.name,
        );
        self.vals.insert(out, Val::Act(Act { t: y, ..x }));
        Ok(())
    }
}
