//! Lowering of what transformer graphs use beyond CNN operators: MatMul of
//! two runtime tensors (fused into attention when the `MatMul → scale →
//! [+ mask] → Softmax → MatMul` pattern is there), LayerNormalization,
//! the erf GELU (fused), Gather, 1-D convolution, reductions, the dynamic
//! int8 `DynamicQuantizeLinear → MatMulInteger → Cast → Mul` pattern, and
//! the shape and attention-mask subgraphs: folded at compile time when
//! their inputs are constants (shapes are fixed by then), small runtime ops
//! otherwise.

use std::collections::HashMap;

use ember_runtime::format::{OpCode, SCRATCH_INPUT};
use ember_runtime::kernels::{attention, dynamic_fc};
use ember_runtime::DType;
use ndarray::{ArrayD, Axis, IxDyn};
use tract_onnx::pb::{AttributeProto, NodeProto};

use super::{
    attr, attr_i, attr_ints, f32_bits, identity, inverse, permuted, unsupported, Act, Lowerer, Val,
};
use crate::error::{malformed, Result};
use crate::ir::TId;
use crate::tensor::{from_proto, HostTensor};

/// What an output of `DynamicQuantizeLinear` stands for.
#[derive(Clone, Debug)]
pub(super) enum DynQ {
    /// The quantized tensor of this f32 activation.
    Quantized(Act),
    /// Its scale.
    Scale(Act),
    /// Its zero point.
    ZeroPoint(Act),
    /// Its scale times constant per-column weight scales.
    ScaledBy(Act, Vec<f32>),
    /// `MatMulInteger` of the quantized activation with int8 weights `[K,
    /// N]` (accumulators, as int32 or after a Cast to float).
    Product(Act, ndarray::Array2<i8>),
    /// `ConvInteger` of the quantized activation: the activation
    /// quantized and dequantized again (`xf`, f32), the integer weights
    /// (zero point removed) and the convolution node.
    ConvProduct {
        xf: Act,
        w: ArrayD<f32>,
        node: Box<NodeProto>,
    },
}

/// Lowering state of this module.
#[derive(Default)]
pub(super) struct SeqState {
    /// Values produced by the dynamic quantization pattern, by name.
    pub dynq: HashMap<String, DynQ>,
}

/// Element strides of a logical dimension of `a`.
fn logical_strides(a: &Act) -> Vec<usize> {
    let phys = permuted(&a.shape, &a.perm);
    let mut ps = vec![0usize; phys.len()];
    let mut acc = 1;
    for i in (0..phys.len()).rev() {
        ps[i] = acc;
        acc *= phys[i];
    }
    let inv = inverse(&a.perm);
    (0..a.shape.len()).map(|d| ps[inv[d]]).collect()
}

/// `(batch, rows, cols)` extents and strides of `a` seen as `[..batch, rows,
/// cols]` broadcast to `target` (same rank; stride 0 along broadcast
/// axes), if the batch axes collapse into one stride.
fn view3(a: &Act, target: &[usize]) -> Option<([usize; 3], [usize; 3])> {
    let r = target.len();
    if a.shape.len() != r || r < 2 {
        return None;
    }
    let st = logical_strides(a);
    let s: Vec<usize> = (0..r)
        .map(|d| {
            if a.shape[d] == 1 && target[d] != 1 {
                0
            } else {
                st[d]
            }
        })
        .collect();
    if (0..r).any(|d| a.shape[d] != target[d] && a.shape[d] != 1) {
        return None;
    }
    // Collapse the batch axes (those of extent 1 do not matter).
    let mut bs: Option<usize> = None;
    let mut prev: Option<(usize, usize)> = None; // (stride, extent) of the inner batch axis
    for d in (0..r - 2).rev() {
        if target[d] == 1 {
            continue;
        }
        match prev {
            None => bs = Some(s[d]),
            Some((ps, pe)) => {
                if s[d] != ps * pe {
                    return None;
                }
            }
        }
        prev = Some((s[d], target[d]));
    }
    let batch = target[..r - 2].iter().product();
    Some((
        [batch, target[r - 2], target[r - 1]],
        [bs.unwrap_or(0), s[r - 2], s[r - 1]],
    ))
}

fn scalar_of(c: &HostTensor) -> Option<f64> {
    (c.len() == 1).then(|| c.to_f64()[0])
}

/// numpy broadcast of two shapes.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let get = |s: &[usize], i: usize| {
        if i < r - s.len() {
            1
        } else {
            s[i - (r - s.len())]
        }
    };
    (0..r)
        .map(|i| {
            let (x, y) = (get(a, i), get(b, i));
            if x == y || y == 1 {
                Some(x)
            } else if x == 1 {
                Some(y)
            } else {
                None
            }
        })
        .collect()
}

fn f64_array(c: &HostTensor) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(c.shape()), c.to_f64()).expect("shape matches data")
}

/// `c`'s values broadcast to `shape`, as f64.
fn broadcast_to(c: &HostTensor, shape: &[usize]) -> Option<ArrayD<f64>> {
    let a = f64_array(c);
    a.broadcast(IxDyn(shape)).map(|v| v.to_owned())
}

/// A host tensor of dtype `like` from f64 values.
fn like_dtype(like: &HostTensor, a: ArrayD<f64>) -> HostTensor {
    match like {
        HostTensor::F32(_) => HostTensor::F32(a.mapv(|v| v as f32)),
        HostTensor::I8(_) => HostTensor::I8(a.mapv(|v| v as i8)),
        HostTensor::U8(_) => HostTensor::U8(a.mapv(|v| v as u8)),
        HostTensor::I32(_) => HostTensor::I32(a.mapv(|v| v as i32)),
        HostTensor::I64(_) => HostTensor::I64(a.mapv(|v| v as i64)),
    }
}

fn bools(a: ArrayD<f64>) -> HostTensor {
    HostTensor::U8(a.mapv(|v| (v != 0.0) as u8))
}

/// Runtime dtype of a constant fed to a runtime op (int64 becomes int32,
/// like graph inputs).
fn runtime_dtype(c: &HostTensor) -> DType {
    match c {
        HostTensor::F32(_) => DType::F32,
        HostTensor::I8(_) => DType::I8,
        HostTensor::U8(_) => DType::U8,
        HostTensor::I32(_) | HostTensor::I64(_) => DType::I32,
    }
}

fn const_bytes(c: &HostTensor, dtype: DType) -> Vec<u8> {
    let v = c.to_f64();
    match dtype {
        DType::F32 => v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect(),
        DType::I32 => v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
        DType::I16 => v.iter().flat_map(|&x| (x as i16).to_le_bytes()).collect(),
        DType::I8 => v.iter().map(|&x| x as i8 as u8).collect(),
        DType::U8 => v.iter().map(|&x| x as u8).collect(),
    }
}

fn axis_of(node: &NodeProto, a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if v < 0 || v >= r.max(1) {
        return Err(malformed(format!(
            "node '{}': axis {a} out of range for rank {rank}",
            node.name
        )));
    }
    Ok(v as usize)
}

impl Lowerer<'_> {
    /// Lowers `node` if it is one of this module's ops or patterns;
    /// `Ok(false)` leaves it to the CNN lowering.
    pub(super) fn lower_sequence(&mut self, i: usize, node: &NodeProto) -> Result<bool> {
        // Anything reading a dynamic-quantization value must be part of the
        // pattern.
        if let Some(handled) = self.lower_dynq(node)? {
            return Ok(handled);
        }
        match node.op_type.as_str() {
            "LayerNormalization" => self.lower_layer_norm(node)?,
            "Div" | "Mul" if self.try_gelu(i, node)? => {}
            "Erf" => {
                let x = self.float_act(&node.input[0], "Erf")?;
                self.emit_unary(node, x, 0, &Self::out_name(node));
            }
            "Sqrt" => match self.req_input(node, 0)? {
                Val::Const(c) => self.set(
                    node,
                    0,
                    Val::Const(like_dtype(&c, f64_array(&c).mapv(f64::sqrt))),
                ),
                _ => {
                    let x = self.float_act(&node.input[0], "Sqrt")?;
                    self.emit_unary(node, x, 2, &Self::out_name(node));
                }
            },
            "MatMul" => {
                let (a, b) = (self.req_input(node, 0)?, self.req_input(node, 1)?);
                let runtime = |v: &Val| matches!(v, Val::Act(_) | Val::DqAct { .. });
                if !(runtime(&a) && runtime(&b)) {
                    return Ok(false);
                }
                if !self.try_attention(node)? {
                    self.lower_act_matmul(node)?;
                }
            }
            "Conv" if self.input_rank(node, 0) == Some(3) => self.lower_conv1d(node)?,
            "Gather" => self.lower_gather(node)?,
            "Cast" => return self.lower_cast(node),
            "Range" => self.fold_range(node)?,
            "ConstantOfShape" => {
                let shape = self
                    .const_input(node, 0)?
                    .ok_or_else(|| unsupported(node, "the shape must be known at compile time"))?
                    .to_i64();
                let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
                let value = match attr(node, "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => from_proto(t)?,
                    None => HostTensor::F32(ArrayD::zeros(IxDyn(&[1]))),
                };
                let v = scalar_of(&value).ok_or_else(|| {
                    malformed(format!("node '{}': value must have one element", node.name))
                })?;
                self.set(
                    node,
                    0,
                    Val::Const(like_dtype(&value, ArrayD::from_elem(IxDyn(&shape), v))),
                );
            }
            "Slice" => self.fold_slice(node)?,
            "Equal" | "Greater" | "GreaterOrEqual" | "Less" | "LessOrEqual" | "And" | "Or"
            | "Xor" => self.lower_compare(node)?,
            "Not" => match self.req_input(node, 0)? {
                Val::Const(c) => self.set(
                    node,
                    0,
                    Val::Const(bools(f64_array(&c).mapv(|v| (v == 0.0) as u8 as f64))),
                ),
                _ => {
                    // not x ≡ (x == 0)
                    let x = self.runtime_operand(node, 0, None)?;
                    let zero = HostTensor::U8(ArrayD::zeros(IxDyn(&[1])));
                    let z = self.const_act(node, &zero, DType::U8, "zero");
                    self.emit_compare(node, 0, x, z)?;
                }
            },
            "Where" => self.lower_where(node)?,
            "Expand" => self.lower_expand(node)?,
            "ReduceSum" | "ReduceMean" | "ReduceL2" | "ReduceMax" => self.lower_reduce(node)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The constant value `name` has or will have: already lowered, or
    /// the output of a `Constant` node further down (patterns look ahead
    /// of the walk).
    fn peek_const(&self, name: &str) -> Option<HostTensor> {
        match self.vals.get(name) {
            Some(Val::Const(c)) => return Some(c.clone()),
            Some(_) => return None,
            None => {}
        }
        let n = self.nodes.iter().find(|n| {
            n.op_type == "Constant" && n.output.first().map(String::as_str) == Some(name)
        })?;
        from_proto(attr(n, "value")?.t.as_ref()?).ok()
    }

    /// Makes sure `name` is lowered by the time node `before` runs:
    /// lowers its producers now if the walk has not reached them yet (an
    /// attention mask built after the first layer's `MatMul` in the node
    /// order). `false` if it depends on nodes from `before` on.
    fn lower_ahead(&mut self, name: &str, before: usize) -> Result<bool> {
        if self.vals.contains_key(name) || name.is_empty() {
            return Ok(true);
        }
        let Some(j) = self
            .nodes
            .iter()
            .position(|n| n.output.iter().any(|o| o == name))
        else {
            return Ok(false);
        };
        if j >= before || self.done[j] {
            return Ok(false);
        }
        for inp in self.nodes[j].input.clone() {
            if !self.lower_ahead(&inp, j)? {
                return Ok(false);
            }
        }
        let node = &self.nodes[j];
        self.lower_node(j, node)?;
        self.done[j] = true;
        Ok(self.vals.contains_key(name))
    }

    fn input_rank(&self, node: &NodeProto, i: usize) -> Option<usize> {
        match self.input_val(node, i).ok()?? {
            Val::Act(a) | Val::DqAct { src: a, .. } => Some(a.shape.len()),
            Val::Const(c) => Some(c.shape().len()),
            Val::DqConst { q, .. } => Some(q.shape().len()),
        }
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
                let c = HostTensor::F32(super::dequant_const(&v)?);
                return Ok(self.const_act(node, &c, DType::F32, &format!("in{i}")));
            }
        };
        self.in_rowmajor(a, &node.name)
    }

    fn new_act(&mut self, name: &str, dtype: DType, shape: Vec<usize>) -> Act {
        let t = self.g.activation(name, dtype, shape.clone(), None);
        Act {
            t,
            perm: identity(shape.len()),
            shape,
        }
    }

    fn emit_unary(&mut self, node: &NodeProto, x: Act, kind: i32, out: &str) {
        let y = self
            .g
            .activation(out, DType::F32, permuted(&x.shape, &x.perm), None);
        self.g
            .push(OpCode::Unary, vec![Some(x.t)], y, vec![kind], &node.name);
        self.vals
            .insert(out.to_string(), Val::Act(Act { t: y, ..x }));
    }

    // ----- LayerNorm, GELU -------------------------------------------------

    fn lower_layer_norm(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], "LayerNormalization")?;
        let rank = x.shape.len();
        if axis_of(node, attr_i(node, "axis", -1), rank)? != rank - 1 {
            return Err(unsupported(
                node,
                "normalization over other than the last axis",
            ));
        }
        if node.output.len() > 1 && node.output[1..].iter().any(|o| !o.is_empty()) {
            return Err(unsupported(node, "the mean / inverse std-dev outputs"));
        }
        let d = x.shape[rank - 1];
        let gamma = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "scale must be constant"))?;
        let beta = self.const_input(node, 2)?;
        if gamma.len() != d || beta.as_ref().is_some_and(|b| b.len() != d) {
            return Err(unsupported(
                node,
                "scale/bias must have the last axis' length",
            ));
        }
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
        let eps = super::attr_f(node, "epsilon", 1e-5);
        self.g.push(
            OpCode::LayerNorm,
            vec![Some(x.t), Some(gt), bt],
            y.t,
            vec![f32_bits(eps)],
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    /// `x / √2 → Erf → + 1 → · x → · 0.5` (or `x · (1/√2)` first) as one
    /// GELU op.
    fn try_gelu(&mut self, _i: usize, node: &NodeProto) -> Result<bool> {
        let (xname, c) = match (self.req_input(node, 0)?, self.req_input(node, 1)?) {
            (Val::Act(_) | Val::DqAct { .. }, Val::Const(c)) => (node.input[0].clone(), c),
            _ => return Ok(false),
        };
        let Some(k) = scalar_of(&c) else {
            return Ok(false);
        };
        let want = if node.op_type == "Div" {
            std::f64::consts::SQRT_2
        } else {
            std::f64::consts::FRAC_1_SQRT_2
        };
        if (k - want).abs() > 1e-6 {
            return Ok(false);
        }
        let step = |s: &Self, v: &str, op: &str| -> Option<(usize, String)> {
            let j = s.follow(v)?;
            (s.nodes[j].op_type == op).then(|| (j, Self::out_name(&s.nodes[j])))
        };
        let const_other = |s: &Self, j: usize, v: &str| -> Option<f64> {
            let n = &s.nodes[j];
            let other = if n.input.first().map(String::as_str) == Some(v) {
                1
            } else {
                0
            };
            scalar_of(&s.peek_const(n.input.get(other)?)?)
        };
        let Some((e, eo)) = step(self, &Self::out_name(node), "Erf") else {
            return Ok(false);
        };
        let Some((a, ao)) = step(self, &eo, "Add") else {
            return Ok(false);
        };
        if const_other(self, a, &eo) != Some(1.0) {
            return Ok(false);
        }
        let Some((m, mo)) = step(self, &ao, "Mul") else {
            return Ok(false);
        };
        if !self.nodes[m].input.contains(&xname) {
            return Ok(false);
        }
        let Some((h, ho)) = step(self, &mo, "Mul") else {
            return Ok(false);
        };
        if const_other(self, h, &mo) != Some(0.5) {
            return Ok(false);
        }
        self.mark(&[e, a, m, h]);
        let x = self.float_act(&xname, "GELU")?;
        self.emit_unary(node, x, 1, &ho);
        Ok(true)
    }

    // ----- MatMul of two runtime tensors, attention ----------------------

    /// Views of the two MatMul operands (numpy semantics: equal batch dims
    /// or 1) and the output shape.
    fn matmul_shapes(
        &self,
        node: &NodeProto,
        a: &Act,
        b: &Act,
    ) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
        let (ra, rb) = (a.shape.len(), b.shape.len());
        if ra < 2 || rb < 2 || ra != rb {
            return Err(unsupported(
                node,
                "MatMul of runtime operands needs equal ranks ≥ 2",
            ));
        }
        let r = ra;
        let batch = broadcast_shape(&a.shape[..r - 2], &b.shape[..r - 2]).ok_or_else(|| {
            malformed(format!("node '{}': batch dims do not broadcast", node.name))
        })?;
        let (m, k, k2, n) = (
            a.shape[r - 2],
            a.shape[r - 1],
            b.shape[r - 2],
            b.shape[r - 1],
        );
        if k != k2 {
            return Err(malformed(format!(
                "node '{}': inner dimensions differ ({:?} × {:?})",
                node.name, a.shape, b.shape
            )));
        }
        let mut ta = batch.clone();
        ta.extend([m, k]);
        let mut tb = batch.clone();
        tb.extend([k, n]);
        let mut out = batch;
        out.extend([m, n]);
        Ok((ta, tb, out))
    }

    /// The strided view of `a` broadcast to `target`, making it row-major
    /// first if its layout cannot be described by three strides.
    fn operand_view(
        &mut self,
        a: Act,
        target: &[usize],
        name: &str,
    ) -> Result<(Act, [usize; 3], [usize; 3])> {
        if let Some((e, s)) = view3(&a, target) {
            return Ok((a, e, s));
        }
        let a = self.in_rowmajor(a, name)?;
        let (e, s) = view3(&a, target).ok_or_else(|| {
            malformed(format!(
                "node '{name}': operand does not broadcast to {target:?}"
            ))
        })?;
        Ok((a, e, s))
    }

    fn lower_act_matmul(&mut self, node: &NodeProto) -> Result<()> {
        let a = self.float_act(&node.input[0], "MatMul")?;
        let b = self.float_act(&node.input[1], "MatMul")?;
        let (ta, tb, out_shape) = self.matmul_shapes(node, &a, &b)?;
        let (a, ea, sa) = self.operand_view(a, &ta, &node.name)?;
        let (b, eb, sb) = self.operand_view(b, &tb, &node.name)?;
        let out = Self::out_name(node);
        let y = self.new_act(&out, DType::F32, out_shape);
        let p = [
            ea[0], ea[1], eb[2], ea[2], sa[0], sa[1], sa[2], sb[0], sb[1], sb[2],
        ];
        self.g.push(
            OpCode::MatMul,
            vec![Some(a.t), Some(b.t)],
            y.t,
            p.iter().map(|&v| v as i32).collect(),
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    /// `MatMul(Q, Kᵀ) → (Mul|Div by scalars)* → [Add mask] → Softmax(last)
    /// → MatMul(·, V)` as one attention op.
    fn try_attention(&mut self, node: &NodeProto) -> Result<bool> {
        let mut cur = Self::out_name(node);
        let mut scale = 1f64;
        let mut nodes = vec![];
        let mut mask: Option<String> = None;
        let softmax = loop {
            let Some(j) = self.follow(&cur) else {
                return Ok(false);
            };
            let n = &self.nodes[j];
            let other = if n.input.first() == Some(&cur) { 1 } else { 0 };
            match n.op_type.as_str() {
                "Mul" | "Div" if mask.is_none() => {
                    let Some(c) = n.input.get(other).and_then(|v| self.peek_const(v)) else {
                        return Ok(false);
                    };
                    let Some(k) = scalar_of(&c) else {
                        return Ok(false);
                    };
                    if n.op_type == "Div" && other == 0 {
                        return Ok(false);
                    }
                    scale = if n.op_type == "Mul" {
                        scale * k
                    } else {
                        scale / k
                    };
                }
                "Add" if mask.is_none() => mask = Some(n.input[other].clone()),
                "Softmax" => break j,
                _ => return Ok(false),
            }
            nodes.push(j);
            cur = Self::out_name(n);
        };
        let sm = &self.nodes[softmax];
        let rank = self.input_rank(node, 0).unwrap_or(0);
        if rank < 3 || axis_of(sm, attr_i(sm, "axis", -1), rank)? != rank - 1 {
            return Ok(false);
        }
        let sm_out = Self::out_name(sm);
        let Some(pv) = self.follow(&sm_out) else {
            return Ok(false);
        };
        let pvn = &self.nodes[pv];
        if pvn.op_type != "MatMul" || pvn.input.first() != Some(&sm_out) {
            return Ok(false);
        }
        let vname = pvn.input[1].clone();
        if !matches!(self.vals.get(&vname), Some(Val::Act(_) | Val::DqAct { .. })) {
            return Ok(false);
        }
        let q = self.float_act(&node.input[0], "MatMul")?;
        let kt = self.float_act(&node.input[1], "MatMul")?;
        let v = self.float_act(&vname, "MatMul")?;
        let (tq, tk, s_shape) = self.matmul_shapes(node, &q, &kt)?;
        let r = tq.len();
        let (sq, d, sk) = (tq[r - 2], tq[r - 1], tk[r - 1]);
        if v.shape.len() != r || v.shape[r - 2] != sk {
            return Ok(false);
        }
        let dv = v.shape[r - 1];
        let mut tv = s_shape[..r - 2].to_vec();
        tv.extend([sk, dv]);
        // Keys: the view of Kᵀ [.., D, Sk] read as K [.., Sk, D].
        let (q, eq, sq_) = self.operand_view(q, &tq, &node.name)?;
        let (kt, _, skt) = self.operand_view(kt, &tk, &node.name)?;
        let (v, _, sv) = self.operand_view(v, &tv, &node.name)?;
        if let Some(mname) = &mask {
            if !self.lower_ahead(mname, softmax)? {
                return Ok(false);
            }
        }
        let mask_act = match &mask {
            None => None,
            Some(mname) => {
                let m = match self.vals.get(mname).cloned() {
                    Some(Val::Const(c)) => self.const_act(node, &c, DType::F32, "mask"),
                    Some(Val::Act(_) | Val::DqAct { .. }) => {
                        self.float_act(mname, "attention mask")?
                    }
                    _ => return Ok(false),
                };
                // Right-align the mask to the score shape.
                if m.shape.len() > r {
                    return Ok(false);
                }
                let m = if m.shape.len() < r {
                    let mut s = vec![1; r - m.shape.len()];
                    s.extend_from_slice(&m.shape);
                    let n = format!("{}.mask", node.name);
                    self.reshape_act(m, s, &n)?
                } else {
                    m
                };
                match view3(&m, &s_shape) {
                    Some((_, s)) => Some((m, s)),
                    None => {
                        let m = self.in_rowmajor(m, &node.name)?;
                        match view3(&m, &s_shape) {
                            Some((_, s)) => Some((m, s)),
                            None => return Ok(false),
                        }
                    }
                }
            }
        };
        // Output [.., Sq, Dv]: written heads-interleaved when a
        // Transpose(0, 2, 1, 3) follows, so that transpose and the reshape
        // after it are free.
        let out = Self::out_name(pvn);
        let mut y_shape = s_shape[..r - 2].to_vec();
        y_shape.extend([sq, dv]);
        let mut perm = identity(r);
        if r == 4 {
            if let Some(t) = self.follow(&out) {
                let tn = &self.nodes[t];
                if tn.op_type == "Transpose" && attr_ints(tn, "perm") == Some(vec![0, 2, 1, 3]) {
                    perm = vec![0, 2, 1, 3];
                }
            }
        }
        let yt = self
            .g
            .activation(&out, DType::F32, permuted(&y_shape, &perm), None);
        let y = Act {
            t: yt,
            shape: y_shape.clone(),
            perm,
        };
        let Some((_, sy)) = view3(&y, &y_shape) else {
            return Ok(false);
        };
        let scratch = self.g.activation(
            &format!("{}.scores", node.name),
            DType::I8,
            vec![attention::attention_f32_scratch_size(sk, dv)],
            None,
        );
        let heads = eq[0];
        let sm_ = mask_act.as_ref().map(|(_, s)| *s).unwrap_or([0; 3]);
        let p: Vec<i32> = [
            heads, sq, sk, d, dv, sq_[0], sq_[1], sq_[2], skt[0], skt[2], skt[1], sv[0], sv[1],
            sv[2], sy[0], sy[1], sy[2], sm_[0], sm_[1], sm_[2],
        ]
        .iter()
        .map(|&v| v as i32)
        .chain([f32_bits(scale as f32)])
        .collect();
        let mut inputs = vec![
            Some(q.t),
            Some(kt.t),
            Some(v.t),
            mask_act.map(|(m, _)| m.t),
            None,
        ];
        debug_assert_eq!(inputs.len(), SCRATCH_INPUT);
        inputs.push(Some(scratch));
        self.g.push(OpCode::Attention, inputs, yt, p, &node.name);
        nodes.push(softmax);
        nodes.push(pv);
        self.mark(&nodes);
        self.vals.insert(out, Val::Act(y));
        Ok(true)
    }

    // ----- Conv1d -----------------------------------------------------------

    /// A 1-D convolution as a 2-D one of height 1.
    fn lower_conv1d(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], "Conv")?;
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "weights must be constant"))?;
        if w.shape().len() != 3 {
            return Err(malformed(format!(
                "node '{}': 1-D conv weights must be 3-D",
                node.name
            )));
        }
        let tag = format!("{}.2d", node.name);
        let xs = format!("{tag}.x");
        let ws = format!("{tag}.w");
        let ys = format!("{tag}.y");
        let x4 = self.unsqueeze_act(x, 2, &xs);
        self.vals.insert(xs.clone(), Val::Act(x4));
        let mut w4 = w.shape().to_vec();
        w4.insert(2, 1);
        let w2 = w.map_layout(|a| {
            a.into_shape_with_order(IxDyn(&w4))
                .map_err(|e| malformed(e.to_string()))
        })?;
        self.vals.insert(ws.clone(), Val::Const(w2));
        let mut n2 = node.clone();
        n2.input[0] = xs;
        n2.input[1] = ws;
        n2.output = vec![ys.clone()];
        let widen = |name: &str, lead: i64, n: &mut NodeProto| {
            if let Some(a) = n.attribute.iter_mut().find(|a| a.name == name) {
                if name == "pads" && a.ints.len() == 2 {
                    a.ints = vec![0, a.ints[0], 0, a.ints[1]];
                } else if a.ints.len() == 1 {
                    a.ints.insert(0, lead);
                }
            }
        };
        for (name, lead) in [
            ("kernel_shape", 1),
            ("strides", 1),
            ("dilations", 1),
            ("pads", 0),
        ] {
            widen(name, lead, &mut n2);
        }
        if !n2.attribute.iter().any(|a| a.name == "kernel_shape") {
            n2.attribute.push(AttributeProto {
                name: "kernel_shape".into(),
                ints: vec![1, w.shape()[2] as i64],
                ..Default::default()
            });
        }
        self.lower_conv(&n2)?;
        let y = match self.vals.get(&ys).cloned() {
            Some(Val::Act(a)) => a,
            _ => {
                return Err(malformed(format!(
                    "node '{}': 1-D conv produced no tensor",
                    node.name
                )))
            }
        };
        let out = Self::out_name(node);
        let y3 = self.squeeze_act(y, 2, &out);
        self.vals.insert(out, Val::Act(y3));
        Ok(())
    }

    /// Inserts a logical axis of extent 1 at `axis` (free: a view).
    fn unsqueeze_act(&mut self, a: Act, axis: usize, name: &str) -> Act {
        let mut shape = a.shape.clone();
        shape.insert(axis, 1);
        let mut perm: Vec<usize> = a
            .perm
            .iter()
            .map(|&p| if p >= axis { p + 1 } else { p })
            .collect();
        perm.push(axis);
        let t = self.g.alias(a.t, name, permuted(&shape, &perm));
        Act { t, shape, perm }
    }

    /// Removes the logical axis `axis` of extent 1 (free: a view).
    fn squeeze_act(&mut self, a: Act, axis: usize, name: &str) -> Act {
        let mut shape = a.shape.clone();
        shape.remove(axis);
        let perm: Vec<usize> = a
            .perm
            .iter()
            .filter(|&&p| p != axis)
            .map(|&p| if p > axis { p - 1 } else { p })
            .collect();
        let t = self.g.alias(a.t, name, permuted(&shape, &perm));
        Act { t, shape, perm }
    }

    // ----- Gather, Cast, folding ---------------------------------------------

    fn lower_gather(&mut self, node: &NodeProto) -> Result<()> {
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
            vec![axis as i32],
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

    /// Casts of runtime tensors (constant casts stay with the CNN lowering).
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
            vec![to_bool as i32],
            &node.name,
        );
        self.vals.insert(out, Val::Act(Act { t: y, ..a }));
        Ok(true)
    }

    fn fold_range(&mut self, node: &NodeProto) -> Result<()> {
        let get = |s: &Self, i: usize| -> Result<HostTensor> {
            s.const_input(node, i)?
                .ok_or_else(|| unsupported(node, "Range of runtime values"))
        };
        let (s, l, d) = (get(self, 0)?, get(self, 1)?, get(self, 2)?);
        let (Some(a), Some(b), Some(st)) = (scalar_of(&s), scalar_of(&l), scalar_of(&d)) else {
            return Err(malformed(format!(
                "node '{}': Range takes scalars",
                node.name
            )));
        };
        if st == 0.0 {
            return Err(malformed(format!(
                "node '{}': Range with delta 0",
                node.name
            )));
        }
        let n = ((b - a) / st).ceil().max(0.0) as usize;
        let v = ArrayD::from_shape_vec(IxDyn(&[n]), (0..n).map(|i| a + i as f64 * st).collect())
            .expect("1-D");
        self.set(node, 0, Val::Const(like_dtype(&s, v)));
        Ok(())
    }

    fn fold_slice(&mut self, node: &NodeProto) -> Result<()> {
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

    // ----- comparisons, Where, Expand, reductions ---------------------------

    fn compare_kind(op: &str) -> i32 {
        match op {
            "Equal" => 0,
            "Greater" => 1,
            "GreaterOrEqual" => 2,
            "Less" => 3,
            "LessOrEqual" => 4,
            "And" => 5,
            "Or" => 6,
            _ => 7,
        }
    }

    fn lower_compare(&mut self, node: &NodeProto) -> Result<()> {
        let kind = Self::compare_kind(&node.op_type);
        if let (Val::Const(a), Val::Const(b)) = (self.req_input(node, 0)?, self.req_input(node, 1)?)
        {
            let shape = broadcast_shape(a.shape(), b.shape()).ok_or_else(|| {
                malformed(format!("node '{}': shapes do not broadcast", node.name))
            })?;
            let (x, y) = (
                broadcast_to(&a, &shape).expect("broadcasts"),
                broadcast_to(&b, &shape).expect("broadcasts"),
            );
            let mut r = x.clone();
            ndarray::Zip::from(&mut r)
                .and(&x)
                .and(&y)
                .for_each(|o, &u, &v| {
                    *o = match kind {
                        0 => u == v,
                        1 => u > v,
                        2 => u >= v,
                        3 => u < v,
                        4 => u <= v,
                        5 => u != 0.0 && v != 0.0,
                        6 => u != 0.0 || v != 0.0,
                        _ => (u != 0.0) != (v != 0.0),
                    } as u8 as f64;
                });
            self.set(node, 0, Val::Const(bools(r)));
            return Ok(());
        }
        // Operands share the runtime one's dtype.
        let rt_dtype = [0, 1]
            .into_iter()
            .find_map(|i| match self.vals.get(&node.input[i]) {
                Some(Val::Act(a)) => Some(self.g.tensors[a.t].dtype),
                Some(Val::DqAct { .. }) => Some(DType::F32),
                _ => None,
            });
        let a = self.runtime_operand(node, 0, rt_dtype)?;
        let b = self.runtime_operand(node, 1, rt_dtype)?;
        self.emit_compare(node, kind, a, b)
    }

    fn emit_compare(&mut self, node: &NodeProto, kind: i32, a: Act, b: Act) -> Result<()> {
        if self.g.tensors[a.t].dtype != self.g.tensors[b.t].dtype {
            return Err(unsupported(node, "operands of different types"));
        }
        let shape = broadcast_shape(&a.shape, &b.shape)
            .ok_or_else(|| malformed(format!("node '{}': shapes do not broadcast", node.name)))?;
        let out = Self::out_name(node);
        let y = self.new_act(&out, DType::U8, shape);
        self.g.push(
            OpCode::Compare,
            vec![Some(a.t), Some(b.t)],
            y.t,
            vec![kind],
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    fn lower_where(&mut self, node: &NodeProto) -> Result<()> {
        let (c, a, b) = (
            self.req_input(node, 0)?,
            self.req_input(node, 1)?,
            self.req_input(node, 2)?,
        );
        if let (Val::Const(c), Val::Const(a), Val::Const(b)) = (&c, &a, &b) {
            let s1 = broadcast_shape(c.shape(), a.shape());
            let shape = s1
                .and_then(|s| broadcast_shape(&s, b.shape()))
                .ok_or_else(|| {
                    malformed(format!("node '{}': shapes do not broadcast", node.name))
                })?;
            let (cc, aa, bb) = (
                broadcast_to(c, &shape).expect("broadcasts"),
                broadcast_to(a, &shape).expect("broadcasts"),
                broadcast_to(b, &shape).expect("broadcasts"),
            );
            let mut r = aa.clone();
            ndarray::Zip::from(&mut r)
                .and(&cc)
                .and(&aa)
                .and(&bb)
                .for_each(|o, &k, &x, &y| *o = if k != 0.0 { x } else { y });
            self.set(node, 0, Val::Const(like_dtype(a, r)));
            return Ok(());
        }
        let dtype = [1, 2]
            .into_iter()
            .find_map(|i| match self.vals.get(&node.input[i]) {
                Some(Val::Act(a)) => Some(self.g.tensors[a.t].dtype),
                Some(Val::DqAct { .. }) => Some(DType::F32),
                Some(Val::Const(c)) => Some(runtime_dtype(c)),
                _ => None,
            })
            .unwrap_or(DType::F32);
        let c = self.runtime_operand(node, 0, Some(DType::U8))?;
        let a = self.runtime_operand(node, 1, Some(dtype))?;
        let b = self.runtime_operand(node, 2, Some(dtype))?;
        if self.g.tensors[c.t].dtype != DType::U8
            || self.g.tensors[a.t].dtype != dtype
            || self.g.tensors[b.t].dtype != dtype
        {
            return Err(unsupported(
                node,
                "operand types (condition bool, values of one type)",
            ));
        }
        let shape = broadcast_shape(&c.shape, &a.shape)
            .and_then(|s| broadcast_shape(&s, &b.shape))
            .ok_or_else(|| malformed(format!("node '{}': shapes do not broadcast", node.name)))?;
        let out = Self::out_name(node);
        let y = self.new_act(&out, dtype, shape);
        self.g.push(
            OpCode::Where,
            vec![Some(c.t), Some(a.t), Some(b.t)],
            y.t,
            vec![],
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    fn lower_expand(&mut self, node: &NodeProto) -> Result<()> {
        let target = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "the shape must be known at compile time"))?
            .to_i64();
        let target: Vec<usize> = target.iter().map(|&d| d.max(0) as usize).collect();
        match self.req_input(node, 0)? {
            Val::Const(c) => {
                let shape = broadcast_shape(c.shape(), &target).ok_or_else(|| {
                    malformed(format!("node '{}': shapes do not broadcast", node.name))
                })?;
                let r = broadcast_to(&c, &shape).expect("broadcasts");
                self.set(node, 0, Val::Const(like_dtype(&c, r)));
            }
            _ => {
                let x = self.runtime_operand(node, 0, None)?;
                let shape = broadcast_shape(&x.shape, &target).ok_or_else(|| {
                    malformed(format!("node '{}': shapes do not broadcast", node.name))
                })?;
                if shape == x.shape {
                    self.set(node, 0, Val::Act(x));
                    return Ok(());
                }
                let out = Self::out_name(node);
                let dt = self.g.tensors[x.t].dtype;
                let y = self.new_act(&out, dt, shape);
                self.g
                    .push(OpCode::Expand, vec![Some(x.t)], y.t, vec![], &node.name);
                self.vals.insert(out, Val::Act(y));
            }
        }
        Ok(())
    }

    fn lower_reduce(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let rank = x.shape.len();
        let axes = match self.const_input(node, 1)? {
            Some(a) => a.to_i64(),
            None if node.input.get(1).is_some_and(|n| !n.is_empty()) => {
                return Err(unsupported(node, "the axes must be known at compile time"))
            }
            None => attr_ints(node, "axes").unwrap_or_default(),
        };
        let mut axes: Vec<usize> = if axes.is_empty() {
            if attr_i(node, "noop_with_empty_axes", 0) != 0 {
                self.set(node, 0, Val::Act(x));
                return Ok(());
            }
            (0..rank).collect()
        } else {
            axes.iter()
                .map(|&a| axis_of(node, a, rank))
                .collect::<Result<_>>()?
        };
        axes.sort_unstable();
        axes.dedup();
        if axes.is_empty() {
            // A scalar: nothing to reduce.
            self.set(node, 0, Val::Act(x));
            return Ok(());
        }
        if axes.windows(2).any(|w| w[1] != w[0] + 1) {
            return Err(unsupported(node, "reduction over non-adjacent axes"));
        }
        let (a0, a1) = (axes[0], axes[axes.len() - 1]);
        let outer: usize = x.shape[..a0].iter().product();
        let n: usize = x.shape[a0..=a1].iter().product();
        let inner: usize = x.shape[a1 + 1..].iter().product();
        let keep = attr_i(node, "keepdims", 1) != 0;
        let shape: Vec<usize> = x
            .shape
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| {
                if !axes.contains(&i) {
                    Some(d)
                } else if keep {
                    Some(1)
                } else {
                    None
                }
            })
            .collect();
        let kind = match node.op_type.as_str() {
            "ReduceSum" => 0,
            "ReduceMean" => 1,
            "ReduceL2" => 2,
            _ => 3,
        };
        let x = self.in_rowmajor(x, &node.name)?;
        let out = Self::out_name(node);
        let y = self.new_act(&out, DType::F32, shape);
        self.g.push(
            OpCode::Reduce,
            vec![Some(x.t)],
            y.t,
            vec![kind, outer as i32, n as i32, inner as i32],
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    // ----- dynamic quantization ----------------------------------------------

    /// The `DynamicQuantizeLinear → MatMulInteger → Cast → Mul(scale ·
    /// w_scale) [→ Add bias]` pattern; `None` when `node` has nothing to do
    /// with it.
    fn lower_dynq(&mut self, node: &NodeProto) -> Result<Option<bool>> {
        if node.op_type == "DynamicQuantizeLinear" {
            let x = self.float_act(&node.input[0], "DynamicQuantizeLinear")?;
            let names = &node.output;
            let roles = [
                DynQ::Quantized(x.clone()),
                DynQ::Scale(x.clone()),
                DynQ::ZeroPoint(x),
            ];
            for (n, r) in names.iter().zip(roles) {
                if !n.is_empty() {
                    self.seq.dynq.insert(n.clone(), r);
                }
            }
            return Ok(Some(true));
        }
        let ins: Vec<Option<DynQ>> = node
            .input
            .iter()
            .map(|n| self.seq.dynq.get(n).cloned())
            .collect();
        if ins.iter().all(Option::is_none) {
            return Ok(None);
        }
        let out = Self::out_name(node);
        let cfail = |what: &str| {
            unsupported(
                node,
                format!("{what}: dynamic quantization is supported in the DynamicQuantizeLinear → MatMulInteger → Cast → Mul pattern only"),
            )
        };
        match node.op_type.as_str() {
            "Mul" => {
                let other = |i: usize| 1 - i;
                // scale × constant weight scales
                let scale = ins.iter().enumerate().find_map(|(i, v)| match v {
                    Some(DynQ::Scale(x)) if i < 2 => Some((i, x.clone())),
                    _ => None,
                });
                if let Some((i, x)) = scale {
                    let w = self
                        .const_input(node, other(i))?
                        .ok_or_else(|| cfail("scale times a runtime value"))?;
                    let ws: Vec<f32> = w.to_f32_array().iter().copied().collect();
                    self.seq.dynq.insert(out, DynQ::ScaledBy(x, ws));
                    return Ok(Some(true));
                }
                // convolution × combined scale
                if let (
                    Some(Some(DynQ::ConvProduct { xf, w, node: conv })),
                    Some(Some(DynQ::ScaledBy(_, ws))),
                ) = (
                    ins.iter()
                        .find(|v| matches!(v, Some(DynQ::ConvProduct { .. })))
                        .cloned(),
                    ins.iter()
                        .find(|v| matches!(v, Some(DynQ::ScaledBy(..))))
                        .cloned(),
                ) {
                    self.emit_dynamic_conv(node, xf, w, &ws, &conv, &out)?;
                    return Ok(Some(true));
                }
                // product × combined scale
                let (Some(Some(DynQ::Product(x, w))), Some(Some(DynQ::ScaledBy(xs, ws)))) = (
                    ins.iter()
                        .find(|v| matches!(v, Some(DynQ::Product(..))))
                        .cloned(),
                    ins.iter()
                        .find(|v| matches!(v, Some(DynQ::ScaledBy(..))))
                        .cloned(),
                ) else {
                    return Err(cfail("Mul"));
                };
                if xs.t != x.t {
                    return Err(cfail("scale of another tensor"));
                }
                self.emit_dynamic_fc(node, x, w, ws, &out)?;
                Ok(Some(true))
            }
            "MatMulInteger" => {
                let (Some(Some(DynQ::Quantized(x))), Some(Some(DynQ::ZeroPoint(xz)))) =
                    (ins.first().cloned(), ins.get(2).cloned())
                else {
                    return Err(cfail("MatMulInteger without the activation's zero point"));
                };
                if xz.t != x.t {
                    return Err(cfail("zero point of another tensor"));
                }
                let w = match self.req_input(node, 1)? {
                    Val::Const(HostTensor::I8(w)) if w.ndim() == 2 => w,
                    _ => return Err(cfail("weights must be a constant int8 matrix")),
                };
                if let Some(z) = self.const_input(node, 3)? {
                    if z.to_i64().iter().any(|&v| v != 0) {
                        return Err(unsupported(node, "non-zero weight zero points"));
                    }
                }
                let w = w
                    .into_dimensionality::<ndarray::Ix2>()
                    .map_err(|e| malformed(e.to_string()))?;
                self.seq.dynq.insert(out, DynQ::Product(x, w));
                Ok(Some(true))
            }
            "ConvInteger" => {
                let (Some(Some(DynQ::Quantized(x))), Some(Some(DynQ::ZeroPoint(xz)))) =
                    (ins.first().cloned(), ins.get(2).cloned())
                else {
                    return Err(cfail("ConvInteger without the activation's zero point"));
                };
                if xz.t != x.t {
                    return Err(cfail("zero point of another tensor"));
                }
                let w = match self.req_input(node, 1)? {
                    Val::Const(w @ (HostTensor::I8(_) | HostTensor::U8(_))) => w,
                    _ => return Err(cfail("weights must be a constant int8 tensor")),
                };
                let wz = match self.const_input(node, 3)? {
                    Some(z) => z.to_f64(),
                    None => vec![0.0],
                };
                if w.shape().len() < 3 {
                    return Err(malformed(format!(
                        "node '{}': ConvInteger weights of rank {}",
                        node.name,
                        w.shape().len()
                    )));
                }
                let mut wf = w.to_f32_array();
                for (c, mut sl) in wf.axis_iter_mut(Axis(0)).enumerate() {
                    let z = wz[if wz.len() == 1 {
                        0
                    } else {
                        c.min(wz.len() - 1)
                    }] as f32;
                    sl.mapv_inplace(|v| v - z);
                }
                // The activation as ConvInteger sees it, back in float.
                let xf = self.new_act(
                    &format!("{}.fakequant", node.name),
                    DType::F32,
                    x.shape.clone(),
                );
                let x = self.in_rowmajor(x, &node.name)?;
                self.g
                    .push(OpCode::Unary, vec![Some(x.t)], xf.t, vec![3], &node.name);
                self.seq.dynq.insert(
                    out,
                    DynQ::ConvProduct {
                        xf,
                        w: wf,
                        node: Box::new(node.clone()),
                    },
                );
                Ok(Some(true))
            }
            "Cast" if attr_i(node, "to", 1) == 1 => {
                let Some(Some(p @ (DynQ::Product(..) | DynQ::ConvProduct { .. }))) =
                    ins.first().cloned()
                else {
                    return Err(cfail("Cast"));
                };
                self.seq.dynq.insert(out, p);
                Ok(Some(true))
            }
            other => Err(cfail(other)),
        }
    }

    /// An `Add` of a constant of `n` elements (along the last axis when
    /// `last_axis`) consuming `out` alone: fused as a bias. Returns the name
    /// the op's result takes and the bias.
    fn take_bias_add(
        &mut self,
        out: &str,
        n: usize,
        last_axis: bool,
    ) -> Result<(String, Option<Vec<f32>>)> {
        if let Some(j) = self.follow(out) {
            let a = &self.nodes[j];
            if a.op_type == "Add" {
                let other = if a.input[0] == out { 1 } else { 0 };
                if let Some(c) = self.const_input(a, other)? {
                    if c.len() == n && (!last_axis || c.shape().last() == Some(&n)) {
                        let bias = c.to_f32_array().iter().copied().collect();
                        let name = Self::out_name(a);
                        self.mark(&[j]);
                        return Ok((name, Some(bias)));
                    }
                }
            }
        }
        Ok((out.to_string(), None))
    }

    /// `Cast(ConvInteger(q(x), w)) · (x_scale · w_scale) [+ bias]` as a float
    /// convolution of the fake-quantized input with `w · w_scale`: the same
    /// sums up to f32 rounding (the integer products are exact in both).
    fn emit_dynamic_conv(
        &mut self,
        node: &NodeProto,
        xf: Act,
        w: ArrayD<f32>,
        ws: &[f32],
        conv: &NodeProto,
        out: &str,
    ) -> Result<()> {
        let co = w.shape()[0];
        if ws.len() != 1 && ws.len() != co {
            return Err(unsupported(
                node,
                "weight scales must be per tensor or per output channel",
            ));
        }
        let mut w = w;
        for (c, mut sl) in w.axis_iter_mut(Axis(0)).enumerate() {
            let s = ws[if ws.len() == 1 { 0 } else { c }];
            sl.mapv_inplace(|v| v * s);
        }
        // Bias: an Add of a constant with Co elements (any shape) right after.
        let (out_name, bias) = self.take_bias_add(out, co, false)?;
        let tag = format!("{}.dynconv", conv.name);
        let (xn, wn, bn) = (format!("{tag}.x"), format!("{tag}.w"), format!("{tag}.b"));
        self.vals.insert(xn.clone(), Val::Act(xf));
        self.vals.insert(wn.clone(), Val::Const(HostTensor::F32(w)));
        let mut n2 = conv.clone();
        n2.op_type = "Conv".into();
        n2.input = vec![xn, wn];
        if let Some(b) = bias {
            let bt = ArrayD::from_shape_vec(IxDyn(&[co]), b).expect("1-D");
            self.vals
                .insert(bn.clone(), Val::Const(HostTensor::F32(bt)));
            n2.input.push(bn);
        }
        n2.output = vec![out_name];
        if self.input_rank(&n2, 0) == Some(3) {
            self.lower_conv1d(&n2)
        } else {
            self.lower_conv(&n2)
        }
    }

    fn emit_dynamic_fc(
        &mut self,
        node: &NodeProto,
        x: Act,
        w: ndarray::Array2<i8>,
        ws: Vec<f32>,
        out: &str,
    ) -> Result<()> {
        let (k, n) = (w.shape()[0], w.shape()[1]);
        if ws.len() != 1 && ws.len() != n {
            return Err(unsupported(
                node,
                "weight scales must be per tensor or per column",
            ));
        }
        if k > dynamic_fc::MAX_DEPTH {
            return Err(unsupported(
                node,
                "inner dimension too large for int32 accumulators",
            ));
        }
        let x = self.fc_input(node, x, k)?;
        // Bias: an Add of a constant [N] right after.
        let (out_name, bias) = self.take_bias_add(out, n, true)?;
        let wt = w.t().as_standard_layout().to_owned(); // [N, K]
        let wd: Vec<i8> = wt.iter().copied().collect();
        let sums: Vec<i32> = wt
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&v| v as i32).sum())
            .collect();
        let name = &node.name;
        let wt_id = self
            .g
            .const_i8(&format!("{name}.weight"), vec![n, k], None, &wd);
        let s_id = self
            .g
            .const_f32(&format!("{name}.w_scale"), vec![ws.len()], &ws);
        let b_id = bias.map(|b| self.g.const_f32(&format!("{name}.bias"), vec![n], &b));
        let sum_id: TId = self.g.const_i32(&format!("{name}.w_sum"), vec![n], &sums);
        let rows = x.shape.iter().product::<usize>() / k.max(1);
        let scratch = self.g.activation(
            &format!("{name}.xq"),
            DType::I8,
            vec![dynamic_fc::fully_connected_dynamic_scratch_size(rows, k).max(1)],
            None,
        );
        let mut oshape = x.shape.clone();
        *oshape.last_mut().expect("rank ≥ 1") = n;
        let y = self.new_act(&out_name, DType::F32, oshape);
        self.g.push(
            OpCode::DynamicFullyConnected,
            vec![
                Some(x.t),
                Some(wt_id),
                Some(s_id),
                b_id,
                Some(sum_id),
                Some(scratch),
            ],
            y.t,
            vec![],
            name,
        );
        self.vals.insert(out_name, Val::Act(y));
        Ok(())
    }
}
