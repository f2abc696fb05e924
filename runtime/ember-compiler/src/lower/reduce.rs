//! Reductions: `ReduceSum`, `ReduceMean`, `ReduceMax`, `ReduceMin`,
//! `ReduceProd`, `ReduceL1`, `ReduceL2`, `ReduceSumSquare`, `ReduceLogSum`,
//! `ReduceLogSumExp` over any set of axes, and `ArgMax` / `ArgMin` (float).
//! The reduced axes are brought together by a layout change when they are
//! not adjacent.

use ember_runtime::format::OpCode;
use ember_runtime::ops::reduce::{self, ReduceOp};
use ember_runtime::DType;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, attr_ints, axis_of, unsupported};
use super::layout::identity;
use super::{Lowerer, Val};
use crate::error::Result;

impl Lowerer<'_> {
    pub(super) fn lower_reduce(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let rank = x.shape.len();
        let arg = matches!(node.op_type.as_str(), "ArgMax" | "ArgMin");
        let axes = if arg {
            vec![attr_i(node, "axis", 0)]
        } else {
            match self.const_input(node, 1)? {
                Some(a) => a.to_i64(),
                None if node.input.get(1).is_some_and(|n| !n.is_empty()) => {
                    return Err(unsupported(node, "the axes must be known at compile time"))
                }
                None => attr_ints(node, "axes").unwrap_or_default(),
            }
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
        let last = attr_i(node, "select_last_index", 0) != 0;
        let kind = match node.op_type.as_str() {
            "ReduceSum" => ReduceOp::Sum,
            "ReduceMean" => ReduceOp::Mean,
            "ReduceL2" => ReduceOp::L2,
            "ReduceL1" => ReduceOp::L1,
            "ReduceMin" => ReduceOp::Min,
            "ReduceProd" => ReduceOp::Prod,
            "ReduceSumSquare" => ReduceOp::SumSquare,
            "ReduceLogSum" => ReduceOp::LogSum,
            "ReduceLogSumExp" => ReduceOp::LogSumExp,
            "ArgMax" if last => ReduceOp::ArgMaxLast,
            "ArgMax" => ReduceOp::ArgMax,
            "ArgMin" if last => ReduceOp::ArgMinLast,
            "ArgMin" => ReduceOp::ArgMin,
            _ => ReduceOp::Max,
        };
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
        // Bytes in the order: kept axes before the reduced ones, the
        // reduced ones (adjacent), kept axes after them. When the reduced
        // axes are not adjacent, all of them go last.
        let adjacent = axes.windows(2).all(|w| w[1] == w[0] + 1);
        let (a0, a1) = (axes[0], axes[axes.len() - 1]);
        let order: Vec<usize> = if adjacent {
            identity(rank)
        } else {
            let mut o: Vec<usize> = (0..rank).filter(|d| !axes.contains(d)).collect();
            o.extend(&axes);
            o
        };
        let x = self.in_layout(x, &order, &node.name);
        let (outer, n, inner) = if adjacent {
            (
                x.shape[..a0].iter().product(),
                x.shape[a0..=a1].iter().product(),
                x.shape[a1 + 1..].iter().product(),
            )
        } else {
            let n: usize = axes.iter().map(|&d| x.shape[d]).product();
            (x.shape.iter().product::<usize>() / n.max(1), n, 1)
        };
        let out = Self::out_name(node);
        let dtype = if kind.is_arg() {
            DType::I32
        } else {
            DType::F32
        };
        // Kept axes keep their relative order either way: the output is
        // row-major.
        let y = self.new_act(&out, dtype, shape);
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
