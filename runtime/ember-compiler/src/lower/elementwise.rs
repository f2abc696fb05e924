//! Element-wise arithmetic: `Add`, `Sub`, `Mul`, `Div` (float with numpy
//! broadcasting, int8 `Add`/`Mul` in the QDQ pattern, folded when both
//! operands are constants), `Relu` and `Clip`, and the float unary ops
//! `Erf` and `Sqrt`.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::elementwise::{add_params_s8, mul_params_s8};
use ember_runtime::ops::unary::{self, UnaryOp};
use ember_runtime::ops::{binary, clamp, Bounds};
use ember_runtime::{DType, Rounding};
use ndarray::IxDyn;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_f, unsupported};
use super::fold::{f64_array, fold_binary, like_dtype};
use super::fusion::ActBounds;
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

    pub(super) fn lower_binary(&mut self, _i: usize, node: &NodeProto) -> Result<()> {
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
        Ok(b)
    }

    /// An element-wise f32 function of a run-time tensor.
    pub(super) fn lower_unary(&mut self, node: &NodeProto, op: UnaryOp) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        self.emit_unary(node, x, op, &Self::out_name(node));
        Ok(())
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
                self.emit_unary(node, x, UnaryOp::Sqrt, &Self::out_name(node));
            }
        }
        Ok(())
    }

    pub(super) fn emit_unary(&mut self, node: &NodeProto, x: Act, op: UnaryOp, out: &str) {
        let y = self
            .g
            .activation(out, DType::F32, permuted(&x.shape, &x.perm), None);
        self.g.push(
            OpCode::Unary,
            vec![Some(x.t)],
            y,
            &unary::Params { op },
            &node.name,
        );
        self.vals
            .insert(out.to_string(), Val::Act(Act { t: y, ..x }));
    }
}
