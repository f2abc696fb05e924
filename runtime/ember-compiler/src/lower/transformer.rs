//! Transformer patterns fused into one op each: `MatMul → scale → [+ mask]
//! → Softmax → MatMul` as `Attention` (one row of scores at a time), and
//! the erf GELU `x / √2 → Erf → + 1 → · x → · 0.5`.

use ember_runtime::format::{OpCode, SCRATCH_INPUT};
use ember_runtime::kernels::attention::attention_f32_scratch_size;
use ember_runtime::ops::attention;
use ember_runtime::ops::unary::{UnaryFn, UnaryOp};
use ember_runtime::DType;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, attr_ints, axis_of};
use super::fold::scalar_of;
use super::layout::{identity, permuted, view3};
use super::{Act, Lowerer, Val};
use crate::error::Result;

impl Lowerer<'_> {
    /// `x / √2 → Erf → + 1 → · x → · 0.5` (or `x · (1/√2)` first) as one
    /// GELU op.
    pub(super) fn try_gelu(&mut self, _i: usize, node: &NodeProto) -> Result<bool> {
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
        self.emit_unary(node, x, UnaryFn::of(UnaryOp::Gelu), &ho);
        Ok(true)
    }

    /// `MatMul(Q, Kᵀ) → (Mul|Div by scalars)* → [Add mask] → Softmax(last)
    /// → MatMul(·, V)` as one attention op.
    pub(super) fn try_attention(&mut self, node: &NodeProto) -> Result<bool> {
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
            vec![attention_f32_scratch_size(sk, dv)],
            None,
        );
        let heads = eq[0];
        let sm_ = mask_act.as_ref().map(|(_, s)| *s).unwrap_or([0; 3]);
        // K is read transposed: its (head, position, depth) strides are
        // Kᵀ's (head, column, row) ones.
        let p = attention::Params {
            heads,
            sq,
            sk,
            d,
            dv,
            q: sq_,
            k: [skt[0], skt[2], skt[1]],
            v: sv,
            y: sy,
            mask: sm_,
            scale: scale as f32,
        };
        let mut inputs = vec![
            Some(q.t),
            Some(kt.t),
            Some(v.t),
            mask_act.map(|(m, _)| m.t),
            None,
        ];
        debug_assert_eq!(inputs.len(), SCRATCH_INPUT);
        inputs.push(Some(scratch));
        self.g.push(OpCode::Attention, inputs, yt, &p, &node.name);
        nodes.push(softmax);
        nodes.push(pv);
        self.mark(&nodes);
        self.vals.insert(out, Val::Act(y));
        Ok(true)
    }
}
