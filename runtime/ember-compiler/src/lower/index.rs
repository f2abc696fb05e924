//! Ops indexed by their input data: `GatherElements`, `CumSum`, the
//! losses `NegativeLogLikelihoodLoss` and `SoftmaxCrossEntropyLoss`
//! (LogSoftmax, then the loss), and `Trilu` (a constant mask and `Where`).

use ember_runtime::format::OpCode;
use ember_runtime::kernels::index::Reduction;
use ember_runtime::ops::index;
use ember_runtime::DType;
use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, attr_s, axis_of, step, unsupported};
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;

impl Lowerer<'_> {
    /// `GatherElements`: data (any runtime or constant tensor), indices.
    pub(super) fn lower_gather_elements(&mut self, node: &NodeProto) -> Result<()> {
        let rank = self.input_rank(node, 0).unwrap_or(0);
        let axis = axis_of(node, attr_i(node, "axis", 0), rank)?;
        let data = match self.req_input(node, 0)? {
            Val::Act(a) => self.in_rowmajor(a, &node.name)?,
            Val::DqAct { .. } => {
                let a = self.float_act(&node.input[0], &node.op_type)?;
                self.in_rowmajor(a, &node.name)?
            }
            _ => self.runtime_operand(node, 0, None)?,
        };
        let idx = self.runtime_operand(node, 1, Some(DType::I32))?;
        if self.g.tensors[idx.t].dtype != DType::I32 {
            return Err(unsupported(node, "indices must be integers"));
        }
        let dtype = self.g.tensors[data.t].dtype;
        if !matches!(dtype.size(), 1 | 4) {
            return Err(unsupported(node, format!("{} data", dtype.name())));
        }
        if idx.shape.len() != rank || (0..rank).any(|d| d != axis && idx.shape[d] > data.shape[d]) {
            return Err(malformed(format!(
                "node '{}': indices {:?} do not fit data {:?}",
                node.name, idx.shape, data.shape
            )));
        }
        let out = Self::out_name(node);
        let y = self.new_act(&out, dtype, idx.shape.clone());
        self.g.push(
            OpCode::GatherElements,
            vec![Some(data.t), Some(idx.t)],
            y.t,
            &index::Params { axis, a: 0, b: 0 },
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    /// `CumSum` of an f32 or int32 tensor along a constant axis.
    pub(super) fn lower_cumsum(&mut self, node: &NodeProto) -> Result<()> {
        let rank = self.input_rank(node, 0).unwrap_or(0);
        let axis = self
            .const_input(node, 1)?
            .and_then(|a| a.to_i64().first().copied())
            .ok_or_else(|| unsupported(node, "the axis must be constant"))?;
        let axis = axis_of(node, axis, rank)?;
        let x = match self.req_input(node, 0)? {
            Val::Act(a) if self.g.tensors[a.t].dtype == DType::I32 => a,
            _ => self.float_act(&node.input[0], &node.op_type)?,
        };
        let x = self.in_rowmajor(x, &node.name)?;
        let dtype = self.g.tensors[x.t].dtype;
        let out = Self::out_name(node);
        let y = self.new_act(&out, dtype, x.shape.clone());
        self.g.push(
            OpCode::CumSum,
            vec![Some(x.t)],
            y.t,
            &index::Params {
                axis,
                a: (attr_i(node, "exclusive", 0) != 0) as i32,
                b: (attr_i(node, "reverse", 0) != 0) as i32,
            },
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    /// `NegativeLogLikelihoodLoss`.
    pub(super) fn lower_nll_loss(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let out = Self::out_name(node);
        self.emit_nll(node, x, &out)
    }

    /// `SoftmaxCrossEntropyLoss`: LogSoftmax over the classes (axis 1),
    /// then the negative log-likelihood; the log-probabilities are the
    /// optional second output.
    pub(super) fn lower_softmax_cross_entropy(&mut self, node: &NodeProto) -> Result<()> {
        let out = Self::out_name(node);
        let log_prob = node
            .output
            .get(1)
            .filter(|o| !o.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("{out}.log_prob"));
        let ls = NodeProto {
            op_type: "LogSoftmax".into(),
            name: format!("{}.log_softmax", node.name),
            input: vec![node.input[0].clone()],
            output: vec![log_prob.clone()],
            ..Default::default()
        };
        if self.input_rank(node, 0).unwrap_or(0) < 2 {
            return Err(malformed(format!(
                "node '{}': scores of rank < 2",
                node.name
            )));
        }
        self.lower_softmax_on(&ls, 1, false)?;
        let x = self.float_act(&log_prob, &node.op_type)?;
        self.emit_nll(node, x, &out)
    }

    /// The loss of log-probabilities `x` against the targets (`node`'s
    /// second input) and class weights (its third), with its reduction and
    /// ignored class.
    fn emit_nll(&mut self, node: &NodeProto, x: Act, out: &str) -> Result<()> {
        if x.shape.len() < 2 {
            return Err(malformed(format!(
                "node '{}': input of rank < 2",
                node.name
            )));
        }
        let x = self.in_rowmajor(x, &node.name)?;
        let t = self.runtime_operand(node, 1, Some(DType::I32))?;
        if self.g.tensors[t.t].dtype != DType::I32 {
            return Err(unsupported(node, "targets must be integers"));
        }
        let t = self.in_rowmajor(t, &node.name)?;
        let mut want = vec![x.shape[0]];
        want.extend_from_slice(&x.shape[2..]);
        if t.shape != want {
            return Err(malformed(format!(
                "node '{}': targets {:?} for scores {:?}",
                node.name, t.shape, x.shape
            )));
        }
        let w = match node.input.get(2).filter(|n| !n.is_empty()) {
            Some(_) => {
                let w = self.runtime_operand(node, 2, Some(DType::F32))?;
                if self.g.tensors[w.t].dtype != DType::F32 || w.shape != [x.shape[1]] {
                    return Err(unsupported(node, "weights must be one float per class"));
                }
                Some(w.t)
            }
            None => None,
        };
        let reduction = match attr_s(node, "reduction").as_deref().unwrap_or("mean") {
            "none" => Reduction::None,
            "sum" => Reduction::Sum,
            "mean" => Reduction::Mean,
            other => return Err(unsupported(node, format!("reduction={other}"))),
        };
        let ignore = match node.attribute.iter().find(|a| a.name == "ignore_index") {
            Some(a) => i32::try_from(a.i)
                .ok()
                .filter(|&v| v != i32::MIN)
                .ok_or_else(|| unsupported(node, "ignore_index outside int32"))?,
            None => i32::MIN,
        };
        let shape = if reduction == Reduction::None {
            t.shape.clone()
        } else {
            vec![]
        };
        let y = self.new_act(out, DType::F32, shape);
        self.g.push(
            OpCode::NllLoss,
            vec![Some(x.t), Some(t.t), w],
            y.t,
            &index::Params {
                axis: 1,
                a: reduction as i32,
                b: ignore,
            },
            &node.name,
        );
        self.vals.insert(out.to_string(), Val::Act(y));
        Ok(())
    }

    /// `Trilu`: `Where(mask, x, 0)` with the triangle's mask a constant.
    pub(super) fn lower_trilu(&mut self, node: &NodeProto) -> Result<()> {
        let rank = self.input_rank(node, 0).unwrap_or(0);
        if rank < 2 {
            return Err(malformed(format!(
                "node '{}': Trilu of rank < 2",
                node.name
            )));
        }
        let k = match self.const_input(node, 1)? {
            Some(c) => c.to_i64().first().copied().unwrap_or(0),
            None if node.input.get(1).is_some_and(|n| !n.is_empty()) => {
                return Err(unsupported(node, "k must be constant"))
            }
            None => 0,
        };
        let upper = attr_i(node, "upper", 1) != 0;
        let shape = self.req_input(node, 0)?.shape().to_vec();
        let (rows, cols) = (shape[rank - 2], shape[rank - 1]);
        let mask = ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |ix| {
            let d = ix[1] as i64 - ix[0] as i64;
            (if upper { d >= k } else { d <= k }) as i64
        });
        let out = Self::out_name(node);
        let (m, z) = (format!("{out}.mask"), format!("{out}.zero"));
        self.vals
            .insert(m.clone(), Val::Const(HostTensor::I64(mask)));
        self.elem_types.insert(m.clone(), 9); // bool
        self.vals.insert(
            z.clone(),
            Val::Const(HostTensor::F32(ArrayD::zeros(IxDyn(&[])))),
        );
        let int = matches!(self.req_input(node, 0)?, Val::Act(a) if self.g.tensors[a.t].dtype == DType::I32);
        if int {
            self.vals.insert(
                z.clone(),
                Val::Const(HostTensor::I32(ArrayD::zeros(IxDyn(&[])))),
            );
        }
        let w = NodeProto {
            op_type: "Where".into(),
            name: node.name.clone(),
            input: vec![m, node.input[0].clone(), z],
            output: vec![out],
            ..Default::default()
        };
        self.lower_where(&w)
    }
}

impl Lowerer<'_> {
    /// `OneHot`: `Where(Equal(idx, range along axis), on, off)`, negative
    /// indices counted from `depth`; an index outside `[-depth, depth)`
    /// gives a row of `off`.
    pub(super) fn lower_one_hot(&mut self, node: &NodeProto) -> Result<()> {
        let depth = self
            .const_input(node, 1)?
            .and_then(|d| d.to_f64().first().copied())
            .ok_or_else(|| unsupported(node, "depth must be a constant"))?;
        if !(depth >= 1.0 && depth <= i32::MAX as f64) {
            return Err(malformed(format!("node '{}': depth {depth}", node.name)));
        }
        let depth = depth as i64;
        let values = self
            .const_input(node, 2)?
            .ok_or_else(|| unsupported(node, "values must be constant"))?;
        if values.shape().iter().product::<usize>() != 2 {
            return Err(malformed(format!(
                "node '{}': values must hold [off, on]",
                node.name
            )));
        }
        let idx = match self.req_input(node, 0)? {
            Val::Act(a) if self.g.tensors[a.t].dtype == DType::I32 => a,
            Val::Act(a) => self.emit_cast(a, DType::I32, &format!("{}.i32", node.input[0])),
            _ => return Err(unsupported(node, "constant indices")),
        };
        let rank = idx.shape.len();
        let axis = axis_of(node, attr_i(node, "axis", -1), rank + 1)?;
        let out = Self::out_name(node);
        let t = |s: &str| format!("{out}.{s}");
        let scalar_i32 = |v: i64| Val::Const(HostTensor::I32(ndarray::arr0(v as i32).into_dyn()));
        self.vals.insert(t("idx"), Val::Act(idx));
        self.vals.insert(t("zero"), scalar_i32(0));
        self.vals.insert(t("depth"), scalar_i32(depth));
        // Negative indices count from the end.
        self.lower_compare(&step(node, "Less", &[t("idx"), t("zero")], &t("negative")))?;
        self.lower_binary(
            0,
            &step(node, "Add", &[t("idx"), t("depth")], &t("shifted")),
        )?;
        self.lower_where(&step(
            node,
            "Where",
            &[t("negative"), t("shifted"), t("idx")],
            &t("index"),
        ))?;
        let index = match self.vals.get(&t("index")).cloned() {
            Some(Val::Act(a)) => a,
            _ => return Err(malformed(format!("node '{}': no index tensor", node.name))),
        };
        let u = self.unsqueeze_act(index, axis, &t("index_axis"));
        self.vals.insert(t("index_axis"), Val::Act(u));
        let mut dims = vec![1usize; rank + 1];
        dims[axis] = depth as usize;
        let range = ArrayD::from_shape_vec(IxDyn(&dims), (0..depth as i32).collect())
            .map_err(|e| malformed(e.to_string()))?;
        self.vals
            .insert(t("range"), Val::Const(HostTensor::I32(range)));
        self.lower_compare(&step(
            node,
            "Equal",
            &[t("index_axis"), t("range")],
            &t("hot"),
        ))?;
        let v = values.to_f64();
        let as_values = |x: f64| -> Val {
            Val::Const(match &values {
                HostTensor::F32(_) => HostTensor::F32(ndarray::arr0(x as f32).into_dyn()),
                _ => HostTensor::I32(ndarray::arr0(x as i32).into_dyn()),
            })
        };
        self.vals.insert(t("off"), as_values(v[0]));
        self.vals.insert(t("on"), as_values(v[1]));
        self.lower_where(&step(node, "Where", &[t("hot"), t("on"), t("off")], &out))
    }
}

impl Lowerer<'_> {
    /// `TopK` (float data, constant k): one op per output used — the
    /// values and the indices — each selecting the same elements.
    pub(super) fn lower_top_k(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let x = self.in_rowmajor(x, &node.name)?;
        let rank = x.shape.len();
        let axis = axis_of(node, attr_i(node, "axis", -1), rank)?;
        let k = self
            .const_input(node, 1)?
            .and_then(|k| k.to_i64().first().copied())
            .ok_or_else(|| unsupported(node, "k must be constant"))?;
        if k < 1 || k as usize > x.shape[axis] {
            return Err(unsupported(
                node,
                format!(
                    "k={k} for an axis of {} (1 ≤ k ≤ the axis is supported)",
                    x.shape[axis]
                ),
            ));
        }
        let largest = attr_i(node, "largest", 1) != 0;
        let mut shape = x.shape.clone();
        shape[axis] = k as usize;
        for (slot, (dtype, flag)) in [(DType::F32, 0), (DType::I32, index::TOP_K_INDICES)]
            .into_iter()
            .enumerate()
        {
            let Some(name) = node.output.get(slot).filter(|o| !o.is_empty()) else {
                continue;
            };
            let y = self.new_act(name, dtype, shape.clone());
            self.g.push(
                OpCode::TopK,
                vec![Some(x.t)],
                y.t,
                &index::Params {
                    axis,
                    a: k as i32,
                    b: flag | if largest { index::TOP_K_LARGEST } else { 0 },
                },
                &node.name,
            );
            self.vals.insert(name.clone(), Val::Act(y));
        }
        Ok(())
    }
}
