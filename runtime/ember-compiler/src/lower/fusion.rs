//! Fusion: finding the nodes after an op that the op absorbs (a `Relu` or
//! `Clip`, a `QuantizeLinear`, a bias `Add`), marking them done, and
//! looking ahead of the walk for constants and values a pattern needs.

use tract_onnx::pb::NodeProto;

use super::attrs::{attr, attr_f};
use super::{Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::{from_proto, HostTensor};

/// Fused activation bounds in real (float) units.
#[derive(Clone, Copy, Debug)]
pub(super) struct ActBounds {
    pub(super) lo: f32,
    pub(super) hi: f32,
}

impl ActBounds {
    pub(super) const NONE: ActBounds = ActBounds {
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
    };
}

/// A matched `[Relu|Clip] → QuantizeLinear` tail after an op.
pub(super) struct QTail {
    pub(super) act: ActBounds,
    pub(super) out_name: String,
    pub(super) scale: f32,
    pub(super) zp: i32,
    pub(super) nodes: Vec<usize>,
}

fn round_away(x: f32) -> i32 {
    x.round() as i32
}

impl Lowerer<'_> {
    /// The only consumer of `v`, if `v` has exactly one and is not a graph
    /// output.
    pub(super) fn follow(&self, v: &str) -> Option<usize> {
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
    pub(super) fn match_act(&self, v: &str) -> Option<(ActBounds, String, usize)> {
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
                if lo.is_nan() || hi.is_nan() {
                    return None;
                }
                // ONNX: with min > max every value becomes max.
                ActBounds { lo: lo.min(hi), hi }
            }
            _ => return None,
        };
        Some((b, Self::out_name(n), i))
    }

    /// Matches `[Relu|Clip] → QuantizeLinear(per-tensor int8)` after `v`.
    pub(super) fn match_qtail(&self, v: &str) -> Option<QTail> {
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
    pub(super) fn qparams(&self, q: &NodeProto) -> Result<Option<(f32, i32)>> {
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
        let scale = s.to_f64()[0] as f32;
        check_scale(q, scale)?;
        Ok(Some((scale, zp_v)))
    }

    pub(super) fn mark(&mut self, nodes: &[usize]) {
        for &i in nodes {
            self.done[i] = true;
        }
    }

    /// Int8 bounds of a fused activation in the output's quantization.
    pub(super) fn act_i8(act: ActBounds, scale: f32, zp: i32) -> (i32, i32) {
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

    /// An `Add` of a constant of `n` elements (along the last axis when
    /// `last_axis`) consuming `out` alone: fused as a bias. Returns the name
    /// the op's result takes and the bias.
    pub(super) fn take_bias_add(
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

    /// The constant value `name` has or will have: already lowered, or
    /// the output of a `Constant` node further down (patterns look ahead
    /// of the walk).
    pub(super) fn peek_const(&self, name: &str) -> Option<HostTensor> {
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
    pub(super) fn lower_ahead(&mut self, name: &str, before: usize) -> Result<bool> {
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
}

/// `Err` naming the node unless a quantization scale is positive and
/// finite (a zero scale divides by zero; a negative one flips the data).
pub(super) fn check_scale(node: &NodeProto, scale: f32) -> Result<()> {
    if scale > 0.0 && scale.is_finite() {
        Ok(())
    } else {
        Err(malformed(format!(
            "node '{}' ({}): scale {scale} (a quantization scale must be positive and finite)",
            node.name, node.op_type
        )))
    }
}
