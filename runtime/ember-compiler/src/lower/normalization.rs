//! Normalization: `BatchNormalization` (folded into the float convolution
//! or fully connected op that produces its input, else a multiply and an
//! add per channel) and `LayerNormalization` over the last axis.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::unary::{UnaryFn, UnaryOp};
use ember_runtime::ops::{binary, conv, fully_connected, layer_norm, Bounds, Params};
use ember_runtime::DType;
use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_f, attr_i, axis_of, reduce_step, step, unsupported};
use super::fold::broadcast_to;
use super::fusion::ActBounds;
use super::layout::NHWC;
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::ir::Op;
use crate::tensor::HostTensor;

/// A batch norm channel as `x · scale + offset`: `(scale, offset)` from its
/// `gamma`, `beta`, running `mean` and `var`, and `eps`.
pub(crate) fn batchnorm_affine(gamma: f64, beta: f64, mean: f64, var: f64, eps: f64) -> (f64, f64) {
    let scale = gamma / (var + eps).sqrt();
    (scale, beta - mean * scale)
}

impl Lowerer<'_> {
    pub(super) fn lower_batchnorm(&mut self, node: &NodeProto) -> Result<()> {
        let c = |i: usize| -> Result<Vec<f64>> {
            Ok(self
                .const_input(node, i)?
                .ok_or_else(|| {
                    unsupported(node, "scale, bias, mean and variance must be constant")
                })?
                .to_f64())
        };
        let (gamma, beta, mean, var) = (c(1)?, c(2)?, c(3)?, c(4)?);
        let eps = attr_f(node, "epsilon", 1e-5) as f64;
        let ch = gamma.len();
        if [beta.len(), mean.len(), var.len()].iter().any(|&l| l != ch) {
            return Err(malformed(format!(
                "node '{}': parameter lengths differ",
                node.name
            )));
        }
        let (mul, add): (Vec<f64>, Vec<f64>) = (0..ch)
            .map(|i| batchnorm_affine(gamma[i], beta[i], mean[i], var[i], eps))
            .unzip();
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let out = Self::out_name(node);
        // Fold into the float conv/FC that produced x, if it has no other use.
        let producer = self.g.ops.iter().rposition(|o| o.output == x.t);
        if let Some(pi) = producer {
            let op = self.g.ops[pi].clone();
            let foldable = matches!(
                op.opcode,
                OpCode::Conv2d | OpCode::DepthwiseConv2d | OpCode::FullyConnected
            ) && self.g.tensors[x.t].dtype == DType::F32
                && self.follow(&node.input[0]).is_some()
                && fused_act(&op) == Some(Bounds::float_none());
            let channel_axis_last = op.opcode == OpCode::FullyConnected || x.perm == NHWC;
            if foldable && channel_axis_last && x.shape.get(1) == Some(&ch) {
                let wt = op.inputs[1].expect("weights");
                fold_scale_into_weights(&mut self.g.tensors[wt], op.opcode, &mul);
                let bias: Vec<f32> = match op.inputs[2] {
                    Some(b) => {
                        let old = f32s(self.g.tensors[b].data.as_ref().expect("const"));
                        (0..ch)
                            .map(|i| (old[i] as f64 * mul[i] + add[i]) as f32)
                            .collect()
                    }
                    None => add.iter().map(|&v| v as f32).collect(),
                };
                let bt = self
                    .g
                    .const_f32(&format!("{}.bias", node.name), vec![ch], &bias);
                self.g.ops[pi].inputs[2] = Some(bt);
                let mut cur = out;
                let mut act = ActBounds::NONE;
                if let Some((b, name, idx)) = self.match_act(&cur) {
                    act = b;
                    cur = name;
                    self.mark(&[idx]);
                }
                set_fused_act(&mut self.g.ops[pi], Bounds::float(act.lo, act.hi));
                self.g.tensors[x.t].name = cur.clone();
                self.vals.insert(cur, Val::Act(x));
                return Ok(());
            }
        }
        // Otherwise: y = x * mul + add per channel (axis 1).
        let rank = x.shape.len();
        let mut cshape = vec![1; rank];
        if rank < 2 {
            return Err(unsupported(node, "input of rank < 2"));
        }
        cshape[1] = ch;
        let mk = |v: &[f64]| {
            Val::Const(HostTensor::F32(
                ArrayD::from_shape_vec(IxDyn(&cshape), v.iter().map(|&x| x as f32).collect())
                    .expect("shape"),
            ))
        };
        let cm = self.binary_const(node, &mk(&mul), &x, true)?;
        let t1 = self.g.activation(
            &format!("{out}.scaled"),
            DType::F32,
            self.g.tensors[x.t].dims.clone(),
            None,
        );
        self.g.push(
            OpCode::Mul,
            vec![Some(x.t), Some(cm.t)],
            t1,
            &binary::Params {
                act: Bounds::float_none(),
                fixed: binary::Fixed::None,
            },
            &node.name,
        );
        let ca = self.binary_const(node, &mk(&add), &x, true)?;
        let t2 = self
            .g
            .activation(&out, DType::F32, self.g.tensors[x.t].dims.clone(), None);
        self.g.push(
            OpCode::Add,
            vec![Some(t1), Some(ca.t)],
            t2,
            &binary::Params {
                act: Bounds::float_none(),
                fixed: binary::Fixed::None,
            },
            &node.name,
        );
        self.vals.insert(out, Val::Act(Act { t: t2, ..x }));
        Ok(())
    }

    /// `LpNormalization`: `x / ‖x‖ₚ` along `axis`, p = 1 or 2.
    pub(super) fn lower_lp_norm(&mut self, node: &NodeProto) -> Result<()> {
        let rank = self.input_rank(node, 0).unwrap_or(0);
        let axis = axis_of(node, attr_i(node, "axis", -1), rank)?;
        let reduce = match attr_i(node, "p", 2) {
            1 => "ReduceL1",
            2 => "ReduceL2",
            p => return Err(unsupported(node, format!("p={p} (1 and 2 are supported)"))),
        };
        let out = Self::out_name(node);
        let norm = format!("{out}.norm");
        let x = node.input[0].clone();
        self.lower_reduce(&reduce_step(node, reduce, &x, &norm, vec![axis as i64]))?;
        self.lower_binary(0, &step(node, "Div", &[x, norm], &out))
    }

    /// `InstanceNormalization` (each channel of each sample over its
    /// spatial axes) and `GroupNormalization` (each group of channels of
    /// each sample), in f32 steps; scale and bias per channel.
    pub(super) fn lower_instance_group_norm(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let shape = x.shape.clone();
        let rank = shape.len();
        if rank < 3 {
            return Err(unsupported(
                node,
                format!("input of rank {rank} (N, C and spatial axes expected)"),
            ));
        }
        let c = shape[1];
        let out = Self::out_name(node);
        let t = |s: &str| format!("{out}.{s}");
        let group = node.op_type == "GroupNormalization";
        let groups = if group {
            let g = attr_i(node, "num_groups", 0);
            if g < 1 || c % g as usize != 0 {
                return Err(malformed(format!(
                    "node '{}': {g} groups of {c} channels",
                    node.name
                )));
            }
            g as usize
        } else {
            c
        };
        // Normalize rows of [N, groups, rest].
        let rows = t("rows");
        let spatial: usize = shape[2..].iter().product();
        let x3 = self.reshape_act(x, vec![shape[0], groups, c / groups * spatial], &rows)?;
        self.vals.insert(rows.clone(), Val::Act(x3));
        self.standardize(node, &rows, vec![2], &t("normalized3"))?;
        let n3 = self.float_act(&t("normalized3"), &node.op_type)?;
        let n = self.reshape_act(n3, shape.clone(), &t("normalized"))?;
        self.vals.insert(t("normalized"), Val::Act(n));
        // Scale and bias per channel, as [C, 1, …] constants (GroupNorm of
        // opset 18 gives them per group: each repeats over its channels).
        let per_channel = |lw: &Self, i: usize, what: &str| -> Result<HostTensor> {
            let v: Vec<f32> = lw
                .const_input(node, i)?
                .ok_or_else(|| unsupported(node, format!("{what} must be constant")))?
                .to_f32_array()
                .iter()
                .copied()
                .collect();
            let v: Vec<f32> = match v.len() {
                l if l == c => v,
                l if l == groups => (0..c).map(|k| v[k / (c / groups)]).collect(),
                l => {
                    return Err(malformed(format!(
                        "node '{}': {what} of {l} for {c} channels",
                        node.name
                    )))
                }
            };
            let mut dims = vec![c];
            dims.extend(std::iter::repeat_n(1, rank - 2));
            Ok(HostTensor::F32(
                ArrayD::from_shape_vec(IxDyn(&dims), v).map_err(|e| malformed(e.to_string()))?,
            ))
        };
        let (sc, bi) = (
            per_channel(self, 1, "scale")?,
            per_channel(self, 2, "bias")?,
        );
        self.vals.insert(t("scale"), Val::Const(sc));
        self.vals.insert(t("bias"), Val::Const(bi));
        self.lower_binary(
            0,
            &step(node, "Mul", &[t("normalized"), t("scale")], &t("scaled")),
        )?;
        self.lower_binary(0, &step(node, "Add", &[t("scaled"), t("bias")], &out))
    }

    /// `RMSNormalization`: `x / sqrt(mean(x²) + ε) · scale` over `axis` and
    /// the axes after it, lowered step by step in f32.
    pub(super) fn lower_rms_norm(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], "RMSNormalization")?;
        let rank = x.shape.len();
        let axis = axis_of(node, attr_i(node, "axis", -1), rank)?;
        let out = Self::out_name(node);
        let t = |s: &str| format!("{out}.{s}");
        let eps = self.epsilon_const(node, &out);
        let axes: Vec<i64> = (axis as i64..rank as i64).collect();
        let x = node.input[0].clone();
        let scale = node.input.get(1).cloned().unwrap_or_default();
        let sq = t("squared");
        self.lower_binary(0, &step(node, "Mul", &[x.clone(), x.clone()], &sq))?;
        let ms = t("mean_square");
        self.lower_reduce(&reduce_step(node, "ReduceMean", &sq, &ms, axes))?;
        self.lower_binary(0, &step(node, "Add", &[ms, eps], &t("ms_eps")))?;
        self.inverse_sqrt(node, &t("ms_eps"), &t("inv_rms"))?;
        self.lower_binary(0, &step(node, "Mul", &[x, t("inv_rms")], &t("normalized")))?;
        self.lower_binary(0, &step(node, "Mul", &[t("normalized"), scale], &out))
    }

    /// The `epsilon` attribute of `node` as a named f32 constant.
    fn epsilon_const(&mut self, node: &NodeProto, out: &str) -> String {
        let name = format!("{out}.epsilon");
        let eps = attr_f(node, "epsilon", 1e-5);
        self.vals.insert(
            name.clone(),
            Val::Const(HostTensor::F32(ArrayD::from_elem(IxDyn(&[]), eps))),
        );
        name
    }

    /// `out = (x − mean) / sqrt(var + ε)` over `axes` (kept), as steps of
    /// `node`; `{out}.mean` and `{out}.inv_std` stay bound (LayerNorm's
    /// optional outputs).
    fn standardize(&mut self, node: &NodeProto, x: &str, axes: Vec<i64>, out: &str) -> Result<()> {
        let t = |s: &str| format!("{out}.{s}");
        let eps = self.epsilon_const(node, out);
        let x = x.to_string();
        self.lower_reduce(&reduce_step(
            node,
            "ReduceMean",
            &x,
            &t("mean"),
            axes.clone(),
        ))?;
        self.lower_binary(0, &step(node, "Sub", &[x, t("mean")], &t("centered")))?;
        let c = t("centered");
        self.lower_binary(
            0,
            &step(node, "Mul", &[c.clone(), c.clone()], &t("squared")),
        )?;
        self.lower_reduce(&reduce_step(
            node,
            "ReduceMean",
            &t("squared"),
            &t("variance"),
            axes,
        ))?;
        self.lower_binary(0, &step(node, "Add", &[t("variance"), eps], &t("var_eps")))?;
        self.inverse_sqrt(node, &t("var_eps"), &t("inv_std"))?;
        self.lower_binary(0, &step(node, "Mul", &[c, t("inv_std")], out))
    }

    /// `out = 1 / sqrt(x)`, as steps of `node`.
    fn inverse_sqrt(&mut self, node: &NodeProto, x: &str, out: &str) -> Result<()> {
        let sd = format!("{out}.sqrt");
        self.lower_sqrt(&step(node, "Sqrt", &[x.to_string()], &sd))?;
        self.lower_unary(
            &step(node, "Reciprocal", &[sd], out),
            UnaryFn::of(UnaryOp::Reciprocal),
        )
    }

    /// LayerNormalization whose mean or inverse standard deviation is
    /// used: lowered step by step as ONNX defines it (in f32), so those
    /// intermediate values exist as tensors.
    fn lower_layer_norm_steps(&mut self, node: &NodeProto, axis: usize, rank: usize) -> Result<()> {
        let out = Self::out_name(node);
        let t = |s: &str| format!("{out}.{s}");
        let axes: Vec<i64> = (axis as i64..rank as i64).collect();
        self.standardize(node, &node.input[0], axes, &t("normalized"))?;
        let has_bias = node.input.get(2).is_some_and(|s| !s.is_empty());
        let scaled = if has_bias { t("scaled") } else { out.clone() };
        let scale = node.input.get(1).cloned().unwrap_or_default();
        self.lower_binary(0, &step(node, "Mul", &[t("normalized"), scale], &scaled))?;
        if has_bias {
            self.lower_binary(
                0,
                &step(node, "Add", &[scaled, node.input[2].clone()], &out),
            )?;
        }
        let normalized = t("normalized");
        let stat = |s: &str| format!("{normalized}.{s}");
        for (k, name) in [(1, stat("mean")), (2, stat("inv_std"))] {
            if let Some(o) = node.output.get(k).filter(|o| !o.is_empty()) {
                let v = self.vals.get(&name).cloned().ok_or_else(|| {
                    malformed(format!("node '{}': {name} was not produced", node.name))
                })?;
                self.vals.insert(o.clone(), v);
            }
        }
        Ok(())
    }

    pub(super) fn lower_layer_norm(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], "LayerNormalization")?;
        let rank = x.shape.len();
        let axis = axis_of(node, attr_i(node, "axis", -1), rank)?;
        if node.output.len() > 1 && node.output[1..].iter().any(|o| !o.is_empty()) {
            return self.lower_layer_norm_steps(node, axis, rank);
        }
        // Normalized over `axis` and every axis after it: rows of `d`.
        let norm_shape = x.shape[axis..].to_vec();
        let d: usize = norm_shape.iter().product();
        let gamma = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "scale must be constant"))?;
        let beta = self.const_input(node, 2)?;
        let spread = |t: HostTensor, what: &str| -> Result<HostTensor> {
            broadcast_to(&t, &norm_shape)
                .map(|a| HostTensor::F32(a.mapv(|v| v as f32)))
                .ok_or_else(|| {
                    unsupported(
                        node,
                        format!(
                            "{what} of shape {:?} does not broadcast to the normalized shape {norm_shape:?}",
                            t.shape()
                        ),
                    )
                })
        };
        let gamma = spread(gamma, "scale")?;
        let beta = beta.map(|b| spread(b, "bias")).transpose()?;
        let x = self.in_rowmajor(x, &node.name)?;
        let gv: Vec<f32> = gamma.to_f32_array().iter().copied().collect();
        let gt = self
            .g
            .const_f32(&format!("{}.gamma", node.name), vec![d], &gv);
        let bt = beta.map(|b| {
            let bv: Vec<f32> = b.to_f32_array().iter().copied().collect();
            self.g
                .const_f32(&format!("{}.beta", node.name), vec![d], &bv)
        });
        let out = Self::out_name(node);
        let y = self.new_act(&out, DType::F32, x.shape.clone());
        let eps = attr_f(node, "epsilon", 1e-5);
        self.g.push(
            OpCode::LayerNorm,
            vec![Some(x.t), Some(gt), bt],
            y.t,
            &layer_norm::Params { epsilon: eps },
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Multiplies output channel `c` of a float filter by `mul[c]`.
fn fold_scale_into_weights(t: &mut crate::ir::Tensor, opcode: OpCode, mul: &[f64]) {
    let data = t.data.as_mut().expect("constant weights");
    let mut w = f32s(data);
    let co_last = opcode == OpCode::DepthwiseConv2d;
    let per = w.len() / mul.len();
    for (i, v) in w.iter_mut().enumerate() {
        let c = if co_last { i % mul.len() } else { i / per };
        *v = (*v as f64 * mul[c]) as f32;
    }
    *data = w.iter().flat_map(|x| x.to_le_bytes()).collect();
}

/// The activation clamp fused into a convolution or fully connected op.
fn fused_act(op: &Op) -> Option<Bounds> {
    match op.opcode {
        OpCode::Conv2d | OpCode::DepthwiseConv2d => {
            conv::Params::from_words(&op.params).ok().map(|p| p.act)
        }
        OpCode::FullyConnected => fully_connected::Params::from_words(&op.params)
            .ok()
            .map(|p| p.act),
        _ => None,
    }
}

/// Replaces the activation clamp fused into a convolution or fully
/// connected op (nothing for other ops).
fn set_fused_act(op: &mut Op, act: Bounds) {
    match op.opcode {
        OpCode::Conv2d | OpCode::DepthwiseConv2d => {
            if let Ok(p) = conv::Params::from_words(&op.params) {
                op.set_params(&conv::Params { act, ..p });
            }
        }
        OpCode::FullyConnected => op.set_params(&fully_connected::Params { act }),
        _ => {}
    }
}
