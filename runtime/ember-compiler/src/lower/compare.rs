//! Comparisons and logic: `Equal`, `Greater`, `GreaterOrEqual`, `Less`,
//! `LessOrEqual`, `And`, `Or`, `Xor`, `Not` and `Where` (the attention-mask
//! subgraph): folded when the operands are constants, small runtime ops
//! otherwise.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::unary::{UnaryFn, UnaryOp};
use ember_runtime::ops::compare::{self, CompareOp};
use ember_runtime::ops::NoParams;
use ember_runtime::DType;
use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::NodeProto;

use super::attrs::step;
use super::fold::{bools, broadcast_shape, broadcast_to, f64_array, like_dtype, runtime_dtype};
use super::{attrs::unsupported, Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;

impl Lowerer<'_> {
    fn compare_kind(op: &str) -> CompareOp {
        match op {
            "Equal" => CompareOp::Equal,
            "Greater" => CompareOp::Greater,
            "GreaterOrEqual" => CompareOp::GreaterOrEqual,
            "Less" => CompareOp::Less,
            "LessOrEqual" => CompareOp::LessOrEqual,
            "And" => CompareOp::And,
            "Or" => CompareOp::Or,
            _ => CompareOp::Xor,
        }
    }

    pub(super) fn lower_compare(&mut self, node: &NodeProto) -> Result<()> {
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
                        CompareOp::Equal => u == v,
                        CompareOp::Greater => u > v,
                        CompareOp::GreaterOrEqual => u >= v,
                        CompareOp::Less => u < v,
                        CompareOp::LessOrEqual => u <= v,
                        CompareOp::And => u != 0.0 && v != 0.0,
                        CompareOp::Or => u != 0.0 || v != 0.0,
                        CompareOp::Xor => (u != 0.0) != (v != 0.0),
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

    pub(super) fn lower_not(&mut self, node: &NodeProto) -> Result<()> {
        match self.req_input(node, 0)? {
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
                self.emit_compare(node, CompareOp::Equal, x, z)?;
            }
        }
        Ok(())
    }

    fn emit_compare(&mut self, node: &NodeProto, kind: CompareOp, a: Act, b: Act) -> Result<()> {
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
            &compare::Params { op: kind },
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    pub(super) fn lower_where(&mut self, node: &NodeProto) -> Result<()> {
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
            &NoParams,
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    /// `IsNaN` (`not (x == x)`) and `IsInf` (`|x| == ∞`, or `x == +∞`,
    /// `x == −∞` by `detect_positive` / `detect_negative`).
    pub(super) fn lower_is_special(&mut self, node: &NodeProto) -> Result<()> {
        let out = Self::out_name(node);
        let x = node.input[0].clone();
        if node.op_type == "IsNaN" {
            let eq = format!("{out}.self_equal");
            self.lower_compare(&step(node, "Equal", &[x.clone(), x], &eq))?;
            return self.lower_not(&step(node, "Not", &[eq], &out));
        }
        let (pos, neg) = (
            super::attrs::attr_i(node, "detect_positive", 1) != 0,
            super::attrs::attr_i(node, "detect_negative", 1) != 0,
        );
        let inf = format!("{out}.inf");
        let (v, arg) = match (pos, neg) {
            (true, true) => {
                let abs = format!("{out}.abs");
                self.lower_unary(&step(node, "Abs", &[x], &abs), UnaryFn::of(UnaryOp::Abs))?;
                (f32::INFINITY, abs)
            }
            (true, false) => (f32::INFINITY, x),
            (false, true) => (f32::NEG_INFINITY, x),
            (false, false) => (f32::NAN, x), // never equal: all false
        };
        self.vals.insert(
            inf.clone(),
            Val::Const(HostTensor::F32(ndarray::arr0(v).into_dyn())),
        );
        self.lower_compare(&step(node, "Equal", &[arg, inf], &out))
    }
}
