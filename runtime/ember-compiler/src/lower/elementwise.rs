//! Element-wise arithmetic: `Add`, `Sub`, `Mul`, `Div` (float with numpy
//! broadcasting, int8 `Add`/`Mul` in the QDQ pattern, folded when both
//! operands are constants), `Relu` and `Clip`, and the float unary ops
//! `Erf` and `Sqrt`.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::elementwise::{add_params_s8, mul_params_s8};
use ember_runtime::kernels::quantize::quantize_f32_s8;
use ember_runtime::ops::unary::{self, UnaryFn, UnaryOp};
use ember_runtime::ops::NoParams;
use ember_runtime::ops::{binary, clamp, Bounds};
use ember_runtime::{DType, Rounding};
use ndarray::IxDyn;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_f, attr_i, step, unsupported};
use super::fold::{broadcast_shape, f64_array, fold_binary, like_dtype};
use super::fusion::{ActBounds, QTail};
use super::layout::{identity, permuted};
use super::quantize::dq_params;
use super::{dequant_const, Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::ir::TId;
use crate::tensor::HostTensor;

impl Lowerer<'_> {
    /// `Mul` or `Div`: the erf GELU pattern starts with one; otherwise an
    /// element-wise op.
    pub(super) fn lower_mul_div(&mut self, i: usize, node: &NodeProto) -> Result<()> {
        if self.try_gelu(i, node)? {
            return Ok(());
        }
        self.lower_binary(i, node)
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
    pub(super) fn binary_const(
        &mut self,
        node: &NodeProto,
        v: &Val,
        like: &Act,
        float: bool,
    ) -> Result<Act> {
        let rank = like.shape.len();
        let (arr, q) = match v {
            Val::Const(c) if float && self.g.tensors[like.t].dtype == DType::I32 => {
                (f64_array(c), None)
            }
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
        let int_like = q.is_none() && self.g.tensors[like.t].dtype == DType::I32;
        let t = match q {
            None if int_like => {
                let d: Vec<i32> = phys
                    .iter()
                    .map(|&x| {
                        (x.fract() == 0.0 && x >= i32::MIN as f64 && x <= i32::MAX as f64)
                            .then_some(x as i32)
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        unsupported(
                            node,
                            "an int32 operand with a constant that is not an int32",
                        )
                    })?;
                self.g.const_i32(&format!("{}.const", node.name), dims, &d)
            }
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

    pub(super) fn lower_binary(&mut self, _i: usize, node: &NodeProto) -> Result<()> {
        let a = self.req_input(node, 0)?;
        let b = self.req_input(node, 1)?;
        let out = Self::out_name(node);
        // Constant folding.
        if let (Val::Const(x), Val::Const(y)) = (&a, &b) {
            if broadcast_shape(x.shape(), y.shape()).is_none() {
                return Err(malformed(format!(
                    "node '{}': shapes do not broadcast",
                    node.name
                )));
            }
            let r = fold_binary(&node.op_type, x, y)
                .ok_or_else(|| unsupported(node, "folding this constant expression"))?;
            self.set(node, 0, Val::Const(r));
            return Ok(());
        }
        // Plain (not quantized) 8-bit integers: computed in int32 and
        // wrapped back, as numpy and onnxruntime do.
        if let Some(narrow) = [&a, &b].into_iter().find_map(|v| self.plain_8bit(v)) {
            return self.in_int32(node, narrow, |lw, n| lw.lower_binary(0, n));
        }
        let opcode = match node.op_type.as_str() {
            "Add" => OpCode::Add,
            "Sub" => OpCode::Sub,
            "Mul" => OpCode::Mul,
            "Pow" => OpCode::Pow,
            "Min" => OpCode::Min,
            "Max" => OpCode::Max,
            "Mod" if attr_i(node, "fmod", 0) != 0 => OpCode::Fmod,
            "Mod" => OpCode::Mod,
            "PRelu" => OpCode::PRelu,
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
                    let fixed = if self.rounding != Rounding::TfliteFixedPoint {
                        binary::Fixed::None
                    } else if opcode == OpCode::Add {
                        binary::Fixed::Add(binary::AddFixed::of(&add_params_s8(
                            qa.0, qa.1, qb.0, qb.1, tail.scale, tail.zp, lo, hi,
                        )))
                    } else {
                        let p = mul_params_s8(qa.0, qa.1, qb.0, qb.1, tail.scale, tail.zp, lo, hi);
                        binary::Fixed::Mul {
                            out_mult: p.out_mult,
                            out_shift: p.out_shift,
                        }
                    };
                    let params = binary::Params {
                        act: Bounds::int(lo, hi),
                        fixed,
                    };
                    let y = self.g.activation(
                        &tail.out_name,
                        DType::I8,
                        permuted(&shape, &perm),
                        Some((tail.scale, tail.zp)),
                    );
                    self.g
                        .push(opcode, vec![Some(ta), Some(tb)], y, &params, &node.name);
                    self.vals
                        .insert(tail.out_name.clone(), Val::Act(Act { t: y, shape, perm }));
                    return Ok(());
                }
            }
        }
        let (ta, tb, shape, perm) = self.binary_operands(node, a, b, true)?;
        let dtype = self.g.tensors[ta].dtype;
        if self.g.tensors[tb].dtype != dtype {
            return Err(unsupported(
                node,
                format!(
                    "operands of different types ({} and {})",
                    dtype.name(),
                    self.g.tensors[tb].dtype.name()
                ),
            ));
        }
        if dtype == DType::I32 {
            let y = self
                .g
                .activation(&out, DType::I32, permuted(&shape, &perm), None);
            self.g.push(
                opcode,
                vec![Some(ta), Some(tb)],
                y,
                &binary::Params {
                    act: Bounds::int(i32::MIN, i32::MAX),
                    fixed: binary::Fixed::None,
                },
                &node.name,
            );
            self.vals.insert(out, Val::Act(Act { t: y, shape, perm }));
            return Ok(());
        }
        if dtype != DType::F32 {
            return Err(unsupported(
                node,
                format!("{} operands without DequantizeLinear", dtype.name()),
            ));
        }
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
            &binary::Params {
                act: Bounds::float(act.lo, act.hi),
                fixed: binary::Fixed::None,
            },
            &node.name,
        );
        self.vals
            .insert(out_name, Val::Act(Act { t: y, shape, perm }));
        Ok(())
    }

    /// `Sum`, `Mean`, `Max`, `Min` of any number of inputs: a chain of
    /// binary ops (`Mean` divides the sum by the count at the end).
    pub(super) fn lower_variadic(&mut self, i: usize, node: &NodeProto) -> Result<()> {
        let inputs: Vec<&String> = node.input.iter().collect();
        let Some(first) = inputs.first() else {
            return Err(malformed(format!(
                "node '{}' ({}) has no inputs",
                node.name, node.op_type
            )));
        };
        let out = Self::out_name(node);
        let mean = node.op_type == "Mean";
        let op = match node.op_type.as_str() {
            "Mean" | "Sum" => "Add",
            other => other,
        };
        if inputs.len() == 1 {
            let v = self.req_input(node, 0)?;
            self.vals.insert(out, v);
            return Ok(());
        }
        let mut acc = (*first).clone();
        for (k, next) in inputs.iter().enumerate().skip(1) {
            let last = k + 1 == inputs.len();
            let o = if last && !mean {
                out.clone()
            } else {
                format!("{out}.{}{k}", op.to_lowercase())
            };
            let step = NodeProto {
                op_type: op.to_string(),
                name: format!("{}.{k}", node.name),
                input: vec![acc, (*next).clone()],
                output: vec![o.clone()],
                ..Default::default()
            };
            self.lower_binary(i, &step)?;
            acc = o;
        }
        if mean {
            let n = format!("{out}.count");
            self.vals.insert(
                n.clone(),
                Val::Const(HostTensor::F32(
                    ndarray::arr0(inputs.len() as f32).into_dyn(),
                )),
            );
            let div = NodeProto {
                op_type: "Div".into(),
                name: node.name.clone(),
                input: vec![acc, n],
                output: vec![out],
                ..Default::default()
            };
            self.lower_binary(i, &div)?;
        }
        Ok(())
    }

    pub(super) fn lower_clamp(&mut self, node: &NodeProto) -> Result<()> {
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
                        &clamp::Params {
                            bounds: Bounds::int(lo, hi),
                        },
                        &node.name,
                    );
                    self.vals.insert(qout, Val::Act(Act { t: y, ..src }));
                    return Ok(());
                }
            }
        }
        // Integers: max with the lower bound, min with the upper, in int32.
        if let Some(Val::Act(a)) = self.input_val(node, 0)? {
            let dtype = self.g.tensors[a.t].dtype;
            let plain = self.g.tensors[a.t].quant.is_none();
            if plain && matches!(dtype, DType::I8 | DType::U8 | DType::I32) {
                return self.lower_int_clamp(node, dtype);
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
            &clamp::Params {
                bounds: Bounds::float(b.lo, b.hi),
            },
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
        if b.lo.is_nan() || b.hi.is_nan() {
            return Err(unsupported(node, "a NaN bound"));
        }
        // ONNX: with min > max every value becomes max.
        b.lo = b.lo.min(b.hi);
        Ok(b)
    }

    /// An element-wise function: folded on a constant; on int8 in the QDQ
    /// pattern (`DequantizeLinear → f → [Relu|Clip] → QuantizeLinear`) a
    /// 256-entry table computed here from the runtime's own f32 function
    /// and rounded once; otherwise the f32 kernel.
    pub(super) fn lower_unary(&mut self, node: &NodeProto, f: UnaryFn) -> Result<()> {
        let out = Self::out_name(node);
        self.req_input(node, 0)?;
        if let Some(c) = self.const_input(node, 0)? {
            let v = if matches!(c, HostTensor::F32(_)) {
                f64_array(&c).mapv(|v| f.at(v as f32) as f64)
            } else {
                // Integers: only the functions exact on them.
                let g: fn(f64) -> f64 = match f.op {
                    UnaryOp::Neg => |v| -v,
                    UnaryOp::Abs => f64::abs,
                    UnaryOp::Sign => |v| if v == 0.0 { 0.0 } else { v.signum() },
                    UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round => |v| v,
                    _ => {
                        return Err(unsupported(
                            node,
                            "folding this function of an integer constant",
                        ))
                    }
                };
                f64_array(&c).mapv(g)
            };
            self.set(node, 0, Val::Const(like_dtype(&c, v)));
            return Ok(());
        }
        // Integer Neg and Abs at run time: 0 − x, and max(x, 0 − x).
        if let Val::Act(a) = self.req_input(node, 0)? {
            if self.g.tensors[a.t].dtype == DType::I32
                && matches!(f.op, UnaryOp::Neg | UnaryOp::Abs)
            {
                let zero = format!("{out}.zero");
                let neg = if f.op == UnaryOp::Neg {
                    out.clone()
                } else {
                    format!("{out}.neg")
                };
                self.vals.insert(
                    zero.clone(),
                    Val::Const(HostTensor::I32(ndarray::arr0(0).into_dyn())),
                );
                self.lower_binary(0, &step(node, "Sub", &[zero, node.input[0].clone()], &neg))?;
                if f.op == UnaryOp::Abs {
                    self.lower_binary(0, &step(node, "Max", &[node.input[0].clone(), neg], &out))?;
                }
                return Ok(());
            }
        }
        match self.req_input(node, 0)? {
            Val::DqAct { src, scale, zp } if f.op != UnaryOp::FakeQuantDynamic => {
                if let Some(tail) = self.match_qtail(&out) {
                    self.mark(&tail.nodes);
                    let table = self.lut_table(&f, (scale, zp), &tail);
                    let t = self.g.const_i8(
                        &format!("{}.lut", node.name),
                        vec![256],
                        Some((tail.scale, tail.zp)),
                        &table,
                    );
                    self.g.set_quant(src.t, Some((scale, zp)));
                    let dims = self.g.tensors[src.t].dims.clone();
                    let y = self.g.activation(
                        &tail.out_name,
                        DType::I8,
                        dims,
                        Some((tail.scale, tail.zp)),
                    );
                    self.g.push(
                        OpCode::Lut,
                        vec![Some(src.t), Some(t)],
                        y,
                        &NoParams,
                        &node.name,
                    );
                    self.vals
                        .insert(tail.out_name.clone(), Val::Act(Act { t: y, ..src }));
                    return Ok(());
                }
            }
            _ => {}
        }
        let x = self.float_act(&node.input[0], &node.op_type)?;
        self.emit_unary(node, x, f, &out);
        Ok(())
    }

    /// The int8 table of `f` between the input's and the tail's
    /// quantization, indexed by the input's bit pattern: each entry is
    /// `f(dequantize(q))` clamped by the tail's activation and quantized
    /// once, with the model's rounding.
    fn lut_table(&self, f: &UnaryFn, (scale, zp): (f32, i32), tail: &QTail) -> Vec<i8> {
        (0..=255u8)
            .map(|b| {
                let q = b as i8 as i32;
                let y = f
                    .at((q - zp) as f32 * scale)
                    .max(tail.act.lo)
                    .min(tail.act.hi);
                let mut o = [0i8];
                if self.rounding == Rounding::TfliteFixedPoint {
                    let r = (y / tail.scale).round();
                    let v = if r.is_nan() { 0 } else { r as i32 };
                    o[0] = (v.saturating_add(tail.zp)).clamp(-128, 127) as i8;
                } else {
                    // Infallible: one element in, one out.
                    let _ = quantize_f32_s8(&[y], tail.scale, tail.zp, &mut o);
                }
                o[0]
            })
            .collect()
    }

    pub(super) fn lower_sqrt(&mut self, node: &NodeProto) -> Result<()> {
        match self.req_input(node, 0)? {
            Val::Const(c) => self.set(
                node,
                0,
                Val::Const(like_dtype(&c, f64_array(&c).mapv(f64::sqrt))),
            ),
            _ => {
                let x = self.float_act(&node.input[0], "Sqrt")?;
                self.emit_unary(node, x, UnaryFn::of(UnaryOp::Sqrt), &Self::out_name(node));
            }
        }
        Ok(())
    }

    pub(super) fn emit_unary(&mut self, node: &NodeProto, x: Act, f: UnaryFn, out: &str) {
        let y = self
            .g
            .activation(out, DType::F32, permuted(&x.shape, &x.perm), None);
        self.g.push(
            OpCode::Unary,
            vec![Some(x.t)],
            y,
            &unary::Params { f },
            &node.name,
        );
        self.vals
            .insert(out.to_string(), Val::Act(Act { t: y, ..x }));
    }

    /// The dtype of `v` when it is a plain (not quantized) 8-bit integer
    /// tensor.
    fn plain_8bit(&self, v: &Val) -> Option<DType> {
        match v {
            Val::Act(a) => {
                let t = &self.g.tensors[a.t];
                (matches!(t.dtype, DType::I8 | DType::U8) && t.quant.is_none()).then_some(t.dtype)
            }
            _ => None,
        }
    }

    /// Lowers `node` by `lower` on int32 copies of its 8-bit runtime
    /// inputs, then casts its output back to `narrow` (wrapping).
    fn in_int32(
        &mut self,
        node: &NodeProto,
        narrow: DType,
        lower: impl FnOnce(&mut Self, &NodeProto) -> Result<()>,
    ) -> Result<()> {
        let out = Self::out_name(node);
        let mut n = node.clone();
        for (k, name) in node.input.iter().enumerate() {
            if let Some(Val::Act(a)) = self.vals.get(name).cloned() {
                if self.plain_8bit(&Val::Act(a.clone())).is_some() {
                    let wide = self.emit_cast(a, DType::I32, &format!("{name}.i32"));
                    let wname = format!("{}.{name}.i32", node.name);
                    self.vals.insert(wname.clone(), Val::Act(wide));
                    n.input[k] = wname;
                }
            }
        }
        let wide_out = format!("{out}.i32");
        n.output = vec![wide_out.clone()];
        lower(self, &n)?;
        let y = match self.vals.get(&wide_out).cloned() {
            Some(Val::Act(y)) => y,
            _ => return Err(unsupported(node, "no int32 result")),
        };
        let y = self.emit_cast(y, narrow, &out);
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    /// `Clip` / `Relu` of plain integers: `min(max(x, lo), hi)` in int32
    /// (bounds default to the type's range), cast back.
    fn lower_int_clamp(&mut self, node: &NodeProto, dtype: DType) -> Result<()> {
        let (tlo, thi) = match dtype {
            DType::I8 => (i8::MIN as i64, i8::MAX as i64),
            DType::U8 => (0, u8::MAX as i64),
            _ => (i32::MIN as i64, i32::MAX as i64),
        };
        let bound = |lw: &Self, i: usize, d: i64| -> Result<i64> {
            if node.op_type == "Relu" {
                return Ok(if i == 1 { 0 } else { d });
            }
            Ok(match lw.const_input(node, i)? {
                Some(c) => c.to_i64().first().copied().unwrap_or(d),
                None if node.input.get(i).is_some_and(|n| !n.is_empty()) => {
                    return Err(unsupported(node, "bounds must be constant"))
                }
                None => d,
            })
        };
        let (lo, hi) = (bound(self, 1, tlo)?, bound(self, 2, thi)?);
        let out = Self::out_name(node);
        let (lo_n, hi_n, mid) = (
            format!("{out}.lo"),
            format!("{out}.hi"),
            format!("{out}.max"),
        );
        let scalar = |v: i64| {
            Val::Const(HostTensor::I32(
                ndarray::arr0(v.clamp(i32::MIN as i64, i32::MAX as i64) as i32).into_dyn(),
            ))
        };
        self.vals.insert(lo_n.clone(), scalar(lo));
        self.vals.insert(hi_n.clone(), scalar(hi));
        let x = node.input[0].clone();
        let clip = move |lw: &mut Self, n: &NodeProto| -> Result<()> {
            let out = Self::out_name(n);
            lw.lower_binary(0, &step(n, "Max", &[n.input[0].clone(), lo_n], &mid))?;
            lw.lower_binary(0, &step(n, "Min", &[mid, hi_n], &out))
        };
        if dtype == DType::I32 {
            let mut n = node.clone();
            n.input = vec![x];
            return clip(self, &n);
        }
        let mut n = node.clone();
        n.input = vec![x];
        self.in_int32(&n, dtype, clip)
    }
}
