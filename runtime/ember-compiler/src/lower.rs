//! Lowering: ONNX nodes → Ember ops.
//!
//! Walks the ONNX graph once in its (topological) order and keeps, for every
//! ONNX value, what it is at this point of compilation ([`Val`]): a
//! compile-time constant, a runtime tensor with a *layout* (the permutation
//! from its logical ONNX shape to the physical order of its bytes), or a
//! not-yet-materialized `DequantizeLinear` of a constant or of a runtime
//! int8 tensor. Quantized patterns (`DQ → op → [Relu|Clip] → Q`) become
//! integer ops; everything else runs in float, with `Dequantize`/`Quantize`
//! ops materialized only where a float consumer needs them.
//!
//! Layout: convolutions and pooling run on NHWC. An ONNX `Transpose` never
//! moves data; it only changes the layout of the value. Physical transposes
//! are inserted only where an op needs another layout than the one the
//! value has (e.g. a `Reshape` that is not a no-op on the current bytes).

use std::collections::{HashMap, HashSet};

use ember_runtime::format::OpCode;
use ember_runtime::kernels::quant::quantize_multiplier;
use ember_runtime::kernels::softmax::softmax_params_s8;
use ember_runtime::{DType, Rounding};
use ndarray::{ArrayD, Axis, IxDyn};
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto};

mod sequence;

use crate::error::{malformed, CompileError, Result};
use crate::ir::{Graph, TId};
use crate::tensor::{from_proto, HostTensor};

/// A runtime tensor as seen from an ONNX value.
#[derive(Clone, Debug)]
struct Act {
    /// The Ember tensor holding the bytes.
    t: TId,
    /// Logical (ONNX) shape.
    shape: Vec<usize>,
    /// Physical dim `i` is logical dim `perm[i]`.
    perm: Vec<usize>,
}

/// What an ONNX value is during lowering.
#[derive(Clone, Debug)]
enum Val {
    /// Known at compile time.
    Const(HostTensor),
    /// A runtime tensor.
    Act(Act),
    /// `DequantizeLinear` of a constant (weights, biases).
    DqConst {
        q: HostTensor,
        scale: Vec<f32>,
        zp: Vec<i64>,
        axis: usize,
    },
    /// `DequantizeLinear` of a runtime int8 tensor (per-tensor params).
    DqAct { src: Act, scale: f32, zp: i32 },
}

/// Fused activation bounds in real (float) units.
#[derive(Clone, Copy, Debug)]
struct ActBounds {
    lo: f32,
    hi: f32,
}

impl ActBounds {
    const NONE: ActBounds = ActBounds {
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
    };
}

/// A matched `[Relu|Clip] → QuantizeLinear` tail after an op.
struct QTail {
    act: ActBounds,
    out_name: String,
    scale: f32,
    zp: i32,
    nodes: Vec<usize>,
}

fn identity(n: usize) -> Vec<usize> {
    (0..n).collect()
}

fn inverse(p: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; p.len()];
    for (i, &v) in p.iter().enumerate() {
        inv[v] = i;
    }
    inv
}

fn permuted(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    perm.iter().map(|&p| shape[p]).collect()
}

const NHWC: [usize; 4] = [0, 2, 3, 1];

fn round_away(x: f32) -> i32 {
    x.round() as i32
}

/// Lowering state.
pub(crate) struct Lowerer<'p> {
    pub g: Graph,
    nodes: &'p [NodeProto],
    vals: HashMap<String, Val>,
    consumers: HashMap<String, Vec<usize>>,
    graph_outputs: HashSet<String>,
    done: Vec<bool>,
    rounding: Rounding,
    /// Dequantized copies already emitted, by (source, scale bits, zero point).
    dq_cache: HashMap<(TId, u32, i32), TId>,
    /// State of the transformer lowering ([`sequence`]).
    seq: sequence::SeqState,
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map(|a| a.i).unwrap_or(default)
}

fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map(|a| a.f).unwrap_or(default)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).to_string())
}

fn unsupported(node: &NodeProto, what: impl Into<String>) -> CompileError {
    CompileError::Unsupported {
        op_type: node.op_type.clone(),
        node: node.name.clone(),
        what: what.into(),
    }
}

fn f32_bits(v: f32) -> i32 {
    v.to_bits() as i32
}

impl<'p> Lowerer<'p> {
    /// Prepares lowering of `graph`, with graph inputs of the given shapes.
    pub fn new(
        graph: &'p GraphProto,
        rounding: Rounding,
        input_shapes: &HashMap<String, Vec<usize>>,
    ) -> Result<Self> {
        let mut lw = Lowerer {
            g: Graph::default(),
            nodes: &graph.node,
            vals: HashMap::new(),
            consumers: HashMap::new(),
            graph_outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
            done: vec![false; graph.node.len()],
            rounding,
            dq_cache: HashMap::new(),
            seq: Default::default(),
        };
        for init in &graph.initializer {
            lw.vals
                .insert(init.name.clone(), Val::Const(from_proto(init)?));
        }
        for (i, n) in graph.node.iter().enumerate() {
            for inp in &n.input {
                if !inp.is_empty() {
                    lw.consumers.entry(inp.clone()).or_default().push(i);
                }
            }
        }
        for inp in &graph.input {
            if lw.vals.contains_key(&inp.name) {
                continue; // an initializer listed as input (old exporters)
            }
            let (dtype, shape) = value_info(inp, input_shapes)?;
            let t = lw.g.activation(&inp.name, dtype, shape.clone(), None);
            lw.g.inputs.push(t);
            let perm = identity(shape.len());
            lw.vals
                .insert(inp.name.clone(), Val::Act(Act { t, shape, perm }));
        }
        if lw.g.inputs.is_empty() {
            return Err(malformed("the graph has no runtime inputs"));
        }
        Ok(lw)
    }

    /// Lowers every node, then binds the graph outputs.
    pub fn run(mut self, output_names: &[String]) -> Result<Graph> {
        for i in 0..self.nodes.len() {
            if self.done[i] {
                continue;
            }
            let node = &self.nodes[i];
            self.lower_node(i, node)?;
        }
        for name in output_names {
            let v = self.vals.get(name).cloned().ok_or_else(|| {
                malformed(format!("graph output '{name}' is not produced by any node"))
            })?;
            let a = match v {
                Val::Act(a) => a,
                Val::DqAct { .. } => self.float_act(name, "graph output")?,
                _ => {
                    return Err(malformed(format!(
                    "graph output '{name}' is a constant; Ember needs outputs computed at run time"
                )))
                }
            };
            let a = self.in_rowmajor(a, name)?;
            let mut t = a.t;
            // An output must own its bytes: copy if it is a graph input,
            // another output, or a view.
            let root = self.g.tensors[t].alias_of.unwrap_or(t);
            if self.g.inputs.contains(&root)
                || self
                    .g
                    .outputs
                    .iter()
                    .any(|&o| self.g.tensors[o].alias_of.unwrap_or(o) == root)
                || self.g.tensors[t].alias_of.is_some()
            {
                let src = &self.g.tensors[t];
                let (dt, q) = (src.dtype, src.quant);
                let c = self.g.activation(name, dt, a.shape.clone(), q);
                self.g.push(OpCode::Copy, vec![Some(t)], c, vec![], name);
                t = c;
            }
            self.g.tensors[t].dims = a.shape.clone();
            self.g.tensors[t].name = name.clone();
            self.g.outputs.push(t);
        }
        Ok(self.g)
    }

    fn val(&self, name: &str, node: &NodeProto) -> Result<Val> {
        self.vals.get(name).cloned().ok_or_else(|| {
            malformed(format!(
                "node '{}' ({}) reads '{name}', which no earlier node produces",
                node.name, node.op_type
            ))
        })
    }

    fn input_val(&self, node: &NodeProto, i: usize) -> Result<Option<Val>> {
        match node.input.get(i) {
            Some(n) if !n.is_empty() => Ok(Some(self.val(n, node)?)),
            _ => Ok(None),
        }
    }

    fn req_input(&self, node: &NodeProto, i: usize) -> Result<Val> {
        self.input_val(node, i)?.ok_or_else(|| {
            malformed(format!(
                "node '{}' ({}) lacks input {i}",
                node.name, node.op_type
            ))
        })
    }

    fn const_input(&self, node: &NodeProto, i: usize) -> Result<Option<HostTensor>> {
        Ok(match self.input_val(node, i)? {
            Some(Val::Const(c)) => Some(c),
            Some(v @ Val::DqConst { .. }) => Some(HostTensor::F32(dequant_const(&v)?)),
            Some(_) => None,
            None => None,
        })
    }

    fn set(&mut self, node: &NodeProto, i: usize, v: Val) {
        if let Some(name) = node.output.get(i) {
            self.vals.insert(name.clone(), v);
        }
    }

    fn out_name(node: &NodeProto) -> String {
        node.output
            .first()
            .cloned()
            .unwrap_or_else(|| node.name.clone())
    }

    /// The only consumer of `v`, if `v` has exactly one and is not a graph
    /// output.
    fn follow(&self, v: &str) -> Option<usize> {
        if self.graph_outputs.contains(v) {
            return None;
        }
        match self.consumers.get(v).map(|c| c.as_slice()) {
            Some([one]) if !self.done[*one] => Some(*one),
            _ => None,
        }
    }

    /// Matches a `Relu`/`Clip` consumer of `v`; returns its bounds, output
    /// name and node index.
    fn match_act(&self, v: &str) -> Option<(ActBounds, String, usize)> {
        let i = self.follow(v)?;
        let n = &self.nodes[i];
        let b = match n.op_type.as_str() {
            "Relu" => ActBounds {
                lo: 0.0,
                hi: f32::INFINITY,
            },
            "Clip" => {
                let (mut lo, mut hi) = (
                    attr_f(n, "min", f32::NEG_INFINITY),
                    attr_f(n, "max", f32::INFINITY),
                );
                if n.input.len() > 1 {
                    match self.const_input(n, 1).ok()? {
                        Some(c) => lo = *c.to_f64().first()? as f32,
                        None if n.input[1].is_empty() => {}
                        None => return None,
                    }
                }
                if n.input.len() > 2 {
                    match self.const_input(n, 2).ok()? {
                        Some(c) => hi = *c.to_f64().first()? as f32,
                        None if n.input[2].is_empty() => {}
                        None => return None,
                    }
                }
                ActBounds { lo, hi }
            }
            _ => return None,
        };
        Some((b, Self::out_name(n), i))
    }

    /// Matches `[Relu|Clip] → QuantizeLinear(per-tensor int8)` after `v`.
    fn match_qtail(&self, v: &str) -> Option<QTail> {
        let mut nodes = vec![];
        let mut act = ActBounds::NONE;
        let mut cur = v.to_string();
        if let Some((b, out, i)) = self.match_act(&cur) {
            act = b;
            cur = out;
            nodes.push(i);
        }
        let qi = self.follow(&cur)?;
        let q = &self.nodes[qi];
        if q.op_type != "QuantizeLinear" {
            return None;
        }
        let (scale, zp) = self.qparams(q).ok()??;
        nodes.push(qi);
        Some(QTail {
            act,
            out_name: Self::out_name(q),
            scale,
            zp,
            nodes,
        })
    }

    /// Per-tensor int8 params of a QuantizeLinear/DequantizeLinear node.
    fn qparams(&self, q: &NodeProto) -> Result<Option<(f32, i32)>> {
        let s = self.const_input(q, 1)?;
        let zp = match self.input_val(q, 2)? {
            Some(Val::Const(c)) => Some(c),
            None => None,
            Some(_) => return Ok(None),
        };
        let Some(s) = s else { return Ok(None) };
        if s.len() != 1 {
            return Ok(None);
        }
        let zp_v = match &zp {
            Some(HostTensor::I8(a)) => a.iter().next().map(|&v| v as i32).unwrap_or(0),
            Some(_) => return Ok(None), // uint8 activations: not yet
            None => 0,
        };
        if zp.as_ref().map(|z| z.len() != 1).unwrap_or(false) {
            return Ok(None);
        }
        Ok(Some((s.to_f64()[0] as f32, zp_v)))
    }

    fn mark(&mut self, nodes: &[usize]) {
        for &i in nodes {
            self.done[i] = true;
        }
    }

    /// Int8 bounds of a fused activation in the output's quantization.
    fn act_i8(act: ActBounds, scale: f32, zp: i32) -> (i32, i32) {
        let lo = if act.lo.is_finite() {
            (zp + round_away(act.lo / scale)).max(-128)
        } else {
            -128
        };
        let hi = if act.hi.is_finite() {
            (zp + round_away(act.hi / scale)).min(127)
        } else {
            127
        };
        (lo.min(127), hi.max(-128))
    }

    /// Materializes a float runtime tensor for `name`.
    fn float_act(&mut self, name: &str, ctx: &str) -> Result<Act> {
        match self.vals.get(name).cloned() {
            Some(Val::Act(a)) if self.g.tensors[a.t].dtype == DType::F32 => Ok(a),
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
    fn dequantize_now(&mut self, a: Act, scale: f32, zp: i32, name: &str) -> Act {
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
            .push(OpCode::Dequantize, vec![Some(src)], t, vec![], name);
        Act { t, ..a }
    }

    /// Returns `a` with layout `want`, inserting a physical transpose if needed.
    fn in_layout(&mut self, a: Act, want: &[usize], name: &str) -> Act {
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
            tperm.iter().map(|&p| p as i32).collect(),
            name,
        );
        Act {
            t,
            shape: a.shape,
            perm: want.to_vec(),
        }
    }

    fn in_rowmajor(&mut self, a: Act, name: &str) -> Result<Act> {
        let n = a.shape.len();
        Ok(self.in_layout(a, &identity(n), name))
    }

    fn lower_node(&mut self, i: usize, node: &NodeProto) -> Result<()> {
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Err(unsupported(
                node,
                format!("operators of domain '{}' are not supported", node.domain),
            ));
        }
        if self.lower_sequence(i, node)? {
            return Ok(());
        }
        match node.op_type.as_str() {
            "Constant" => {
                let a = attr(node, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| unsupported(node, "only the 'value' form of Constant is supported"))?;
                let t = from_proto(a)?;
                self.set(node, 0, Val::Const(t));
            }
            "Identity" | "Dropout" => {
                let v = self.req_input(node, 0)?;
                self.set(node, 0, v);
            }
            "DequantizeLinear" => self.lower_dequantize(node)?,
            "QuantizeLinear" => self.lower_quantize(node)?,
            "Conv" => self.lower_conv(node)?,
            "QLinearConv" => self.lower_qlinear_conv(node)?,
            "ConvInteger" | "MatMulInteger" => self.lower_integer_op(node)?,
            "MatMul" | "Gemm" => self.lower_matmul(node)?,
            "QLinearMatMul" => self.lower_qlinear_matmul(node)?,
            "Add" | "Sub" | "Mul" | "Div" => self.lower_binary(i, node)?,
            "Relu" | "Clip" => self.lower_clamp(node)?,
            "AveragePool" | "MaxPool" | "GlobalAveragePool" | "GlobalMaxPool" => {
                self.lower_pool(node)?
            }
            "Softmax" => self.lower_softmax(node)?,
            "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => self.lower_reshape(node)?,
            "Transpose" => self.lower_transpose(node)?,
            "BatchNormalization" => self.lower_batchnorm(node)?,
            "Pad" => self.lower_pad(node)?,
            "Concat" => self.lower_concat(node)?,
            "Shape" => {
                let shape = match self.req_input(node, 0)? {
                    Val::Act(a) | Val::DqAct { src: a, .. } => a.shape,
                    Val::Const(c) => c.shape().to_vec(),
                    Val::DqConst { q, .. } => q.shape().to_vec(),
                };
                let v: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                self.set(
                    node,
                    0,
                    Val::Const(HostTensor::I64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-D"))),
                );
            }
            "Cast" => {
                let to = attr_i(node, "to", 1);
                match self.req_input(node, 0)? {
                    Val::Const(c) => {
                        let t = match to {
                            1 | 11 => HostTensor::F32(c.to_f32_array()),
                            7 | 6 => c.map_layout(Ok)?.to_i64_tensor(),
                            _ => return Err(unsupported(node, format!("Cast of a constant to type {to}"))),
                        };
                        self.set(node, 0, Val::Const(t));
                    }
                    Val::Act(a) if to == 1 && self.g.tensors[a.t].dtype == DType::F32 => {
                        self.set(node, 0, Val::Act(a))
                    }
                    _ => return Err(unsupported(node, "Cast of a runtime tensor (only float→float is a no-op)")),
                }
            }
            other => {
                return Err(unsupported(
                    node,
                    format!(
                        "Ember has no kernel for '{other}'; supported: Conv, QLinearConv, ConvInteger, \
                         MatMul, Gemm, QLinearMatMul, MatMulInteger, Add, Sub, Mul, Div, Relu, Clip, \
                         AveragePool, MaxPool, GlobalAveragePool, Softmax, Reshape, Flatten, Squeeze, \
                         Unsqueeze, Transpose, BatchNormalization, Pad, Concat, QuantizeLinear, \
                         DequantizeLinear, Constant, Identity, Shape, Cast"
                    ),
                ))
            }
        }
        Ok(())
    }

    fn lower_dequantize(&mut self, node: &NodeProto) -> Result<()> {
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

    fn lower_quantize(&mut self, node: &NodeProto) -> Result<()> {
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
                .push(OpCode::Quantize, vec![Some(x.t)], t, vec![], &node.name);
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
                    .push(OpCode::Quantize, vec![Some(x.t)], t, vec![], &node.name);
                self.set(node, 0, Val::Act(Act { t, ..x }));
            }
        }
        Ok(())
    }

    /// Conv attributes → (params without act bounds, output spatial dims).
    fn conv_geometry(
        node: &NodeProto,
        in_hw: (usize, usize),
        k_hw: (usize, usize),
        pool: bool,
    ) -> Result<([usize; 8], (usize, usize))> {
        let strides = attr_ints(node, "strides").unwrap_or(vec![1, 1]);
        let dil = if pool {
            vec![1, 1]
        } else {
            attr_ints(node, "dilations").unwrap_or(vec![1, 1])
        };
        if strides.len() != 2 || dil.len() != 2 {
            return Err(unsupported(node, "only 2-D windows are supported"));
        }
        if attr_i(node, "ceil_mode", 0) != 0 {
            return Err(unsupported(node, "ceil_mode=1"));
        }
        let (sh, sw, dh, dw) = (
            strides[0] as usize,
            strides[1] as usize,
            dil[0] as usize,
            dil[1] as usize,
        );
        if sh == 0 || sw == 0 || dh == 0 || dw == 0 {
            return Err(malformed(format!(
                "node '{}': zero stride or dilation",
                node.name
            )));
        }
        let auto = attr_s(node, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        let pads: [usize; 4] = match auto.as_str() {
            "NOTSET" => {
                let p = attr_ints(node, "pads").unwrap_or(vec![0; 4]);
                if p.len() != 4 || p.iter().any(|&v| v < 0) {
                    return Err(unsupported(node, "pads must be 4 non-negative values"));
                }
                [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
            }
            "VALID" => [0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut out = [0usize; 4];
                for (d, (inp, k, s, dl)) in [(in_hw.0, k_hw.0, sh, dh), (in_hw.1, k_hw.1, sw, dw)]
                    .into_iter()
                    .enumerate()
                {
                    let o = inp.div_ceil(s);
                    let eff = (k - 1) * dl + 1;
                    let total = ((o - 1) * s + eff).saturating_sub(inp);
                    let (a, b) = if auto == "SAME_UPPER" {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    };
                    out[d] = a;
                    out[d + 2] = b;
                }
                out
            }
            other => return Err(unsupported(node, format!("auto_pad={other}"))),
        };
        let oh = ember_runtime::kernels::Window::out_dim(in_hw.0, k_hw.0, sh, dh, pads[0], pads[2]);
        let ow = ember_runtime::kernels::Window::out_dim(in_hw.1, k_hw.1, sw, dw, pads[1], pads[3]);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return Err(malformed(format!(
                "node '{}': window larger than the padded input",
                node.name
            )));
        };
        Ok((
            [sh, sw, dh, dw, pads[0], pads[1], pads[2], pads[3]],
            (oh, ow),
        ))
    }

    /// Takes a 4-D logical NCHW activation into NHWC.
    fn nhwc(&mut self, a: Act, node: &NodeProto) -> Result<Act> {
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

    fn lower_conv(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.req_input(node, 0)?;
        let w = self.req_input(node, 1)?;
        let b = self.input_val(node, 2)?;
        let out = Self::out_name(node);
        // Quantized pattern: DQ(act) * DQ(const int8) + DQ(const int32) → [act] → Q.
        if let (
            Val::DqAct {
                src,
                scale: xs,
                zp: xz,
            },
            Val::DqConst {
                q: HostTensor::I8(wq),
                scale: ws,
                zp: wz,
                axis: 0,
            },
        ) = (&x, &w)
        {
            let bias_ok = matches!(
                &b,
                None | Some(Val::DqConst {
                    q: HostTensor::I32(_),
                    ..
                })
            );
            if bias_ok && wz.iter().all(|&z| z == 0) {
                if let Some(tail) = self.match_qtail(&out) {
                    let bias = match &b {
                        Some(Val::DqConst {
                            q: HostTensor::I32(bq),
                            scale: bs,
                            ..
                        }) => Some(requantize_bias(bq.iter().copied().collect(), bs, *xs, ws)),
                        _ => None,
                    };
                    let wq = wq.clone();
                    let (src, xs, xz, ws) = (src.clone(), *xs, *xz, ws.clone());
                    self.mark(&tail.nodes);
                    return self.emit_conv_s8(node, src, (xs, xz), &wq, &ws, bias, &tail);
                }
            }
        }
        // Float path.
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let wf = match self.const_input(node, 1)? {
            Some(w) => w.to_f32_array(),
            None => return Err(unsupported(node, "weights must be constant")),
        };
        let bias = match self.const_input(node, 2)? {
            Some(b) => Some(b.to_f32_array().iter().copied().collect::<Vec<f32>>()),
            None if node.input.get(2).map(|s| !s.is_empty()).unwrap_or(false) => {
                return Err(unsupported(node, "bias must be constant"))
            }
            None => None,
        };
        let mut act = ActBounds::NONE;
        let mut out_name = out;
        if let Some((bnd, name, idx)) = self.match_act(&out_name) {
            act = bnd;
            out_name = name;
            self.mark(&[idx]);
        }
        self.emit_conv_f32(node, x, wf, bias, act, &out_name)
    }

    /// Checks conv shapes and returns (geometry params, output shape, groups, depthwise, multiplier).
    fn conv_shapes(
        &self,
        node: &NodeProto,
        x: &Act,
        wshape: &[usize],
    ) -> Result<([usize; 8], Vec<usize>, usize, bool)> {
        if wshape.len() != 4 {
            return Err(unsupported(
                node,
                "only 2-D convolutions (4-D weights) are supported",
            ));
        }
        let (n, ci, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (co, cig, kh, kw) = (wshape[0], wshape[1], wshape[2], wshape[3]);
        let g = attr_i(node, "group", 1).max(1) as usize;
        if cig * g != ci || co % g != 0 {
            return Err(malformed(format!(
                "node '{}': weights {wshape:?} do not match {ci} input channels in {g} groups",
                node.name
            )));
        }
        if let Some(ks) = attr_ints(node, "kernel_shape") {
            if ks != [kh as i64, kw as i64] {
                return Err(malformed(format!(
                    "node '{}': kernel_shape disagrees with the weights",
                    node.name
                )));
            }
        }
        let (geo, (oh, ow)) = Self::conv_geometry(node, (h, w), (kh, kw), false)?;
        let depthwise = g == ci && g > 1 && cig == 1;
        Ok((geo, vec![n, co, oh, ow], g, depthwise))
    }

    fn emit_conv_f32(
        &mut self,
        node: &NodeProto,
        x: Act,
        w: ArrayD<f32>,
        bias: Option<Vec<f32>>,
        act: ActBounds,
        out_name: &str,
    ) -> Result<()> {
        let x = self.nhwc(x, node)?;
        let (geo, oshape, g, depthwise) = self.conv_shapes(node, &x, w.shape())?;
        let co = oshape[1];
        let (wdata, wdims, opcode, gp) = pack_filter(&w.mapv(|v| v as f64), depthwise, g);
        let wdata: Vec<f32> = wdata.iter().map(|&v| v as f32).collect();
        let wt = self
            .g
            .const_f32(&format!("{}.weight", node.name), wdims, &wdata);
        let bt = bias.map(|b| {
            self.g
                .const_f32(&format!("{}.bias", node.name), vec![co], &b)
        });
        let y = self
            .g
            .activation(out_name, DType::F32, permuted(&oshape, &NHWC), None);
        let mut params: Vec<i32> = geo.iter().map(|&v| v as i32).collect();
        params.push(gp as i32);
        params.push(f32_bits(act.lo));
        params.push(f32_bits(act.hi));
        self.g
            .push(opcode, vec![Some(x.t), Some(wt), bt], y, params, &node.name);
        self.vals.insert(
            out_name.to_string(),
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm: NHWC.to_vec(),
            }),
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_conv_s8(
        &mut self,
        node: &NodeProto,
        x: Act,
        xq: (f32, i32),
        w: &ArrayD<i8>,
        ws: &[f32],
        bias: Option<Vec<i32>>,
        tail: &QTail,
    ) -> Result<()> {
        let x = self.nhwc(x, node)?;
        self.g.set_quant(x.t, Some(xq));
        let (geo, oshape, g, depthwise) = self.conv_shapes(node, &x, w.shape())?;
        let co = oshape[1];
        if ws.len() != 1 && ws.len() != co {
            return Err(malformed(format!(
                "node '{}': {} weight scales for {co} channels",
                node.name,
                ws.len()
            )));
        }
        let (wdata, wdims, opcode, gp) = pack_filter(&w.mapv(|v| v as f64), depthwise, g);
        let wdata: Vec<i8> = wdata.iter().map(|&v| v as i8).collect();
        let wt = self.g.const_i8(
            &format!("{}.weight", node.name),
            wdims,
            Some((ws[0], 0)),
            &wdata,
        );
        let bt = bias.map(|b| {
            self.g
                .const_i32(&format!("{}.bias", node.name), vec![co], &b)
        });
        let rq = self.requant_tensor(&node.name, xq.0, ws, tail.scale);
        let y = self.g.activation(
            &tail.out_name,
            DType::I8,
            permuted(&oshape, &NHWC),
            Some((tail.scale, tail.zp)),
        );
        let (lo, hi) = Self::act_i8(tail.act, tail.scale, tail.zp);
        let mut params: Vec<i32> = geo.iter().map(|&v| v as i32).collect();
        params.extend([gp as i32, lo, hi]);
        self.g.push(
            opcode,
            vec![Some(x.t), Some(wt), bt, Some(rq)],
            y,
            params,
            &node.name,
        );
        self.vals.insert(
            tail.out_name.clone(),
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm: NHWC.to_vec(),
            }),
        );
        Ok(())
    }

    /// The requant constant of an integer op for the model's rounding.
    fn requant_tensor(
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

    fn lower_qlinear_conv(&mut self, node: &NodeProto) -> Result<()> {
        let x = match self.req_input(node, 0)? {
            Val::Act(a) if self.g.tensors[a.t].dtype == DType::I8 => a,
            _ => return Err(unsupported(node, "input must be a runtime int8 tensor")),
        };
        let c = |i: usize| -> Result<HostTensor> {
            self.const_input(node, i)?
                .ok_or_else(|| unsupported(node, format!("input {i} must be constant")))
        };
        let xs = c(1)?.to_f64()[0] as f32;
        let xz = c(2)?.to_i64()[0] as i32;
        let w = match self.input_val(node, 3)? {
            Some(Val::Const(HostTensor::I8(w))) => w,
            _ => return Err(unsupported(node, "weights must be a constant int8 tensor")),
        };
        let ws: Vec<f32> = c(4)?.to_f64().iter().map(|&v| v as f32).collect();
        if c(5)?.to_i64().iter().any(|&z| z != 0) {
            return Err(unsupported(node, "non-zero weight zero points"));
        }
        let ys = c(6)?.to_f64()[0] as f32;
        let yz = c(7)?.to_i64()[0] as i32;
        let bias = match self.input_val(node, 8)? {
            Some(Val::Const(HostTensor::I32(b))) => Some(b.iter().copied().collect()),
            None => None,
            _ => return Err(unsupported(node, "bias must be a constant int32 tensor")),
        };
        let mut tail = QTail {
            act: ActBounds::NONE,
            out_name: Self::out_name(node),
            scale: ys,
            zp: yz,
            nodes: vec![],
        };
        if let Some((b, name, idx)) = self.match_act(&tail.out_name) {
            tail.act = b;
            tail.out_name = name;
            self.mark(&[idx]);
        }
        self.emit_conv_s8(node, x, (xs, xz), &w, &ws, bias, &tail)
    }

    /// ConvInteger / MatMulInteger: exact integer products computed in f32
    /// (exact while |accumulator| < 2^24), result kept as f32.
    fn lower_integer_op(&mut self, node: &NodeProto) -> Result<()> {
        let x = match self.req_input(node, 0)? {
            Val::Act(a) => a,
            _ => return Err(unsupported(node, "input A must be a runtime tensor")),
        };
        let xz = match self.input_val(node, 2)? {
            Some(Val::Const(z)) => z.to_i64().first().copied().unwrap_or(0) as i32,
            None => 0,
            _ => return Err(unsupported(node, "zero points must be constant")),
        };
        if !matches!(self.g.tensors[x.t].dtype, DType::I8 | DType::U8) {
            return Err(unsupported(node, "input A must be int8 or uint8"));
        }
        // (a - zp) exactly, as f32: dequantize with scale 1.
        let xf = self.dequantize_now(x, 1.0, xz, &node.name);
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "B must be constant"))?;
        let wz = match self.input_val(node, 3)? {
            Some(Val::Const(z)) => z.to_f64(),
            None => vec![0.0],
            _ => return Err(unsupported(node, "zero points must be constant")),
        };
        let mut wf = w.to_f32_array();
        if node.op_type == "ConvInteger" {
            for (c, mut sl) in wf.axis_iter_mut(Axis(0)).enumerate() {
                let z = wz[if wz.len() == 1 { 0 } else { c }] as f32;
                sl.mapv_inplace(|v| v - z);
            }
            let out = Self::out_name(node);
            self.emit_conv_f32(node, xf, wf, None, ActBounds::NONE, &out)
        } else {
            if wf.ndim() != 2 {
                return Err(unsupported(node, "B must be 2-D"));
            }
            for (c, mut sl) in wf.axis_iter_mut(Axis(1)).enumerate() {
                let z = wz[if wz.len() == 1 { 0 } else { c }] as f32;
                sl.mapv_inplace(|v| v - z);
            }
            let out = Self::out_name(node);
            let wt = wf.reversed_axes().as_standard_layout().to_owned(); // [N, K]
            self.emit_fc_f32(node, xf, wt, None, ActBounds::NONE, &out)
        }
    }

    fn lower_matmul(&mut self, node: &NodeProto) -> Result<()> {
        let gemm = node.op_type == "Gemm";
        if gemm && attr_i(node, "transA", 0) != 0 {
            return Err(unsupported(node, "transA=1"));
        }
        let trans_b = gemm && attr_i(node, "transB", 0) != 0;
        let (alpha, beta) = (attr_f(node, "alpha", 1.0), attr_f(node, "beta", 1.0));
        let x = self.req_input(node, 0)?;
        let w = self.req_input(node, 1)?;
        let out = Self::out_name(node);
        // Quantized: DQ(act) × DQ(const int8) [+ DQ(const int32) bias] → [act] → Q.
        if let (
            Val::DqAct {
                src,
                scale: xs,
                zp: xz,
            },
            Val::DqConst {
                q: HostTensor::I8(wq),
                scale: ws,
                zp: wz,
                axis,
            },
        ) = (&x, &w)
        {
            let per_out_axis = if trans_b { 0 } else { 1 };
            let axis_ok = ws.len() == 1 || *axis == per_out_axis;
            let zp_uniform = wz.iter().all(|&z| z == wz[0]);
            if wq.ndim() == 2 && axis_ok && zp_uniform && alpha == 1.0 && beta == 1.0 {
                // Bias: Gemm's C, or an Add right after MatMul.
                let (bias_v, after_bias, bias_node) = if gemm {
                    (self.input_val(node, 2)?, out.clone(), None)
                } else {
                    match self.follow(&out).map(|i| (i, &self.nodes[i])) {
                        Some((i, n)) if n.op_type == "Add" => {
                            let other = if n.input[0] == out { 1 } else { 0 };
                            match self.input_val(n, other)? {
                                Some(
                                    v @ Val::DqConst {
                                        q: HostTensor::I32(_),
                                        ..
                                    },
                                ) => (Some(v), Self::out_name(n), Some(i)),
                                _ => (None, out.clone(), None),
                            }
                        }
                        _ => (None, out.clone(), None),
                    }
                };
                let bias_ok = matches!(
                    &bias_v,
                    None | Some(Val::DqConst {
                        q: HostTensor::I32(_),
                        ..
                    })
                );
                if bias_ok {
                    if let Some(tail) = self.match_qtail(&after_bias) {
                        let n_out = if trans_b {
                            wq.shape()[0]
                        } else {
                            wq.shape()[1]
                        };
                        let ws_full: Vec<f32> = if ws.len() == 1 {
                            vec![ws[0]]
                        } else {
                            ws.clone()
                        };
                        let bias = match &bias_v {
                            Some(Val::DqConst {
                                q: HostTensor::I32(bq),
                                scale: bs,
                                ..
                            }) if bq.len() == n_out => Some(requantize_bias(
                                bq.iter().copied().collect(),
                                bs,
                                *xs,
                                &ws_full,
                            )),
                            Some(_) => {
                                return Err(unsupported(
                                    node,
                                    "bias length differs from the output width",
                                ))
                            }
                            None => None,
                        };
                        let wmat = if trans_b {
                            wq.clone()
                        } else {
                            wq.clone().reversed_axes().as_standard_layout().to_owned()
                        };
                        let (src, xs, xz, wz0) = (src.clone(), *xs, *xz, wz[0] as i32);
                        let mut nodes = tail.nodes.clone();
                        nodes.extend(bias_node);
                        self.mark(&nodes);
                        return self.emit_fc_s8(
                            node,
                            src,
                            (xs, xz),
                            wmat,
                            wz0,
                            &ws_full,
                            bias,
                            &tail,
                        );
                    }
                }
            }
        }
        // Float path.
        let xa = self.float_act(&node.input[0], &node.op_type)?;
        let wf = self.const_input(node, 1)?.ok_or_else(|| {
            unsupported(node, "B must be a constant (matrix products of two runtime tensors are not supported yet)")
        })?;
        let mut wf = wf.to_f32_array();
        if wf.ndim() != 2 {
            return Err(unsupported(node, "B must be 2-D"));
        }
        if !trans_b {
            wf = wf.reversed_axes().as_standard_layout().to_owned();
        }
        if alpha != 1.0 {
            wf.mapv_inplace(|v| v * alpha);
        }
        let n_out = wf.shape()[0];
        let mut bias: Option<Vec<f32>> = None;
        let mut cur = out.clone();
        if gemm {
            if let Some(c) = self.const_input(node, 2)? {
                let c = c.to_f32_array();
                if c.len() != n_out && c.len() != 1 {
                    return Err(unsupported(node, "C must broadcast along the output width"));
                }
                bias = Some(
                    (0..n_out)
                        .map(|i| {
                            beta * c
                                .iter()
                                .nth(if c.len() == 1 { 0 } else { i })
                                .copied()
                                .unwrap_or(0.0)
                        })
                        .collect(),
                );
            } else if node.input.get(2).map(|s| !s.is_empty()).unwrap_or(false) {
                return Err(unsupported(node, "C must be constant"));
            }
        } else if let Some(i) = self.follow(&out) {
            let n = &self.nodes[i];
            if n.op_type == "Add" {
                let other = if n.input[0] == out { 1 } else { 0 };
                if let Some(c) = self.const_input(n, other)? {
                    if c.len() == n_out && c.shape().last() == Some(&n_out) {
                        bias = Some(c.to_f32_array().iter().copied().collect());
                        cur = Self::out_name(n);
                        self.mark(&[i]);
                    }
                }
            }
        }
        let mut act = ActBounds::NONE;
        if let Some((b, name, idx)) = self.match_act(&cur) {
            act = b;
            cur = name;
            self.mark(&[idx]);
        }
        self.emit_fc_f32(node, xa, wf, bias, act, &cur)
    }

    fn fc_input(&mut self, node: &NodeProto, x: Act, k: usize) -> Result<Act> {
        let x = self.in_rowmajor(x, &node.name)?;
        if x.shape.last() != Some(&k) {
            return Err(malformed(format!(
                "node '{}': input shape {:?} does not end in {k}",
                node.name, x.shape
            )));
        }
        Ok(x)
    }

    fn emit_fc_f32(
        &mut self,
        node: &NodeProto,
        x: Act,
        w: ArrayD<f32>,
        bias: Option<Vec<f32>>,
        act: ActBounds,
        out_name: &str,
    ) -> Result<()> {
        let (n, k) = (w.shape()[0], w.shape()[1]);
        let x = self.fc_input(node, x, k)?;
        let wd: Vec<f32> = w.iter().copied().collect();
        let wt = self
            .g
            .const_f32(&format!("{}.weight", node.name), vec![n, k], &wd);
        let bt = bias.map(|b| {
            self.g
                .const_f32(&format!("{}.bias", node.name), vec![n], &b)
        });
        let mut oshape = x.shape.clone();
        *oshape.last_mut().expect("rank ≥ 1") = n;
        let y = self
            .g
            .activation(out_name, DType::F32, oshape.clone(), None);
        self.g.push(
            OpCode::FullyConnected,
            vec![Some(x.t), Some(wt), bt],
            y,
            vec![f32_bits(act.lo), f32_bits(act.hi)],
            &node.name,
        );
        let perm = identity(oshape.len());
        self.vals.insert(
            out_name.to_string(),
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm,
            }),
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_fc_s8(
        &mut self,
        node: &NodeProto,
        x: Act,
        xq: (f32, i32),
        w: ArrayD<i8>,
        wz: i32,
        ws: &[f32],
        bias: Option<Vec<i32>>,
        tail: &QTail,
    ) -> Result<()> {
        let (n, k) = (w.shape()[0], w.shape()[1]);
        let x = self.fc_input(node, x, k)?;
        self.g.set_quant(x.t, Some(xq));
        let wd: Vec<i8> = w.iter().copied().collect();
        let wt = self.g.const_i8(
            &format!("{}.weight", node.name),
            vec![n, k],
            Some((ws[0], wz)),
            &wd,
        );
        let bt = bias.map(|b| {
            self.g
                .const_i32(&format!("{}.bias", node.name), vec![n], &b)
        });
        let rq = self.requant_tensor(&node.name, xq.0, ws, tail.scale);
        let mut oshape = x.shape.clone();
        *oshape.last_mut().expect("rank ≥ 1") = n;
        let y = self.g.activation(
            &tail.out_name,
            DType::I8,
            oshape.clone(),
            Some((tail.scale, tail.zp)),
        );
        let (lo, hi) = Self::act_i8(tail.act, tail.scale, tail.zp);
        self.g.push(
            OpCode::FullyConnected,
            vec![Some(x.t), Some(wt), bt, Some(rq)],
            y,
            vec![lo, hi],
            &node.name,
        );
        let perm = identity(oshape.len());
        self.vals.insert(
            tail.out_name.clone(),
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm,
            }),
        );
        Ok(())
    }

    fn lower_qlinear_matmul(&mut self, node: &NodeProto) -> Result<()> {
        let x = match self.req_input(node, 0)? {
            Val::Act(a) if self.g.tensors[a.t].dtype == DType::I8 => a,
            _ => return Err(unsupported(node, "A must be a runtime int8 tensor")),
        };
        let c = |i: usize| -> Result<HostTensor> {
            self.const_input(node, i)?
                .ok_or_else(|| unsupported(node, format!("input {i} must be constant")))
        };
        let xs = c(1)?.to_f64()[0] as f32;
        let xz = c(2)?.to_i64()[0] as i32;
        let w = match self.input_val(node, 3)? {
            Some(Val::Const(HostTensor::I8(w))) if w.ndim() == 2 => w,
            _ => return Err(unsupported(node, "B must be a constant 2-D int8 tensor")),
        };
        let ws: Vec<f32> = c(4)?.to_f64().iter().map(|&v| v as f32).collect();
        let wz = c(5)?.to_i64();
        if wz.iter().any(|&z| z != wz[0]) {
            return Err(unsupported(node, "per-column weight zero points"));
        }
        let ys = c(6)?.to_f64()[0] as f32;
        let yz = c(7)?.to_i64()[0] as i32;
        let tail = QTail {
            act: ActBounds::NONE,
            out_name: Self::out_name(node),
            scale: ys,
            zp: yz,
            nodes: vec![],
        };
        let wmat = w.reversed_axes().as_standard_layout().to_owned();
        self.emit_fc_s8(node, x, (xs, xz), wmat, wz[0] as i32, &ws, None, &tail)
    }

    /// Aligns two operands for an element-wise op: same layout, constants
    /// permuted to match. Returns (a tensor, b tensor, out logical shape, perm).
    fn binary_operands(
        &mut self,
        node: &NodeProto,
        a: Val,
        b: Val,
        float: bool,
    ) -> Result<(TId, TId, Vec<usize>, Vec<usize>)> {
        let to_act = |s: &mut Self, v: Val, idx: usize| -> Result<Option<Act>> {
            Ok(match v {
                Val::Act(a) => Some(a),
                Val::DqAct { src, .. } if !float => Some(src),
                Val::DqAct { .. } => Some(s.float_act(&node.input[idx], &node.op_type)?),
                _ => None,
            })
        };
        let aa = to_act(self, a.clone(), 0)?;
        let ba = to_act(self, b.clone(), 1)?;
        let (aa, ba) = match (aa, ba) {
            (Some(x), Some(y)) => {
                if x.shape.len() == y.shape.len() && x.perm == y.perm {
                    (x, y)
                } else {
                    let x = self.in_rowmajor(x, &node.name)?;
                    let y = self.in_rowmajor(y, &node.name)?;
                    (x, y)
                }
            }
            (Some(x), None) => {
                let c = self.binary_const(node, &b, &x, float)?;
                (x, c)
            }
            (None, Some(y)) => {
                let c = self.binary_const(node, &a, &y, float)?;
                (c, y)
            }
            (None, None) => {
                return Err(unsupported(
                    node,
                    "both operands constant (should have been folded)",
                ))
            }
        };
        let rank = aa.shape.len().max(ba.shape.len());
        let mut out = vec![0; rank];
        for (i, o) in out.iter_mut().enumerate() {
            let da = if i < rank - aa.shape.len() {
                1
            } else {
                aa.shape[i - (rank - aa.shape.len())]
            };
            let db = if i < rank - ba.shape.len() {
                1
            } else {
                ba.shape[i - (rank - ba.shape.len())]
            };
            if da != db && da != 1 && db != 1 {
                return Err(malformed(format!(
                    "node '{}': shapes {:?} and {:?} do not broadcast",
                    node.name, aa.shape, ba.shape
                )));
            }
            *o = da.max(db);
        }
        let perm = if aa.shape.len() == rank {
            aa.perm.clone()
        } else {
            ba.perm.clone()
        };
        let (ta, tb) = if perm == identity(rank) || (aa.perm == perm && ba.perm == perm) {
            (aa.t, ba.t)
        } else {
            let x = self.in_rowmajor(aa, &node.name)?;
            let y = self.in_rowmajor(ba, &node.name)?;
            return Ok((x.t, y.t, out.clone(), identity(out.len())));
        };
        Ok((ta, tb, out, perm))
    }

    /// A constant operand laid out like the activation `like` (same rank
    /// and permutation), as a float or int8 tensor.
    fn binary_const(&mut self, node: &NodeProto, v: &Val, like: &Act, float: bool) -> Result<Act> {
        let rank = like.shape.len();
        let (arr, q) = match v {
            Val::Const(c) if float => (c.to_f32_array().mapv(|x| x as f64), None),
            Val::DqConst {
                q: HostTensor::I8(qa),
                scale,
                zp,
                ..
            } if !float && scale.len() == 1 => {
                (qa.mapv(|x| x as f64), Some((scale[0], zp[0] as i32)))
            }
            v @ Val::DqConst { .. } if float => (dequant_const(v)?.mapv(|x| x as f64), None),
            _ => return Err(unsupported(node, "constant operand of an unsupported kind")),
        };
        if arr.ndim() > rank {
            return Err(unsupported(
                node,
                "constant operand of higher rank than the activation",
            ));
        }
        let mut shape = vec![1; rank - arr.ndim()];
        shape.extend_from_slice(arr.shape());
        let arr = arr
            .into_shape_with_order(IxDyn(&shape))
            .map_err(|e| malformed(e.to_string()))?;
        let phys = arr
            .permuted_axes(IxDyn(&like.perm))
            .as_standard_layout()
            .to_owned();
        let dims = phys.shape().to_vec();
        let t = match q {
            None => {
                let d: Vec<f32> = phys.iter().map(|&x| x as f32).collect();
                self.g.const_f32(&format!("{}.const", node.name), dims, &d)
            }
            Some(q) => {
                let d: Vec<i8> = phys.iter().map(|&x| x as i8).collect();
                self.g
                    .const_i8(&format!("{}.const", node.name), dims, Some(q), &d)
            }
        };
        Ok(Act {
            t,
            shape,
            perm: like.perm.clone(),
        })
    }

    fn lower_binary(&mut self, _i: usize, node: &NodeProto) -> Result<()> {
        let a = self.req_input(node, 0)?;
        let b = self.req_input(node, 1)?;
        let out = Self::out_name(node);
        // Constant folding.
        if let (Val::Const(x), Val::Const(y)) = (&a, &b) {
            let r = fold_binary(&node.op_type, x, y)
                .ok_or_else(|| unsupported(node, "folding this constant expression"))?;
            self.set(node, 0, Val::Const(r));
            return Ok(());
        }
        let opcode = match node.op_type.as_str() {
            "Add" => OpCode::Add,
            "Sub" => OpCode::Sub,
            "Mul" => OpCode::Mul,
            _ => OpCode::Div,
        };
        // Quantized Add/Mul: DQ(a) op DQ(b) → [act] → Q.
        let q_ok = matches!(opcode, OpCode::Add)
            || (opcode == OpCode::Mul && self.rounding == Rounding::TfliteFixedPoint);
        let is_q = |v: &Val| {
            matches!(
                v,
                Val::DqAct { .. }
                    | Val::DqConst {
                        q: HostTensor::I8(_),
                        ..
                    }
            )
        };
        if q_ok
            && is_q(&a)
            && is_q(&b)
            && (matches!(a, Val::DqAct { .. }) || matches!(b, Val::DqAct { .. }))
        {
            if let Some(tail) = self.match_qtail(&out) {
                let qa = dq_params(&a);
                let qb = dq_params(&b);
                if let (Some(qa), Some(qb)) = (qa, qb) {
                    self.mark(&tail.nodes);
                    let (ta, tb, shape, perm) = self.binary_operands(node, a, b, false)?;
                    self.g.set_quant(ta, Some(qa));
                    self.g.set_quant(tb, Some(qb));
                    let (lo, hi) = Self::act_i8(tail.act, tail.scale, tail.zp);
                    let mut params = vec![lo, hi];
                    if self.rounding == Rounding::TfliteFixedPoint {
                        if opcode == OpCode::Add {
                            let p = ember_runtime::kernels::elementwise::add_params_s8(
                                qa.0, qa.1, qb.0, qb.1, tail.scale, tail.zp, lo, hi,
                            );
                            params.extend([
                                p.left_shift,
                                p.a_mult,
                                p.a_shift,
                                p.b_mult,
                                p.b_shift,
                                p.out_mult,
                                p.out_shift,
                            ]);
                        } else {
                            let p = ember_runtime::kernels::elementwise::mul_params_s8(
                                qa.0, qa.1, qb.0, qb.1, tail.scale, tail.zp, lo, hi,
                            );
                            params.extend([p.out_mult, p.out_shift]);
                        }
                    }
                    let y = self.g.activation(
                        &tail.out_name,
                        DType::I8,
                        permuted(&shape, &perm),
                        Some((tail.scale, tail.zp)),
                    );
                    self.g
                        .push(opcode, vec![Some(ta), Some(tb)], y, params, &node.name);
                    self.vals
                        .insert(tail.out_name.clone(), Val::Act(Act { t: y, shape, perm }));
                    return Ok(());
                }
            }
        }
        let (ta, tb, shape, perm) = self.binary_operands(node, a, b, true)?;
        let mut act = ActBounds::NONE;
        let mut out_name = out;
        if let Some((bnd, name, idx)) = self.match_act(&out_name) {
            act = bnd;
            out_name = name;
            self.mark(&[idx]);
        }
        let y = self
            .g
            .activation(&out_name, DType::F32, permuted(&shape, &perm), None);
        self.g.push(
            opcode,
            vec![Some(ta), Some(tb)],
            y,
            vec![f32_bits(act.lo), f32_bits(act.hi)],
            &node.name,
        );
        self.vals
            .insert(out_name, Val::Act(Act { t: y, shape, perm }));
        Ok(())
    }

    fn lower_clamp(&mut self, node: &NodeProto) -> Result<()> {
        let out = Self::out_name(node);
        // Standalone int8 clamp: DQ → Relu/Clip → Q with the same params.
        if let Some(Val::DqAct { src, scale, zp }) = self.input_val(node, 0)? {
            if let Some(qi) = self.follow(&out) {
                let q = &self.nodes[qi];
                if q.op_type == "QuantizeLinear" && self.qparams(q)? == Some((scale, zp)) {
                    let b = self.clamp_bounds(node)?;
                    let (lo, hi) = Self::act_i8(b, scale, zp);
                    let qout = Self::out_name(q);
                    self.mark(&[qi]);
                    let dims = self.g.tensors[src.t].dims.clone();
                    self.g.set_quant(src.t, Some((scale, zp)));
                    let y = self.g.activation(&qout, DType::I8, dims, Some((scale, zp)));
                    self.g.push(
                        OpCode::Clamp,
                        vec![Some(src.t)],
                        y,
                        vec![lo, hi],
                        &node.name,
                    );
                    self.vals.insert(qout, Val::Act(Act { t: y, ..src }));
                    return Ok(());
                }
            }
        }
        let b = self.clamp_bounds(node)?;
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let dims = self.g.tensors[x.t].dims.clone();
        let y = self.g.activation(&out, DType::F32, dims, None);
        self.g.push(
            OpCode::Clamp,
            vec![Some(x.t)],
            y,
            vec![f32_bits(b.lo), f32_bits(b.hi)],
            &node.name,
        );
        self.vals.insert(out, Val::Act(Act { t: y, ..x }));
        Ok(())
    }

    fn clamp_bounds(&self, node: &NodeProto) -> Result<ActBounds> {
        if node.op_type == "Relu" {
            return Ok(ActBounds {
                lo: 0.0,
                hi: f32::INFINITY,
            });
        }
        let mut b = ActBounds {
            lo: attr_f(node, "min", f32::NEG_INFINITY),
            hi: attr_f(node, "max", f32::INFINITY),
        };
        if let Some(c) = self.const_input(node, 1)? {
            b.lo = c.to_f64()[0] as f32;
        } else if node.input.get(1).map(|s| !s.is_empty()).unwrap_or(false) {
            return Err(unsupported(node, "min must be constant"));
        }
        if let Some(c) = self.const_input(node, 2)? {
            b.hi = c.to_f64()[0] as f32;
        } else if node.input.get(2).map(|s| !s.is_empty()).unwrap_or(false) {
            return Err(unsupported(node, "max must be constant"));
        }
        Ok(b)
    }

    fn lower_pool(&mut self, node: &NodeProto) -> Result<()> {
        let global = node.op_type.starts_with("Global");
        let avg = node.op_type.contains("Average");
        let out = Self::out_name(node);
        let xv = self.req_input(node, 0)?;
        // Quantized: DQ → pool → Q with identical params stays int8.
        let qtail = match &xv {
            Val::DqAct { scale, zp, .. } => self
                .match_qtail(&out)
                .filter(|t| t.scale == *scale && t.zp == *zp),
            _ => None,
        };
        let (x, quant) = match (&xv, &qtail) {
            (Val::DqAct { src, scale, zp }, Some(_)) => (src.clone(), Some((*scale, *zp))),
            _ => (self.float_act(&node.input[0], &node.op_type)?, None),
        };
        let x = self.nhwc(x, node)?;
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (kh, kw, geo, (oh, ow)) = if global {
            (h, w, [1, 1, 1, 1, 0, 0, 0, 0], (1, 1))
        } else {
            let k = attr_ints(node, "kernel_shape")
                .ok_or_else(|| malformed(format!("node '{}': no kernel_shape", node.name)))?;
            if k.len() != 2 {
                return Err(unsupported(node, "only 2-D pooling"));
            }
            if attr_ints(node, "dilations")
                .map(|d| d.iter().any(|&v| v != 1))
                .unwrap_or(false)
            {
                return Err(unsupported(node, "dilated pooling"));
            }
            let (kh, kw) = (k[0] as usize, k[1] as usize);
            let (geo, o) = Self::conv_geometry(node, (h, w), (kh, kw), true)?;
            (kh, kw, geo, o)
        };
        let include_pad = attr_i(node, "count_include_pad", 0) as i32;
        let oshape = vec![n, c, oh, ow];
        let opcode = if avg {
            OpCode::AvgPool2d
        } else {
            OpCode::MaxPool2d
        };
        let mut params = vec![
            kh as i32,
            kw as i32,
            geo[0] as i32,
            geo[1] as i32,
            geo[4] as i32,
            geo[5] as i32,
            geo[6] as i32,
            geo[7] as i32,
            include_pad,
        ];
        let (dtype, out_name) = match (&qtail, quant) {
            (Some(t), Some(q)) => {
                self.mark(&t.nodes);
                self.g.set_quant(x.t, Some(q));
                let (lo, hi) = Self::act_i8(t.act, q.0, q.1);
                params.extend([lo, hi]);
                (DType::I8, t.out_name.clone())
            }
            _ => {
                let mut act = ActBounds::NONE;
                let mut name = out;
                if let Some((b, nm, idx)) = self.match_act(&name) {
                    act = b;
                    name = nm;
                    self.mark(&[idx]);
                }
                params.extend([f32_bits(act.lo), f32_bits(act.hi)]);
                (DType::F32, name)
            }
        };
        let y = self
            .g
            .activation(&out_name, dtype, permuted(&oshape, &NHWC), quant);
        self.g.push(opcode, vec![Some(x.t)], y, params, &node.name);
        self.vals.insert(
            out_name,
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm: NHWC.to_vec(),
            }),
        );
        Ok(())
    }

    fn lower_softmax(&mut self, node: &NodeProto) -> Result<()> {
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
                let mut params = vec![f32_bits(1.0)];
                if self.rounding == Rounding::TfliteFixedPoint {
                    let (m, s, d) = softmax_params_s8(*scale, 1.0);
                    params.extend([s, d, m]);
                }
                let y = self.g.activation(
                    &tail.out_name,
                    DType::I8,
                    x.shape.clone(),
                    Some((tail.scale, tail.zp)),
                );
                self.g
                    .push(OpCode::Softmax, vec![Some(x.t)], y, params, &node.name);
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
            vec![f32_bits(1.0)],
            &node.name,
        );
        self.vals.insert(out, Val::Act(Act { t: y, ..x }));
        Ok(())
    }

    fn new_shape(&self, node: &NodeProto, in_shape: &[usize]) -> Result<Vec<usize>> {
        let numel: usize = in_shape.iter().product();
        match node.op_type.as_str() {
            "Reshape" => {
                let s = self.const_input(node, 1)?.ok_or_else(|| {
                    unsupported(node, "the target shape must be known at compile time")
                })?;
                let s = s.to_i64();
                let allowzero = attr_i(node, "allowzero", 0) != 0;
                let mut out = Vec::with_capacity(s.len());
                let mut infer = None;
                for (i, &d) in s.iter().enumerate() {
                    match d {
                        -1 if infer.is_none() => {
                            infer = Some(i);
                            out.push(1);
                        }
                        0 if !allowzero => out.push(*in_shape.get(i).ok_or_else(|| {
                            malformed(format!(
                                "node '{}': 0 in shape past the input rank",
                                node.name
                            ))
                        })?),
                        d if d >= 0 => out.push(d as usize),
                        _ => {
                            return Err(malformed(format!(
                                "node '{}': invalid target shape {s:?}",
                                node.name
                            )))
                        }
                    }
                }
                if let Some(i) = infer {
                    let known: usize = out.iter().product();
                    if known == 0 || !numel.is_multiple_of(known) {
                        return Err(malformed(format!(
                            "node '{}': cannot infer -1 in {s:?} for {numel} elements",
                            node.name
                        )));
                    }
                    out[i] = numel / known;
                }
                Ok(out)
            }
            "Flatten" => {
                let r = in_shape.len() as i64;
                let mut axis = attr_i(node, "axis", 1);
                if axis < 0 {
                    axis += r;
                }
                if axis < 0 || axis > r {
                    return Err(malformed(format!(
                        "node '{}': flatten axis out of range",
                        node.name
                    )));
                }
                let a: usize = in_shape[..axis as usize].iter().product();
                Ok(vec![a, numel / a.max(1)])
            }
            "Squeeze" | "Unsqueeze" => {
                let axes = match self.const_input(node, 1)? {
                    Some(a) => a.to_i64(),
                    None if node.input.get(1).is_some_and(|n| !n.is_empty()) => {
                        return Err(unsupported(node, "the axes must be known at compile time"))
                    }
                    None => attr_ints(node, "axes").unwrap_or_default(),
                };
                if node.op_type == "Squeeze" {
                    let r = in_shape.len() as i64;
                    let axes: Vec<usize> = axes
                        .iter()
                        .map(|&a| (if a < 0 { a + r } else { a }) as usize)
                        .collect();
                    Ok(in_shape
                        .iter()
                        .enumerate()
                        .filter(|(i, &d)| !(d == 1 && (axes.is_empty() || axes.contains(i))))
                        .map(|(_, &d)| d)
                        .collect())
                } else {
                    let r = (in_shape.len() + axes.len()) as i64;
                    let mut axes: Vec<usize> = axes
                        .iter()
                        .map(|&a| (if a < 0 { a + r } else { a }) as usize)
                        .collect();
                    axes.sort();
                    let mut out = in_shape.to_vec();
                    for a in axes {
                        if a > out.len() {
                            return Err(malformed(format!(
                                "node '{}': unsqueeze axis out of range",
                                node.name
                            )));
                        }
                        out.insert(a, 1);
                    }
                    Ok(out)
                }
            }
            _ => unreachable!("only reshape-like ops"),
        }
    }

    fn lower_reshape(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.req_input(node, 0)?;
        let in_shape = match &x {
            Val::Const(c) => c.shape().to_vec(),
            Val::DqConst { q, .. } => q.shape().to_vec(),
            Val::Act(a) | Val::DqAct { src: a, .. } => a.shape.clone(),
        };
        let shape = self.new_shape(node, &in_shape)?;
        if shape.iter().product::<usize>() != in_shape.iter().product::<usize>() {
            return Err(malformed(format!(
                "node '{}': cannot reshape {in_shape:?} to {shape:?}",
                node.name
            )));
        }
        let out = Self::out_name(node);
        let v = match x {
            Val::Const(c) => Val::Const(c.map_layout(|a| {
                a.into_shape_with_order(IxDyn(&shape))
                    .map_err(|e| malformed(e.to_string()))
            })?),
            Val::DqConst { .. } => Val::Const(HostTensor::F32(
                dequant_const(&x)?
                    .into_shape_with_order(IxDyn(&shape))
                    .map_err(|e| malformed(e.to_string()))?,
            )),
            Val::Act(a) => Val::Act(self.reshape_act(a, shape, &out)?),
            Val::DqAct { src, scale, zp } => Val::DqAct {
                src: self.reshape_act(src, shape, &out)?,
                scale,
                zp,
            },
        };
        self.set(node, 0, v);
        Ok(())
    }

    fn reshape_act(&mut self, a: Act, shape: Vec<usize>, name: &str) -> Result<Act> {
        let a = self.in_rowmajor(a, name)?;
        let t = self.g.alias(a.t, name, shape.clone());
        let perm = identity(shape.len());
        Ok(Act { t, shape, perm })
    }

    fn lower_transpose(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.req_input(node, 0)?;
        let rank = match &x {
            Val::Const(c) => c.shape().len(),
            Val::DqConst { q, .. } => q.shape().len(),
            Val::Act(a) | Val::DqAct { src: a, .. } => a.shape.len(),
        };
        let p: Vec<usize> = match attr_ints(node, "perm") {
            Some(p) => p.iter().map(|&v| v as usize).collect(),
            None => (0..rank).rev().collect(),
        };
        let mut sorted = p.clone();
        sorted.sort();
        if sorted != identity(rank) {
            return Err(malformed(format!(
                "node '{}': perm {p:?} is not a permutation of rank {rank}",
                node.name
            )));
        }
        let tr = |a: Act| -> Act {
            let inv = inverse(&p);
            Act {
                t: a.t,
                shape: permuted(&a.shape, &p),
                perm: a.perm.iter().map(|&q| inv[q]).collect(),
            }
        };
        let v = match x {
            Val::Const(c) => Val::Const(c.map_layout(|a| Ok(a.permuted_axes(IxDyn(&p))))?),
            Val::DqConst { .. } => Val::Const(HostTensor::F32(
                dequant_const(&x)?
                    .permuted_axes(IxDyn(&p))
                    .as_standard_layout()
                    .to_owned(),
            )),
            Val::Act(a) => Val::Act(tr(a)),
            Val::DqAct { src, scale, zp } => Val::DqAct {
                src: tr(src),
                scale,
                zp,
            },
        };
        self.set(node, 0, v);
        Ok(())
    }

    fn lower_batchnorm(&mut self, node: &NodeProto) -> Result<()> {
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
        let mul: Vec<f64> = (0..ch).map(|i| gamma[i] / (var[i] + eps).sqrt()).collect();
        let add: Vec<f64> = (0..ch).map(|i| beta[i] - mean[i] * mul[i]).collect();
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
                && op.params[op.params.len() - 2] == f32_bits(f32::NEG_INFINITY)
                && op.params[op.params.len() - 1] == f32_bits(f32::INFINITY);
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
                let n = self.g.ops[pi].params.len();
                self.g.ops[pi].params[n - 2] = f32_bits(act.lo);
                self.g.ops[pi].params[n - 1] = f32_bits(act.hi);
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
            vec![f32_bits(f32::NEG_INFINITY), f32_bits(f32::INFINITY)],
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
            vec![f32_bits(f32::NEG_INFINITY), f32_bits(f32::INFINITY)],
            &node.name,
        );
        self.vals.insert(out, Val::Act(Act { t: t2, ..x }));
        Ok(())
    }

    fn lower_pad(&mut self, node: &NodeProto) -> Result<()> {
        let mode = attr_s(node, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(unsupported(
                node,
                format!("mode={mode} (only constant padding)"),
            ));
        }
        let pads = match self.const_input(node, 1)? {
            Some(p) => p.to_i64(),
            None => {
                attr_ints(node, "pads").ok_or_else(|| unsupported(node, "pads must be constant"))?
            }
        };
        let value = self
            .const_input(node, 2)?
            .map(|v| v.to_f64()[0])
            .unwrap_or(attr_f(node, "value", 0.0) as f64);
        if node.input.get(3).map(|s| !s.is_empty()).unwrap_or(false) {
            return Err(unsupported(node, "the axes input"));
        }
        let xv = self.req_input(node, 0)?;
        let (x, quant) = match &xv {
            Val::DqAct { src, scale, zp } => (src.clone(), Some((*scale, *zp))),
            _ => (self.float_act(&node.input[0], &node.op_type)?, None),
        };
        let r = x.shape.len();
        if pads.len() != 2 * r || pads.iter().any(|&p| p < 0) {
            return Err(unsupported(node, "pads must be 2×rank non-negative values"));
        }
        let (before, after): (Vec<usize>, Vec<usize>) = (
            pads[..r].iter().map(|&p| p as usize).collect(),
            pads[r..].iter().map(|&p| p as usize).collect(),
        );
        let shape: Vec<usize> = (0..r).map(|i| x.shape[i] + before[i] + after[i]).collect();
        let mut params: Vec<i32> = permuted(&before, &x.perm)
            .iter()
            .chain(permuted(&after, &x.perm).iter())
            .map(|&v| v as i32)
            .collect();
        let out = Self::out_name(node);
        let (dtype, v) = match quant {
            Some((s, z)) => {
                self.g.set_quant(x.t, quant);
                (
                    DType::I8,
                    ((value as f32 / s).round_ties_even() as i32 + z).clamp(-128, 127),
                )
            }
            None => (DType::F32, f32_bits(value as f32)),
        };
        params.push(v);
        let y = self
            .g
            .activation(&out, dtype, permuted(&shape, &x.perm), quant);
        self.g
            .push(OpCode::Pad, vec![Some(x.t)], y, params, &node.name);
        let act = Act {
            t: y,
            shape,
            perm: x.perm,
        };
        let v = match quant {
            Some((scale, zp)) => Val::DqAct {
                src: act,
                scale,
                zp,
            },
            None => Val::Act(act),
        };
        self.vals.insert(out, v);
        Ok(())
    }

    fn lower_concat(&mut self, node: &NodeProto) -> Result<()> {
        let vals: Vec<Val> = (0..node.input.len())
            .map(|i| self.req_input(node, i))
            .collect::<Result<_>>()?;
        if vals.iter().all(|v| matches!(v, Val::Const(_))) {
            let arrs: Vec<ArrayD<f64>> = vals
                .iter()
                .map(|v| match v {
                    Val::Const(c) => {
                        ArrayD::from_shape_vec(IxDyn(c.shape()), c.to_f64()).expect("shape")
                    }
                    _ => unreachable!(),
                })
                .collect();
            let rank = arrs[0].ndim() as i64;
            let mut axis = attr_i(node, "axis", 0);
            if axis < 0 {
                axis += rank;
            }
            let views: Vec<_> = arrs.iter().map(|a| a.view()).collect();
            let cat = ndarray::concatenate(Axis(axis as usize), &views)
                .map_err(|e| malformed(format!("node '{}': {e}", node.name)))?;
            let like = match &vals[0] {
                Val::Const(c) => c.clone(),
                _ => unreachable!(),
            };
            let r = like.map_layout(|_| Ok(cat.clone()))?;
            self.set(node, 0, Val::Const(r));
            return Ok(());
        }
        if node.input.len() > ember_runtime::format::MAX_OP_INPUTS {
            return Err(unsupported(node, "more than 8 inputs"));
        }
        let mut acts = vec![];
        for i in 0..node.input.len() {
            let a = self.float_act(&node.input[i], &node.op_type)?;
            acts.push(self.in_rowmajor(a, &node.name)?);
        }
        let rank = acts[0].shape.len() as i64;
        let mut axis = attr_i(node, "axis", 0);
        if axis < 0 {
            axis += rank;
        }
        if axis < 0 || axis >= rank {
            return Err(malformed(format!(
                "node '{}': axis out of range",
                node.name
            )));
        }
        let mut shape = acts[0].shape.clone();
        shape[axis as usize] = acts.iter().map(|a| a.shape[axis as usize]).sum();
        let out = Self::out_name(node);
        let y = self.g.activation(&out, DType::F32, shape.clone(), None);
        self.g.push(
            OpCode::Concat,
            acts.iter().map(|a| Some(a.t)).collect(),
            y,
            vec![axis as i32],
            &node.name,
        );
        let perm = identity(shape.len());
        self.vals.insert(out, Val::Act(Act { t: y, shape, perm }));
        Ok(())
    }
}

/// Quantization of a `DqAct` or scalar-scale `DqConst` operand.
fn dq_params(v: &Val) -> Option<(f32, i32)> {
    match v {
        Val::DqAct { scale, zp, .. } => Some((*scale, *zp)),
        Val::DqConst { scale, zp, .. } if scale.len() == 1 => Some((scale[0], zp[0] as i32)),
        _ => None,
    }
}

/// Dequantizes a `DqConst` on the host.
fn dequant_const(v: &Val) -> Result<ArrayD<f32>> {
    let Val::DqConst { q, scale, zp, axis } = v else {
        return Err(malformed("not a dequantized constant"));
    };
    let vals = q.to_f64();
    let shape = q.shape().to_vec();
    let inner: usize = shape.iter().skip(axis + 1).product();
    let data: Vec<f32> = vals
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = if scale.len() == 1 {
                0
            } else {
                (i / inner.max(1)) % shape[*axis]
            };
            ((x - zp[c] as f64) * scale[c] as f64) as f32
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| malformed(e.to_string()))
}

/// Re-expresses an int32 bias in the accumulator scale `x_scale × w_scale[c]`
/// when the model stored it in another scale (keeps it untouched otherwise).
fn requantize_bias(b: Vec<i32>, bias_scale: &[f32], x_scale: f32, w_scale: &[f32]) -> Vec<i32> {
    b.iter()
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
        .collect()
}

/// ONNX filter `[Co, Ci/g, Kh, Kw]` → Ember layout; returns (data, dims,
/// opcode, groups-or-multiplier param).
fn pack_filter(
    w: &ArrayD<f64>,
    depthwise: bool,
    groups: usize,
) -> (Vec<f64>, Vec<usize>, OpCode, usize) {
    let s = w.shape();
    let (co, cig, kh, kw) = (s[0], s[1], s[2], s[3]);
    if depthwise {
        // [Co, 1, Kh, Kw] → [1, Kh, Kw, Co]
        let p = w.clone().permuted_axes(IxDyn(&[1, 2, 3, 0]));
        let data = p.as_standard_layout().iter().copied().collect();
        let ci = groups;
        (data, vec![1, kh, kw, co], OpCode::DepthwiseConv2d, co / ci)
    } else {
        let p = w.clone().permuted_axes(IxDyn(&[0, 2, 3, 1]));
        let data = p.as_standard_layout().iter().copied().collect();
        (data, vec![co, kh, kw, cig], OpCode::Conv2d, groups)
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

fn fold_binary(op: &str, a: &HostTensor, b: &HostTensor) -> Option<HostTensor> {
    let x = ArrayD::from_shape_vec(IxDyn(a.shape()), a.to_f64()).ok()?;
    let y = ArrayD::from_shape_vec(IxDyn(b.shape()), b.to_f64()).ok()?;
    let r = match op {
        "Add" => &x + &y,
        "Sub" => &x - &y,
        "Mul" => &x * &y,
        "Div" => &x / &y,
        _ => return None,
    };
    let like = if a.shape().len() >= b.shape().len() {
        a
    } else {
        b
    };
    like.map_layout(|_| Ok(r.clone())).ok()
}

impl HostTensor {
    fn to_i64_tensor(&self) -> HostTensor {
        HostTensor::I64(
            ArrayD::from_shape_vec(IxDyn(self.shape()), self.to_i64()).expect("same element count"),
        )
    }
}

/// Element type and fixed shape of a graph input.
fn value_info(
    v: &tract_onnx::pb::ValueInfoProto,
    overrides: &HashMap<String, Vec<usize>>,
) -> Result<(DType, Vec<usize>)> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
    use tract_onnx::pb::type_proto::Value as Ty;
    let Some(Ty::TensorType(tt)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(malformed(format!(
            "graph input '{}' is not a tensor",
            v.name
        )));
    };
    let dtype = match tt.elem_type {
        1 => DType::F32,
        3 => DType::I8,
        2 => DType::U8,
        6 => DType::I32,
        // int64 ids and masks run as int32: values past 2^31 are not token
        // ids, and 64-bit lanes would double their memory on the device.
        7 => DType::I32,
        other => {
            return Err(CompileError::Unsupported {
                op_type: "graph input".into(),
                node: v.name.clone(),
                what: format!(
                    "element type {other} (supported: float, int8, uint8, int32, int64 as int32)"
                ),
            })
        }
    };
    if let Some(s) = overrides.get(&v.name) {
        return Ok((dtype, s.clone()));
    }
    let dims = tt.shape.as_ref().map(|s| s.dim.clone()).unwrap_or_default();
    let mut shape = vec![];
    for (i, d) in dims.iter().enumerate() {
        match &d.value {
            Some(Dim::DimValue(x)) if *x > 0 => shape.push(*x as usize),
            other => {
                let what = match other {
                    Some(Dim::DimParam(p)) => format!("dimension {i} is the symbol '{p}'"),
                    _ => format!("dimension {i} is unknown"),
                };
                return Err(CompileError::DynamicShape {
                    value: v.name.clone(),
                    node: "graph input".into(),
                    what: format!(
                        "{what}; fix it at compile time with --shape {}=D0xD1x…",
                        v.name
                    ),
                });
            }
        }
    }
    Ok((dtype, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_perm() {
        assert_eq!(inverse(&[0, 2, 3, 1]), vec![0, 3, 1, 2]);
    }
}
