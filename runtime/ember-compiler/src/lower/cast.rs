//! `Cast`, and the operators that only name values: `Constant`,
//! `Identity`, `Dropout` (inference: its input).

use ember_runtime::format::OpCode;
use ember_runtime::kernels::half::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use ember_runtime::ops::cast;
use ember_runtime::DType;
use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr, attr_i, unsupported};
use super::fold::{bools, f64_array};
use super::layout::permuted;
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::{from_proto, onnx_type_name, HostTensor};

impl Lowerer<'_> {
    pub(super) fn lower_constant(&mut self, node: &NodeProto) -> Result<()> {
        let scalar = IxDyn(&[]);
        let out = Self::out_name(node);
        let t = if let Some(t) = attr(node, "value").and_then(|a| a.t.as_ref()) {
            self.elem_types.insert(out.clone(), t.data_type);
            from_proto(t)?
        } else if let Some(a) = attr(node, "value_float") {
            HostTensor::F32(ArrayD::from_elem(scalar, a.f))
        } else if let Some(a) = attr(node, "value_int") {
            HostTensor::I64(ArrayD::from_elem(scalar, a.i))
        } else if let Some(a) = attr(node, "value_floats") {
            HostTensor::F32(
                ArrayD::from_shape_vec(IxDyn(&[a.floats.len()]), a.floats.clone())
                    .map_err(|e| malformed(e.to_string()))?,
            )
        } else if let Some(a) = attr(node, "value_ints") {
            HostTensor::I64(
                ArrayD::from_shape_vec(IxDyn(&[a.ints.len()]), a.ints.clone())
                    .map_err(|e| malformed(e.to_string()))?,
            )
        } else {
            let form = node.attribute.first().map_or("none", |a| a.name.as_str());
            return Err(unsupported(
                node,
                format!("value form '{form}' (value, value_float(s), value_int(s) are supported)"),
            ));
        };
        let ty = match &t {
            HostTensor::F32(_) => 1,
            HostTensor::I64(_) => 7,
            HostTensor::I32(_) => 6,
            HostTensor::I8(_) => 3,
            HostTensor::U8(_) => 2,
        };
        self.elem_types.entry(out).or_insert(ty);
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

    /// `CastLike`: a Cast to the element type of its second input.
    pub(super) fn lower_cast_like(&mut self, node: &NodeProto) -> Result<()> {
        let like = node
            .input
            .get(1)
            .ok_or_else(|| malformed(format!("node '{}': CastLike needs two inputs", node.name)))?;
        self.req_input(node, 1)?;
        let to = self
            .elem_type(like)
            .ok_or_else(|| unsupported(node, format!("the element type of '{like}' is unknown")))?;
        let mut cast = node.clone();
        cast.op_type = "Cast".into();
        cast.input.truncate(1);
        cast.attribute.retain(|a| a.name == "saturate");
        cast.attribute.push(tract_onnx::pb::AttributeProto {
            name: "to".into(),
            i: to as i64,
            r#type: 2, // INT
            ..Default::default()
        });
        self.lower_cast_node(&cast)
    }

    /// `Cast`: of runtime tensors and to bool first, then of constants.
    pub(super) fn lower_cast_node(&mut self, node: &NodeProto) -> Result<()> {
        if let Some(o) = node.output.first() {
            self.elem_types
                .insert(o.clone(), attr_i(node, "to", 1) as i32);
        }
        if self.lower_cast(node)? {
            return Ok(());
        }
        let to = attr_i(node, "to", 1);
        match self.req_input(node, 0)? {
            Val::Const(c) => {
                let wrap = |c: &HostTensor, f: fn(f64) -> f64| -> Result<HostTensor> {
                    c.map_layout(|a| Ok(a.mapv(|v| f(v.trunc()))))
                };
                let t = match to {
                    1 | 11 => HostTensor::F32(c.to_f32_array()),
                    10 => HostTensor::F32(c.to_f32_array().mapv(|v| f16_to_f32(f32_to_f16(v)))),
                    17..=20 => {
                        let f = runtime_dtype_of(to as i32)
                            .and_then(DType::f8)
                            .ok_or_else(|| unsupported(node, "an 8-bit float type"))?;
                        let sat = attr_i(node, "saturate", 1) != 0;
                        HostTensor::F32(c.to_f32_array().mapv(|v| f.to_f32(f.from_f32(v, sat))))
                    }
                    16 => HostTensor::F32(c.to_f32_array().mapv(|v| bf16_to_f32(f32_to_bf16(v)))),
                    7 | 6 => c.map_layout(Ok)?.to_i64_tensor(),
                    5 => wrap(&c.to_i64_tensor(), |v| v as i64 as i16 as f64)?,
                    4 => wrap(&c.to_i64_tensor(), |v| v as i64 as u16 as f64)?,
                    3 => HostTensor::I8(c.to_f32_array().mapv(|v| v as i64 as i8)),
                    2 => HostTensor::U8(c.to_f32_array().mapv(|v| v as i64 as u8)),
                    _ => {
                        return Err(unsupported(
                            node,
                            format!(
                                "Cast of a constant to {} (type {to})",
                                onnx_type_name(to as i32)
                            ),
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
            9 => (DType::U8, true),
            other => (
                runtime_dtype_of(other as i32).ok_or_else(|| {
                    unsupported(
                        node,
                        format!(
                            "Cast to {} (type {other}) is not supported",
                            onnx_type_name(other as i32)
                        ),
                    )
                })?,
                false,
            ),
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
            &cast::Params {
                to_bool,
                saturate: attr_i(node, "saturate", 1) != 0,
            },
            &node.name,
        );
        self.vals.insert(out, Val::Act(Act { t: y, ..a }));
        Ok(true)
    }
}

/// The runtime dtype that carries ONNX element type `t`: double runs as
/// float and int64 as int32 (see the graph inputs); `None` for the types
/// Ember has no runtime form of.
pub(super) fn runtime_dtype_of(t: i32) -> Option<DType> {
    Some(match t {
        1 | 11 => DType::F32,
        2 | 9 => DType::U8,
        3 => DType::I8,
        4 => DType::U16,
        5 => DType::I16,
        6 | 7 => DType::I32,
        10 => DType::F16,
        16 => DType::BF16,
        17 => DType::F8E4M3Fn,
        18 => DType::F8E4M3FnUz,
        19 => DType::F8E5M2,
        20 => DType::F8E5M2FnUz,
        _ => return None,
    })
}

impl Lowerer<'_> {
    /// `a` converted to `dtype` by a runtime Cast named `name`.
    pub(super) fn emit_cast(&mut self, a: Act, dtype: DType, name: &str) -> Act {
        let y = self
            .g
            .activation(name, dtype, permuted(&a.shape, &a.perm), None);
        self.g.push(
            OpCode::Cast,
            vec![Some(a.t)],
            y,
            &cast::Params::NUMERIC,
            name,
        );
        Act { t: y, ..a }
    }
}
