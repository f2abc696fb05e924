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
//!
//! Each ONNX operator is lowered in one place: [`op_table::OPS`] maps every
//! `op_type` the compiler accepts to its lowering function, which lives in
//! the module of its operator family (`conv`, `matmul`, `elementwise`, …),
//! with the data types and attributes it supports. Shared machinery has its
//! own modules: `attrs` (node attributes), `fusion` (matching the nodes a
//! pattern absorbs), `layout` (permutations, views, transposes), `fold`
//! (compile-time evaluation of constants), `quantize` (Q/DQ values and
//! requantization constants).

use std::collections::{HashMap, HashSet};

use ember_runtime::format::OpCode;
use ember_runtime::ops::NoParams;
use ember_runtime::{DType, Rounding};
use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::{GraphProto, NodeProto};

pub(crate) mod attrs;
mod cast;
mod compare;
mod conv;
mod conv_transpose;
mod dynamic_quant;
mod einsum;
mod elementwise;
mod fold;
mod fusion;
mod gather_slice;
mod index;
mod layout;
mod matmul;
pub(crate) mod normalization;
pub(crate) mod op_table;
mod pool;
mod quantize;
mod rearrange;
mod recurrent;
mod reduce;
mod resize;
pub(crate) mod shape;
mod softmax;
mod transformer;

use fold::{const_bytes, runtime_dtype};
use layout::identity;

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

impl Val {
    /// Its logical shape.
    fn shape(&self) -> &[usize] {
        match self {
            Val::Const(c) => c.shape(),
            Val::DqConst { q, .. } => q.shape(),
            Val::Act(a) | Val::DqAct { src: a, .. } => &a.shape,
        }
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

/// Lowering state.
pub(crate) struct Lowerer<'p> {
    pub g: Graph,
    nodes: &'p [NodeProto],
    vals: HashMap<String, Val>,
    consumers: HashMap<String, Vec<usize>>,
    graph_outputs: HashSet<String>,
    /// Declared ONNX element types of the graph outputs.
    output_types: HashMap<String, i32>,
    /// ONNX element types known by name: graph inputs and outputs,
    /// initializers, value_info, and the outputs of Constant and Cast
    /// (what `CastLike` casts to).
    elem_types: HashMap<String, i32>,
    done: Vec<bool>,
    rounding: Rounding,
    /// The model's version of the default ONNX domain (some operators
    /// changed meaning across versions).
    opset: i64,
    /// Dequantized copies already emitted, by (source, scale bits, zero point).
    dq_cache: HashMap<(TId, u32, i32), TId>,
    /// f32 copies of 16-bit float values already emitted, by source.
    widened: HashMap<TId, TId>,
    /// Values produced by the dynamic quantization pattern, by name
    /// ([`dynamic_quant`]).
    dynq: HashMap<String, dynamic_quant::DynQ>,
}

impl<'p> Lowerer<'p> {
    /// Prepares lowering of `graph`, with graph inputs of the given shapes.
    pub fn new(
        graph: &'p GraphProto,
        rounding: Rounding,
        opset: i64,
        input_shapes: &HashMap<String, Vec<usize>>,
    ) -> Result<Self> {
        let mut lw = Lowerer {
            g: Graph::default(),
            nodes: &graph.node,
            vals: HashMap::new(),
            consumers: HashMap::new(),
            graph_outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
            output_types: graph
                .output
                .iter()
                .filter_map(|o| {
                    let tract_onnx::pb::type_proto::Value::TensorType(t) =
                        o.r#type.as_ref()?.value.as_ref()?;
                    Some((o.name.clone(), t.elem_type))
                })
                .collect(),
            done: vec![false; graph.node.len()],
            rounding,
            opset,
            dq_cache: HashMap::new(),
            widened: HashMap::new(),
            elem_types: HashMap::new(),
            dynq: HashMap::new(),
        };
        let mut seen = HashSet::new();
        for v in &graph.input {
            if !seen.insert(v.name.as_str()) {
                return Err(malformed(format!(
                    "graph input '{}' is declared twice",
                    v.name
                )));
            }
        }
        for v in graph
            .input
            .iter()
            .chain(&graph.output)
            .chain(&graph.value_info)
        {
            if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
                v.r#type.as_ref().and_then(|t| t.value.as_ref())
            {
                lw.elem_types.insert(v.name.clone(), t.elem_type);
            }
        }
        for init in &graph.initializer {
            lw.elem_types.insert(init.name.clone(), init.data_type);
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
            let mut a = Act { t, shape, perm };
            if dtype.is_edge_only() {
                // Computed in f32 / i32 from here on.
                let wide = if dtype.is_float() {
                    DType::F32
                } else {
                    DType::I32
                };
                a = lw.emit_cast(a, wide, &format!("{}.{}", inp.name, wide.name()));
            }
            lw.vals.insert(inp.name.clone(), Val::Act(a));
        }
        if lw.g.inputs.is_empty() {
            return Err(malformed("the graph has no runtime inputs"));
        }
        Ok(lw)
    }

    /// Lowers every node, then binds the graph outputs.
    pub fn run(mut self, output_names: &[String], progress: &dyn Fn(u64, u64)) -> Result<Graph> {
        let n = self.nodes.len() as u64;
        for i in 0..self.nodes.len() {
            progress(i as u64, n);
            if self.done[i] {
                continue;
            }
            let node = &self.nodes[i];
            self.lower_node(i, node)?;
        }
        progress(n, n);
        for name in output_names {
            let v = self.vals.get(name).cloned().ok_or_else(|| {
                malformed(format!("graph output '{name}' is not produced by any node"))
            })?;
            let a = match v {
                Val::Act(a) => a,
                Val::DqAct { .. } => self.float_act(name, "graph output")?,
                // A constant output (everything before it folded): copied
                // from the blob into the output each invoke.
                Val::Const(c) => self.output_const(name, &c),
                v @ Val::DqConst { .. } => {
                    let c = HostTensor::F32(dequant_const(&v)?);
                    self.output_const(name, &c)
                }
            };
            let mut a = self.in_rowmajor(a, name)?;
            // A 16-bit output is computed wide and converted at the end.
            let declared = self
                .output_types
                .get(name)
                .and_then(|&t| cast::runtime_dtype_of(t));
            if let Some(d) = declared.filter(|d| d.is_edge_only()) {
                if self.g.tensors[a.t].dtype != d {
                    a = self.emit_cast(a, d, &format!("{name}.{}", d.name()));
                }
            }
            let mut t = a.t;
            // An output must own its bytes: copy if it is a graph input,
            // another output, or a view.
            let root = self.g.tensors[t].alias_of.unwrap_or(t);
            if self.g.inputs.contains(&root)
                || self.g.tensors[root].data.is_some()
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
                self.g.push(OpCode::Copy, vec![Some(t)], c, &NoParams, name);
                t = c;
            }
            self.g.tensors[t].dims = a.shape.clone();
            self.g.tensors[t].name = name.clone();
            self.g.outputs.push(t);
        }
        Ok(self.g)
    }

    /// Lowers one node: the dynamic-quantization pattern first (anything
    /// reading one of its values must be part of it), then the node's entry
    /// in [`op_table::OPS`].
    fn lower_node(&mut self, i: usize, node: &NodeProto) -> Result<()> {
        let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        if !default_domain && node.domain != op_table::MS_DOMAIN {
            return Err(attrs::unsupported(
                node,
                format!(
                    "operators of domain '{}' are not supported (only ONNX's and onnxruntime's com.microsoft)",
                    node.domain
                ),
            ));
        }
        // Only Constant makes its value from attributes alone; every other
        // operator reads its first input (lowerings may index it).
        if node.op_type != "Constant" && node.input.first().is_none_or(|s| s.is_empty()) {
            return Err(malformed(format!(
                "node '{}' ({}) has no input",
                node.name, node.op_type
            )));
        }
        if self.lower_dynq(node)? {
            return Ok(());
        }
        match op_table::find(&node.domain, &node.op_type) {
            Some(op) => (op.lower)(self, i, node),
            None => Err(op_table::unknown_op(node)),
        }
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

    fn input_rank(&self, node: &NodeProto, i: usize) -> Option<usize> {
        Some(self.input_val(node, i).ok()??.shape().len())
    }

    /// A constant as a runtime-readable tensor of `dtype`, laid out row-major.
    fn const_act(&mut self, node: &NodeProto, c: &HostTensor, dtype: DType, what: &str) -> Act {
        let shape = c.shape().to_vec();
        let t = self.g.constant(
            &format!("{}.{what}", node.name),
            dtype,
            shape.clone(),
            None,
            const_bytes(c, dtype),
        );
        Act {
            t,
            perm: identity(shape.len()),
            shape,
        }
    }

    /// Input `i` as a row-major runtime tensor; constants become constant
    /// tensors of `dtype` (default: their own, int64 as int32).
    fn runtime_operand(&mut self, node: &NodeProto, i: usize, dtype: Option<DType>) -> Result<Act> {
        let a = match self.req_input(node, i)? {
            Val::Act(a) => a,
            Val::DqAct { .. } => self.float_act(&node.input[i], &node.op_type)?,
            Val::Const(c) => {
                let dt = dtype.unwrap_or_else(|| runtime_dtype(&c));
                return Ok(self.const_act(node, &c, dt, &format!("in{i}")));
            }
            v @ Val::DqConst { .. } => {
                let c = HostTensor::F32(dequant_const(&v)?);
                return Ok(self.const_act(node, &c, DType::F32, &format!("in{i}")));
            }
        };
        self.in_rowmajor(a, &node.name)
    }

    /// A constant graph output's value, as a constant tensor.
    fn output_const(&mut self, name: &str, c: &HostTensor) -> Act {
        let dt = runtime_dtype(c);
        let shape = c.shape().to_vec();
        let t = self.g.constant(
            &format!("{name}.value"),
            dt,
            shape.clone(),
            None,
            const_bytes(c, dt),
        );
        Act {
            t,
            perm: identity(shape.len()),
            shape,
        }
    }

    /// The ONNX element type of value `name`: declared, or that of the
    /// runtime dtype carrying it.
    fn elem_type(&self, name: &str) -> Option<i32> {
        if let Some(&t) = self.elem_types.get(name) {
            return Some(t);
        }
        let dtype = match self.vals.get(name)? {
            Val::Act(a) => self.g.tensors[a.t].dtype,
            Val::DqAct { .. } | Val::DqConst { .. } => DType::F32,
            Val::Const(c) => fold::runtime_dtype(c),
        };
        Some(match dtype {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::F16 => 10,
            DType::BF16 => 16,
            DType::F8E4M3Fn => 17,
            DType::F8E4M3FnUz => 18,
            DType::F8E5M2 => 19,
            DType::F8E5M2FnUz => 20,
        })
    }

    fn new_act(&mut self, name: &str, dtype: DType, shape: Vec<usize>) -> Act {
        let t = self.g.activation(name, dtype, shape.clone(), None);
        Act {
            t,
            perm: identity(shape.len()),
            shape,
        }
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
    // int64 ids and masks run as int32: values past 2^31 are not token ids,
    // and 64-bit lanes would double their memory on the device. Double runs
    // as float: an edge device has no use for 64-bit lanes, and every
    // kernel is f32. Booleans are bytes 0/1, as the comparisons produce
    // them. The 16-bit types are converted to f32 / i32 on the way in.
    let dtype = cast::runtime_dtype_of(tt.elem_type).ok_or_else(|| CompileError::Unsupported {
        op_type: "graph input".into(),
        node: v.name.clone(),
        what: format!(
            "element type {} (type {}) is not supported (float, double as float, float16, bfloat16, int8, uint8, int16, uint16, int32, int64 as int32, bool are)",
            crate::tensor::onnx_type_name(tt.elem_type),
            tt.elem_type
        ),
    })?;
    if let Some(s) = overrides.get(&v.name) {
        if let Some(i) = s.iter().position(|&d| d == 0) {
            return Err(CompileError::Unsupported {
                op_type: "graph input".into(),
                node: v.name.clone(),
                what: format!("dimension {i} is 0: empty tensors are not supported"),
            });
        }
        return within_limit(v, dtype, s.clone());
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
    within_limit(v, dtype, shape)
}

/// Refuses a graph input larger than a tensor can be (4 GiB, as the blob
/// checks before writing), before any shape arithmetic downstream can
/// overflow on it (an input [1, 49, 2^63 - 1, 1] made Reshape's element
/// count overflow; found by the compile_onnx fuzz target).
fn within_limit(
    v: &tract_onnx::pb::ValueInfoProto,
    dtype: DType,
    shape: Vec<usize>,
) -> Result<(DType, Vec<usize>)> {
    let bytes = shape
        .iter()
        .try_fold(dtype.size() as u64, |a, &d| a.checked_mul(d as u64));
    if bytes.is_none_or(|b| b > u32::MAX as u64) {
        return Err(CompileError::Unsupported {
            op_type: "graph input".into(),
            node: v.name.clone(),
            what: format!(
                "shape {shape:?} of {} takes {} (Ember's tensors hold at most 4 GiB)",
                dtype.name(),
                bytes.map_or("more than 2^64 bytes".into(), |b| format!("{b} bytes"))
            ),
        });
    }
    Ok((dtype, shape))
}
