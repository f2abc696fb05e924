//! `QuantizeLinear` and `DequantizeLinear`: dequantized values kept
//! symbolic until a float consumer needs them, quantized constants, and
//! the requantization constants of integer ops.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::quant::quantize_multiplier;
use ember_runtime::ops::NoParams;
use ember_runtime::{DType, Rounding};
use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, step, unsupported};
use super::{Act, Lowerer, Val};
use crate::error::{malformed, CompileError, Result};
use crate::ir::TId;
use crate::tensor::HostTensor;

impl Lowerer<'_> {
    /// `(x − zero) · scale` of a float activation, bound to `node`'s
    /// output.
    fn float_affine(&mut self, node: &NodeProto, x: Act, zero: f32, scale: f32) -> Result<()> {
        let out = Self::out_name(node);
        let (xn, zn, sn, d) = (
            format!("{out}.x"),
            format!("{out}.zero"),
            format!("{out}.scale"),
            format!("{out}.centered"),
        );
        let x = if self.g.tensors[x.t].dtype == DType::F32 {
            x
        } else {
            self.emit_cast(x, DType::F32, &format!("{out}.f32"))
        };
        self.vals.insert(xn.clone(), Val::Act(x));
        let c = |v: f32| Val::Const(HostTensor::F32(ndarray::arr0(v).into_dyn()));
        self.vals.insert(zn.clone(), c(zero));
        self.vals.insert(sn.clone(), c(scale));
        let centered = if zero != 0.0 {
            self.lower_binary(0, &step(node, "Sub", &[xn, zn], &d))?;
            d
        } else {
            xn
        };
        self.lower_binary(0, &step(node, "Mul", &[centered, sn], &out))
    }

    pub(super) fn lower_dequantize(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.req_input(node, 0)?;
        let scale = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "scale must be a constant"))?;
        let zp = match self.input_val(node, 2)? {
            Some(Val::Const(c)) => Some(c),
            None => None,
            Some(_) => return Err(unsupported(node, "zero point must be a constant")),
        };
        let scales: Vec<f32> = scale.to_f64().iter().map(|&v| v as f32).collect();
        for &s in &scales {
            super::fusion::check_scale(node, s)?;
        }
        let zps: Vec<i64> = zp
            .as_ref()
            .map(|z| z.to_i64())
            .unwrap_or_else(|| vec![0; scales.len()]);
        if zps.len() != scales.len() {
            return Err(malformed(format!(
                "node '{}': scale and zero point lengths differ",
                node.name
            )));
        }
        let v = match x {
            Val::Const(q) => {
                let rank = q.shape().len() as i64;
                let mut axis = attr_i(node, "axis", 1);
                if axis < 0 {
                    axis += rank;
                }
                if scales.len() > 1
                    && (axis < 0 || axis >= rank || q.shape()[axis as usize] != scales.len())
                {
                    return Err(malformed(format!(
                        "node '{}': per-axis scale does not match axis {axis}",
                        node.name
                    )));
                }
                Val::DqConst {
                    q,
                    scale: scales,
                    zp: zps,
                    axis: axis.max(0) as usize,
                }
            }
            Val::Act(a) => {
                if scales.len() != 1 {
                    return Err(unsupported(node, "per-axis dequantization of activations"));
                }
                let dt = self.g.tensors[a.t].dtype;
                if dt.is_float() {
                    // 8-bit float data (widened to f32 where it entered):
                    // (x − zero point) · scale, in f32.
                    let zf = zp.as_ref().map_or(0.0, |z| z.to_f64()[0]) as f32;
                    return self.float_affine(node, a, zf, scales[0]);
                }
                if matches!(dt, DType::U8 | DType::I32) {
                    let f = self.dequantize_now(a, scales[0], zps[0] as i32, &node.name);
                    self.set(node, 0, Val::Act(f));
                    return Ok(());
                }
                if dt != DType::I8 {
                    return Err(unsupported(
                        node,
                        format!("dequantizing {} activations", dt.name()),
                    ));
                }
                Val::DqAct {
                    src: a,
                    scale: scales[0],
                    zp: zps[0] as i32,
                }
            }
            _ => {
                return Err(unsupported(
                    node,
                    "DequantizeLinear of an already dequantized value",
                ))
            }
        };
        self.set(node, 0, v);
        Ok(())
    }

    pub(super) fn lower_quantize(&mut self, node: &NodeProto) -> Result<()> {
        // uint8 output (activations quantized to uint8 at the model's edge).
        if let (Some(Val::Const(HostTensor::U8(z))), Some(s)) =
            (self.input_val(node, 2)?, self.const_input(node, 1)?)
        {
            if z.len() != 1 || s.len() != 1 {
                return Err(unsupported(node, "per-axis uint8 quantization"));
            }
            let q = (
                s.to_f64()[0] as f32,
                z.iter().next().map(|&v| v as i32).unwrap_or(0),
            );
            let x = self.float_act(&node.input[0], "QuantizeLinear")?;
            let dims = self.g.tensors[x.t].dims.clone();
            let t = self
                .g
                .activation(&Self::out_name(node), DType::U8, dims, Some(q));
            self.g
                .push(OpCode::Quantize, vec![Some(x.t)], t, &NoParams, &node.name);
            self.set(node, 0, Val::Act(Act { t, ..x }));
            return Ok(());
        }
        let (scale, zp) = self.qparams(node)?.ok_or_else(|| {
            unsupported(
                node,
                "only per-tensor int8 QuantizeLinear with constant params",
            )
        })?;
        let name = Self::out_name(node);
        match self.req_input(node, 0)? {
            Val::Const(c) => {
                let v: Vec<i8> = c
                    .to_f64()
                    .iter()
                    .map(|&x| {
                        ((x as f32 / scale).round_ties_even() as i32 + zp).clamp(-128, 127) as i8
                    })
                    .collect();
                let a = ArrayD::from_shape_vec(IxDyn(c.shape()), v)
                    .map_err(|e| malformed(e.to_string()))?;
                self.set(node, 0, Val::Const(HostTensor::I8(a)));
            }
            Val::DqAct {
                src,
                scale: s0,
                zp: z0,
            } if s0 == scale && z0 == zp => {
                self.set(node, 0, Val::Act(src));
            }
            _ => {
                let x = self.float_act(&node.input[0], "QuantizeLinear")?;
                let dims = self.g.tensors[x.t].dims.clone();
                let t = self.g.activation(&name, DType::I8, dims, Some((scale, zp)));
                self.g
                    .push(OpCode::Quantize, vec![Some(x.t)], t, &NoParams, &node.name);
                self.set(node, 0, Val::Act(Act { t, ..x }));
            }
        }
        Ok(())
    }

    /// Materializes a float runtime tensor for `name`.
    pub(super) fn float_act(&mut self, name: &str, ctx: &str) -> Result<Act> {
        match self.vals.get(name).cloned() {
            Some(Val::Act(a)) if self.g.tensors[a.t].dtype == DType::F32 => Ok(a),
            // 16-bit floats (a Cast to float16 inside the graph) compute in f32.
            Some(Val::Act(a))
                if self.g.tensors[a.t].dtype.is_float()
                    && self.g.tensors[a.t].dtype != DType::F32 =>
            {
                if let Some(&t) = self.widened.get(&a.t) {
                    return Ok(Act { t, ..a });
                }
                let src = a.t;
                let w = self.emit_cast(a, DType::F32, &format!("{name}.f32"));
                self.widened.insert(src, w.t);
                Ok(w)
            }
            Some(Val::DqAct { src, scale, zp }) => {
                let key = (src.t, scale.to_bits(), zp);
                if let Some(&t) = self.dq_cache.get(&key) {
                    return Ok(Act { t, ..src });
                }
                if self.g.tensors[src.t].quant.is_none() {
                    // Informational (e.g. `ember inspect` of a graph input).
                    self.g.set_quant(src.t, Some((scale, zp)));
                }
                let f = self.dequantize_now(src, scale, zp, name);
                self.dq_cache.insert(key, f.t);
                Ok(f)
            }
            Some(Val::Act(a)) => Err(CompileError::Unsupported {
                op_type: ctx.to_string(),
                node: name.to_string(),
                what: format!(
                    "needs a float input but '{name}' is {} without DequantizeLinear",
                    self.g.tensors[a.t].dtype.name()
                ),
            }),
            Some(_) => Err(CompileError::Unsupported {
                op_type: ctx.to_string(),
                node: name.to_string(),
                what: format!("input '{name}' is a constant where a runtime tensor is expected"),
            }),
            None => Err(malformed(format!("value '{name}' is never produced"))),
        }
    }

    /// Emits a Dequantize of the runtime integer tensor `a` right away.
    pub(super) fn dequantize_now(&mut self, a: Act, scale: f32, zp: i32, name: &str) -> Act {
        let dims = self.g.tensors[a.t].dims.clone();
        let src = self.g.activation(
            &format!("{name}.q"),
            self.g.tensors[a.t].dtype,
            dims.clone(),
            Some((scale, zp)),
        );
        // A view carrying these quantization parameters (the source may be
        // read with other parameters elsewhere).
        self.g.tensors[src].alias_of = Some(self.g.tensors[a.t].alias_of.unwrap_or(a.t));
        let t = self
            .g
            .activation(&format!("{name}.f32"), DType::F32, dims, None);
        self.g
            .push(OpCode::Dequantize, vec![Some(src)], t, &NoParams, name);
        Act { t, ..a }
    }

    /// The requant constant of an integer op for the model's rounding.
    pub(super) fn requant_tensor(
        &mut self,
        name: &str,
        in_scale: f32,
        w_scales: &[f32],
        out_scale: f32,
    ) -> TId {
        match self.rounding {
            Rounding::TfliteFixedPoint => {
                let mut pairs = Vec::with_capacity(w_scales.len() * 2);
                for &ws in w_scales {
                    let real = in_scale as f64 * ws as f64 / out_scale as f64;
                    let (m, s) = quantize_multiplier(real);
                    pairs.extend([m, s]);
                }
                self.g
                    .const_i32(&format!("{name}.requant"), vec![w_scales.len(), 2], &pairs)
            }
            Rounding::OnnxFloat => {
                let s: Vec<f32> = w_scales
                    .iter()
                    .map(|&ws| in_scale * ws / out_scale)
                    .collect();
                self.g
                    .const_f32(&format!("{name}.requant"), vec![w_scales.len()], &s)
            }
        }
    }
}

/// Quantization of a `DqAct` or scalar-scale `DqConst` operand.
pub(super) fn dq_params(v: &Val) -> Option<(f32, i32)> {
    match v {
        Val::DqAct { scale, zp, .. } => Some((*scale, *zp)),
        Val::DqConst { scale, zp, .. } if scale.len() == 1 => Some((scale[0], zp[0] as i32)),
        _ => None,
    }
}

/// Re-expresses an int32 bias in the accumulator scale `x_scale × w_scale[c]`
/// when the model stored it in another scale (keeps it untouched otherwise).
/// Each scale list holds one scale or one per bias value.
pub(super) fn requantize_bias(
    node: &NodeProto,
    b: Vec<i32>,
    bias_scale: &[f32],
    x_scale: f32,
    w_scale: &[f32],
) -> Result<Vec<i32>> {
    let fits = |n: usize| n == 1 || n == b.len();
    if !fits(bias_scale.len()) || !fits(w_scale.len()) {
        return Err(malformed(format!(
            "node '{}': a bias of {} values with {} bias scales and {} weight scales",
            node.name,
            b.len(),
            bias_scale.len(),
            w_scale.len()
        )));
    }
    Ok(b.iter()
        .enumerate()
        .map(|(c, &v)| {
            let bs = bias_scale[if bias_scale.len() == 1 { 0 } else { c }];
            let acc = x_scale * w_scale[if w_scale.len() == 1 { 0 } else { c }];
            if (bs - acc).abs() <= acc * 1e-3 {
                v
            } else {
                (v as f64 * bs as f64 / acc as f64).round() as i32
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A QDQ convolution whose int32 bias had more values than scales
    /// (found by the compile_onnx fuzz target: 33 bias values, 32 weight
    /// scales) indexed past the scales; it is a malformed model.
    #[test]
    fn bias_and_scales_of_other_lengths_are_refused() {
        let node = NodeProto {
            name: "conv".into(),
            ..Default::default()
        };
        let ok = requantize_bias(&node, vec![10, 20], &[0.5], 1.0, &[0.5, 0.25]).unwrap();
        assert_eq!(ok, vec![10, 40]);
        let e = requantize_bias(&node, vec![1; 33], &[0.5], 1.0, &[0.5; 32]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed ONNX model: node 'conv': a bias of 33 values with 1 bias scales and 32 weight scales"
        );
        assert!(requantize_bias(&node, vec![1; 3], &[0.5; 2], 1.0, &[0.5]).is_err());
    }
}
