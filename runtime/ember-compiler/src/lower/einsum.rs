//! `Einsum` without ellipses or repeated letters within an operand, the
//! forms exporters write: one operand (transpose, sums) or two (batched
//! products, outer and inner products) — lowered to ReduceSum, Transpose,
//! Reshape and MatMul.

use tract_onnx::pb::NodeProto;

use super::attrs::{attr_s, reduce_step, step, unsupported};
use super::shape::transposed;
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};

impl Lowerer<'_> {
    pub(super) fn lower_einsum(&mut self, node: &NodeProto) -> Result<()> {
        let eq: String = attr_s(node, "equation")
            .ok_or_else(|| malformed(format!("node '{}': no equation", node.name)))?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if eq.contains("...") {
            return Err(unsupported(
                node,
                format!("equation '{eq}' (ellipses are not supported)"),
            ));
        }
        let (lhs, rhs) = match eq.split_once("->") {
            Some((l, r)) => (l.to_string(), Some(r.to_string())),
            None => (eq.clone(), None),
        };
        let terms: Vec<Vec<char>> = lhs.split(',').map(|t| t.chars().collect()).collect();
        if terms.len() != node.input.len() || !(1..=2).contains(&terms.len()) {
            return Err(unsupported(
                node,
                format!(
                    "equation '{eq}' ({} operands; one or two are supported)",
                    terms.len()
                ),
            ));
        }
        for (k, t) in terms.iter().enumerate() {
            if t.iter().any(|c| !c.is_ascii_alphabetic()) {
                return Err(malformed(format!("node '{}': equation '{eq}'", node.name)));
            }
            let mut s = t.clone();
            s.sort_unstable();
            s.dedup();
            if s.len() != t.len() {
                return Err(unsupported(node, format!("equation '{eq}' (a letter repeated within an operand: diagonals are not supported)")));
            }
            if self.input_rank(node, k) != Some(t.len()) {
                return Err(malformed(format!(
                    "node '{}': equation '{eq}' does not match the operand ranks",
                    node.name
                )));
            }
        }
        // Implicit output: the letters used once, in alphabetical order.
        let out: Vec<char> = match rhs {
            Some(r) => r.chars().collect(),
            None => {
                let mut once: Vec<char> = terms
                    .iter()
                    .flatten()
                    .copied()
                    .filter(|c| terms.iter().flatten().filter(|d| *d == c).count() == 1)
                    .collect();
                once.sort_unstable();
                once
            }
        };
        let name = Self::out_name(node);
        let t = |s: &str| format!("{name}.{s}");
        // Sum each operand's letters that appear nowhere else.
        let mut names: Vec<String> = node.input.clone();
        let mut letters = terms.clone();
        for k in 0..terms.len() {
            let others: Vec<char> = terms
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .flat_map(|(_, t)| t.iter().copied())
                .chain(out.iter().copied())
                .collect();
            let own: Vec<i64> = (0..letters[k].len())
                .filter(|&i| !others.contains(&letters[k][i]))
                .map(|i| i as i64)
                .collect();
            if !own.is_empty() {
                let summed = t(&format!("summed{k}"));
                let mut r = reduce_step(node, "ReduceSum", &names[k], &summed, own.clone());
                r.attribute.push(tract_onnx::pb::AttributeProto {
                    name: "keepdims".into(),
                    i: 0,
                    r#type: 2, // INT
                    ..Default::default()
                });
                self.lower_reduce(&r)?;
                letters[k] = letters[k]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !own.contains(&(*i as i64)))
                    .map(|(_, &c)| c)
                    .collect();
                names[k] = summed;
            }
        }
        if letters.len() == 1 {
            return self.einsum_permute(node, &names[0], &letters[0], &out, &name);
        }
        // Two operands: batch letters (both and the output), contracted
        // (both, not the output), left-only and right-only.
        let (a, b) = (&letters[0], &letters[1]);
        let batch: Vec<char> = out
            .iter()
            .copied()
            .filter(|c| a.contains(c) && b.contains(c))
            .collect();
        let contract: Vec<char> = a
            .iter()
            .copied()
            .filter(|c| b.contains(c) && !out.contains(c))
            .collect();
        let left: Vec<char> = a.iter().copied().filter(|c| !b.contains(c)).collect();
        let right: Vec<char> = b.iter().copied().filter(|c| !a.contains(c)).collect();
        let size = |lw: &Self, n: &str, l: &[char], c: char| -> Result<usize> {
            let v = lw
                .vals
                .get(n)
                .ok_or_else(|| malformed(format!("node '{}': no operand {n}", node.name)))?;
            Ok(v.shape()[l.iter().position(|&x| x == c).unwrap_or(0)])
        };
        let dim = |lw: &Self, c: char| -> Result<usize> {
            if a.contains(&c) {
                size(lw, &names[0], a, c)
            } else {
                size(lw, &names[1], b, c)
            }
        };
        for &c in batch.iter().chain(&contract) {
            if size(self, &names[0], a, c)? != size(self, &names[1], b, c)? {
                return Err(malformed(format!(
                    "node '{}': letter '{c}' sizes differ",
                    node.name
                )));
            }
        }
        let prod = |lw: &Self, l: &[char]| -> Result<usize> {
            l.iter().try_fold(1usize, |p, &c| Ok(p * dim(lw, c)?))
        };
        let (bt, m, kk, n) = (
            prod(self, &batch)?,
            prod(self, &left)?,
            prod(self, &contract)?,
            prod(self, &right)?,
        );
        let order_a: Vec<char> = [batch.clone(), left.clone(), contract.clone()].concat();
        let order_b: Vec<char> = [batch.clone(), contract.clone(), right.clone()].concat();
        self.einsum_permute(node, &names[0], a, &order_a, &t("a_ordered"))?;
        self.einsum_permute(node, &names[1], b, &order_b, &t("b_ordered"))?;
        self.einsum_reshape(node, &t("a_ordered"), vec![bt, m, kk], &t("a3"))?;
        self.einsum_reshape(node, &t("b_ordered"), vec![bt, kk, n], &t("b3"))?;
        self.lower_matmul_node(&step(node, "MatMul", &[t("a3"), t("b3")], &t("product")))?;
        let mut dims = vec![];
        for &c in batch.iter().chain(&left).chain(&right) {
            dims.push(dim(self, c)?);
        }
        self.einsum_reshape(node, &t("product"), dims, &t("unfolded"))?;
        let have: Vec<char> = [batch, left, right].concat();
        self.einsum_permute(node, &t("unfolded"), &have, &out, &name)
    }

    /// Binds `out` to value `x` (letters `have`) with its axes in the order
    /// `want` (a permutation of `have`).
    fn einsum_permute(
        &mut self,
        node: &NodeProto,
        x: &str,
        have: &[char],
        want: &[char],
        out: &str,
    ) -> Result<()> {
        if have.len() != want.len() || want.iter().any(|c| !have.contains(c)) {
            return Err(unsupported(
                node,
                "an output letter missing from the operands",
            ));
        }
        let perm: Vec<usize> = want
            .iter()
            .map(|c| have.iter().position(|h| h == c).unwrap_or(0))
            .collect();
        let v = self
            .vals
            .get(x)
            .cloned()
            .ok_or_else(|| malformed(format!("node '{}': no operand {x}", node.name)))?;
        let v = transposed(v, &perm)?;
        self.vals.insert(out.to_string(), v);
        Ok(())
    }

    /// Binds `out` to value `x` reshaped to `dims` (constants folded).
    fn einsum_reshape(
        &mut self,
        node: &NodeProto,
        x: &str,
        dims: Vec<usize>,
        out: &str,
    ) -> Result<()> {
        let v = self
            .vals
            .get(x)
            .cloned()
            .ok_or_else(|| malformed(format!("node '{}': no operand {x}", node.name)))?;
        let v = match v {
            Val::Act(a) => Val::Act(self.reshape_act(a, dims, out)?),
            Val::DqAct { .. } => {
                let a: Act = self.float_act(x, &node.op_type)?;
                Val::Act(self.reshape_act(a, dims, out)?)
            }
            c => {
                let c = match c {
                    Val::Const(c) => c,
                    v => crate::tensor::HostTensor::F32(super::dequant_const(&v)?),
                };
                Val::Const(c.map_layout(|a| {
                    a.as_standard_layout()
                        .to_owned()
                        .into_shape_with_order(ndarray::IxDyn(&dims))
                        .map_err(|e| malformed(e.to_string()))
                })?)
            }
        };
        self.vals.insert(out.to_string(), v);
        Ok(())
    }
}
