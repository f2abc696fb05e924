//! `Cast`, and the operators that only name values: `Constant`,
//! `Identity`, `Dropout` (inference: its input).

use ember_runtime::format::OpCode;
use ember_runtime::ops::cast;
use ember_runtime::DType;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr, attr_i, unsupported};
use super::fold::{bools, f64_array};
use super::layout::permuted;
use super::{Act, Lowerer, Val};
use crate::error::Result;
use crate::tensor::{from_proto, HostTensor};

impl Lowerer<'_> {
    pub(super) fn lower_constant(&mut self, node: &NodeProto) -> Result<()> {
        let a = attr(node, "value")
            .and_then(|a| a.t.as_ref())
            .ok_or_else(|| unsupported(node, "only the 'value' form of Constant is supported"))?;
        let t = from_proto(a)?;
        self.set(node, 0, Val::Const(t));
        Ok(())
    }

    /// `Identity`, `Dropout`: the output is the input.
    pub(super) fn lower_identity(&mut self, node: &NodeProto) -> Result<()> {
        let v = self.req_input(node, 0)?;
        self.set(node, 0, v);
        Ok(())
    }

    /// `Dropout` at inference: its data output is its input. Training mode
    /// (a `training_mode` input that is true, or not a constant) and a used
    /// mask output are refused rather than silently ignored.
    pub(super) fn lower_dropout(&mut self, node: &NodeProto) -> Result<()> {
        if node.input.get(2).is_some_and(|s| !s.is_empty()) {
            match self.const_input(node, 2)? {
                Some(t) if t.to_f64().iter().all(|&v| v == 0.0) => {}
                Some(_) => {
                    return Err(unsupported(
                        node,
                        "training_mode=true is not supported (inference only)",
                    ))
                }
                None => {
                    return Err(unsupported(
                        node,
                        "training_mode must be a constant (inference only)",
                    ))
                }
            }
        }
        if let Some(mask) = node.output.get(1).filter(|m| !m.is_empty()) {
            if self.consumers.contains_key(mask) || self.graph_outputs.contains(mask) {
                return Err(unsupported(
                    node,
                    "the mask output is not supported (inference only)",
                ));
            }
        }
        self.lower_identity(node)
    }

    /// `Cast`: of runtime tensors and to bool first, then of constants.
    pub(super) fn lower_cast_node(&mut self, node: &NodeProto) -> Result<()> {
        if self.lower_cast(node)? {
            return Ok(());
        }
        let to = attr_i(node, "to", 1);
        match self.req_input(node, 0)? {
            Val::Const(c) => {
                let t = match to {
                    1 | 11 => HostTensor::F32(c.to_f32_array()),
                    7 | 6 => c.map_layout(Ok)?.to_i64_tensor(),
                    _ => {
                        return Err(unsupported(
                            node,
                            format!("Cast of a constant to type {to}"),
                        ))
                    }
                };
                self.set(node, 0, Val::Const(t));
            }
            Val::Act(a) if to == 1 && self.g.tensors[a.t].dtype == DType::F32 => {
                self.set(node, 0, Val::Act(a))
            }
            _ => {
                return Err(unsupported(
                    node,
                    "Cast of a runtime tensor (only float→float is a no-op)",
                ))
            }
        }
        Ok(())
    }

    /// Casts of runtime tensors and to bool; `false` leaves constant casts to
    /// [`Self::lower_cast_node`].
    fn lower_cast(&mut self, node: &NodeProto) -> Result<bool> {
        let to = attr_i(node, "to", 1);
        let x = self.req_input(node, 0)?;
        if let Val::Const(c) = &x {
            if to == 9 {
                self.set(node, 0, Val::Const(bools(f64_array(c))));
                return Ok(true);
            }
            return Ok(false);
        }
        let Val::Act(a) = x else {
            return Ok(false);
        };
        let from = self.g.tensors[a.t].dtype;
        let (dtype, to_bool) = match to {
            1 => (DType::F32, false),
            9 => (DType::U8, true),
            6 | 7 => (DType::I32, false),
            2 => (DType::U8, false),
            3 => (DType::I8, false),
            other => return Err(unsupported(node, format!("Cast to ONNX type {other}"))),
        };
        if dtype == from && !to_bool {
            self.set(node, 0, Val::Act(a));
            return Ok(true);
        }
        let out = Self::out_name(node);
        let y = self
            .g
            .activation(&out, dtype, permuted(&a.shape, &a.perm), None);
        self.g.push(
            OpCode::Cast,
            vec![Some(a.t)],
            y,
            &cast::Params { to_bool },
            &node.name,
        );
        self.vals.insert(out, Val::Act(Act { t: y, ..a }));
        Ok(true)
    }
}
