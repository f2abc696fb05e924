//! Reductions: `ReduceSum`, `ReduceMean`, `ReduceL2` and `ReduceMax` over
//! adjacent axes (float).

use ember_runtime::format::OpCode;
use ember_runtime::ops::reduce::{self, ReduceOp};
use ember_runtime::DType;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, attr_ints, axis_of, unsupported};
use super::{Lowerer, Val};
use crate::error::Result;

impl Lowerer<'_> {
    pub(super) fn lower_reduce(&mut self, node: &NodeProto) -> Result<()> {
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
            "ReduceSum" => ReduceOp::Sum,
            "ReduceMean" => ReduceOp::Mean,
            "ReduceL2" => ReduceOp::L2,
            _ => ReduceOp::Max,
        };
        let x = self.in_rowmajor(x, &node.name)?;
        let out = Self::out_name(node);
        let y = self.new_act(&out, DType::F32, shape);
        self.g.push(
            OpCode::Reduce,
            vec![Some(x.t)],
            y.t,
            &reduce::Params {
                op: kind,
                outer,
                n,
                inner,
            },
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }
}
