//! Shapes and layouts: `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze` and
//! `Transpose` (views: no data moves unless the layout demands it),
//! `Shape`, `ConstantOfShape`, `Range` and `Expand` (folded at compile time
//! when their inputs are constants), `Concat` and `Pad`.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::pad::PadMode;
use ember_runtime::ops::{concat, pad, NoParams, PerAxis};
use ember_runtime::DType;
use ndarray::{ArrayD, Axis, IxDyn};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr, attr_f, attr_i, attr_ints, attr_s, axis_of, unsupported};
use super::fold::{broadcast_shape, broadcast_to, like_dtype, scalar_of};
use super::layout::{identity, inverse, permuted};
use super::{dequant_const, Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::{from_proto, HostTensor};

impl Lowerer<'_> {
    fn new_shape(&self, node: &NodeProto, in_shape: &[usize]) -> Result<Vec<usize>> {
        let numel: usize = in_shape.iter().product();
        match node.op_type.as_str() {
            "Reshape" => {
                let s = self.const_input(node, 1)?.ok_or_else(|| {
                    unsupported(node, "the target shape must be known at compile time")
                })?;
                let s = s.to_i64();
                let allowzero = attr_i(node, "allowzero", 0) != 0;
                let mut out = Vec::with_capacity(s.len());
                let mut infer = None;
                for (i, &d) in s.iter().enumerate() {
                    match d {
                        -1 if infer.is_none() => {
                            infer = Some(i);
                            out.push(1);
                        }
                        0 if !allowzero => out.push(*in_shape.get(i).ok_or_else(|| {
                            malformed(format!(
                                "node '{}': 0 in shape past the input rank",
                                node.name
                            ))
                        })?),
                        d if d >= 0 => out.push(d as usize),
                        _ => {
                            return Err(malformed(format!(
                                "node '{}': invalid target shape {s:?}",
                                node.name
                            )))
                        }
                    }
                }
                if let Some(i) = infer {
                    // Checked: the other entries' product may overflow
                    // (found by the compile_onnx fuzz target).
                    let known = out
                        .iter()
                        .try_fold(1usize, |a, &d| a.checked_mul(d))
                        .unwrap_or(0);
                    if known == 0 || !numel.is_multiple_of(known) {
                        return Err(malformed(format!(
                            "node '{}': cannot infer -1 in {s:?} for {numel} elements",
                            node.name
                        )));
                    }
                    out[i] = numel / known;
                }
                Ok(out)
            }
            "Flatten" => {
                let r = in_shape.len() as i64;
                let mut axis = attr_i(node, "axis", 1);
                if axis < 0 {
                    axis += r;
                }
                if axis < 0 || axis > r {
                    return Err(malformed(format!(
                        "node '{}': flatten axis out of range",
                        node.name
                    )));
                }
                let a: usize = in_shape[..axis as usize].iter().product();
                Ok(vec![a, numel / a.max(1)])
            }
            "Squeeze" | "Unsqueeze" => {
                let axes = match self.const_input(node, 1)? {
                    Some(a) => a.to_i64(),
                    None if node.input.get(1).is_some_and(|n| !n.is_empty()) => {
                        return Err(unsupported(node, "the axes must be known at compile time"))
                    }
                    None => attr_ints(node, "axes").unwrap_or_default(),
                };
                if node.op_type == "Squeeze" {
                    let r = in_shape.len() as i64;
                    let axes: Vec<usize> = axes
                        .iter()
                        .map(|&a| (if a < 0 { a + r } else { a }) as usize)
                        .collect();
                    Ok(in_shape
                        .iter()
                        .enumerate()
                        .filter(|(i, &d)| !(d == 1 && (axes.is_empty() || axes.contains(i))))
                        .map(|(_, &d)| d)
                        .collect())
                } else {
                    let r = (in_shape.len() + axes.len()) as i64;
                    let mut axes: Vec<usize> = axes
                        .iter()
                        .map(|&a| (if a < 0 { a + r } else { a }) as usize)
                        .collect();
                    axes.sort();
                    let mut out = in_shape.to_vec();
                    for a in axes {
                        if a > out.len() {
                            return Err(malformed(format!(
                                "node '{}': unsqueeze axis out of range",
                                node.name
                            )));
                        }
                        out.insert(a, 1);
                    }
                    Ok(out)
                }
            }
            _ => unreachable!("only reshape-like ops"),
        }
    }

    pub(super) fn lower_reshape(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.req_input(node, 0)?;
        let in_shape = x.shape().to_vec();
        let shape = self.new_shape(node, &in_shape)?;
        // Checked: a target shape whose product overflows (found by the
        // compile_onnx fuzz target) cannot match the input's count.
        let numel = |s: &[usize]| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel(&shape).is_none() || numel(&shape) != numel(&in_shape) {
            return Err(malformed(format!(
                "node '{}': cannot reshape {in_shape:?} to {shape:?}",
                node.name
            )));
        }
        let out = Self::out_name(node);
        let v = match x {
            Val::Const(c) => Val::Const(c.map_layout(|a| {
                a.into_shape_with_order(IxDyn(&shape))
                    .map_err(|e| malformed(e.to_string()))
            })?),
            Val::DqConst { .. } => Val::Const(HostTensor::F32(
                dequant_const(&x)?
                    .into_shape_with_order(IxDyn(&shape))
                    .map_err(|e| malformed(e.to_string()))?,
            )),
            Val::Act(a) => Val::Act(self.reshape_act(a, shape, &out)?),
            Val::DqAct { src, scale, zp } => Val::DqAct {
                src: self.reshape_act(src, shape, &out)?,
                scale,
                zp,
            },
        };
        self.set(node, 0, v);
        Ok(())
    }

    pub(super) fn lower_transpose(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.req_input(node, 0)?;
        let rank = x.shape().len();
        let p: Vec<usize> = match attr_ints(node, "perm") {
            Some(p) => p.iter().map(|&v| v as usize).collect(),
            None => (0..rank).rev().collect(),
        };
        let mut sorted = p.clone();
        sorted.sort();
        if sorted != identity(rank) {
            return Err(malformed(format!(
                "node '{}': perm {p:?} is not a permutation of rank {rank}",
                node.name
            )));
        }
        self.set(node, 0, transposed(x, &p)?);
        Ok(())
    }

    /// `Shape`: known at compile time.
    pub(super) fn lower_shape(&mut self, node: &NodeProto) -> Result<()> {
        let shape = self.req_input(node, 0)?.shape().to_vec();
        // `start` and `end` (opset 15) select a range of axes, negative
        // from the end, clamped to the rank.
        let rank = shape.len() as i64;
        let clampi = |a: i64| (if a < 0 { a + rank } else { a }).clamp(0, rank) as usize;
        let start = clampi(attr_i(node, "start", 0));
        let end = clampi(attr_i(node, "end", rank));
        let v: Vec<i64> = shape
            .get(start..end.max(start))
            .unwrap_or_default()
            .iter()
            .map(|&d| d as i64)
            .collect();
        self.set(
            node,
            0,
            Val::Const(HostTensor::I64(
                ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-D"),
            )),
        );
        Ok(())
    }

    /// `Size`: the element count, folded (shapes are fixed).
    pub(super) fn lower_size(&mut self, node: &NodeProto) -> Result<()> {
        let n: usize = self.req_input(node, 0)?.shape().iter().product();
        self.set(
            node,
            0,
            Val::Const(HostTensor::I64(ndarray::arr0(n as i64).into_dyn())),
        );
        Ok(())
    }

    pub(super) fn lower_constant_of_shape(&mut self, node: &NodeProto) -> Result<()> {
        let shape = self
            .const_input(node, 0)?
            .ok_or_else(|| unsupported(node, "the shape must be known at compile time"))?
            .to_i64();
        let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        check_fold(node, &shape)?;
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
        Ok(())
    }

    pub(super) fn fold_range(&mut self, node: &NodeProto) -> Result<()> {
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
        let n = ((b - a) / st).ceil().max(0.0);
        // (NaN bounds fail this too.)
        if n.is_nan() || n > MAX_FOLDED_ELEMENTS as f64 {
            return Err(unsupported(
                node,
                format!(
                    "folding a Range of {n} elements (the compiler folds at most {MAX_FOLDED_ELEMENTS})"
                ),
            ));
        }
        let n = n as usize;
        let v = ArrayD::from_shape_vec(IxDyn(&[n]), (0..n).map(|i| a + i as f64 * st).collect())
            .expect("1-D");
        self.set(node, 0, Val::Const(like_dtype(&s, v)));
        Ok(())
    }

    pub(super) fn lower_expand(&mut self, node: &NodeProto) -> Result<()> {
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
                check_fold(node, &shape)?;
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
                    .push(OpCode::Expand, vec![Some(x.t)], y.t, &NoParams, &node.name);
                self.vals.insert(out, Val::Act(y));
            }
        }
        Ok(())
    }

    pub(super) fn lower_concat(&mut self, node: &NodeProto) -> Result<()> {
        let vals: Vec<Val> = (0..node.input.len())
            .map(|i| self.req_input(node, i))
            .collect::<Result<_>>()?;
        if vals.iter().all(|v| matches!(v, Val::Const(_))) {
            let arrs: Vec<ArrayD<f64>> = vals
                .iter()
                .map(|v| match v {
                    Val::Const(c) => {
                        ArrayD::from_shape_vec(IxDyn(c.shape()), c.to_f64()).expect("shape")
                    }
                    _ => unreachable!(),
                })
                .collect();
            let axis = axis_of(node, attr_i(node, "axis", 0), arrs[0].ndim())?;
            if arrs.iter().any(|a| a.ndim() != arrs[0].ndim()) {
                return Err(malformed(format!(
                    "node '{}': Concat inputs of different ranks",
                    node.name
                )));
            }
            let views: Vec<_> = arrs.iter().map(|a| a.view()).collect();
            let cat = ndarray::concatenate(Axis(axis), &views)
                .map_err(|e| malformed(format!("node '{}': {e}", node.name)))?;
            let like = match &vals[0] {
                Val::Const(c) => c.clone(),
                _ => unreachable!(),
            };
            let r = like.map_layout(|_| Ok(cat.clone()))?;
            self.set(node, 0, Val::Const(r));
            return Ok(());
        }
        if node.input.len() > ember_runtime::format::MAX_OP_INPUTS {
            return Err(unsupported(node, "more than 8 inputs"));
        }
        let mut acts = vec![];
        for (i, v) in vals.iter().enumerate() {
            let a = match v {
                // A constant piece (a state's initial value, a learned
                // token) is read from the blob.
                Val::Const(c) => {
                    let f = HostTensor::F32(c.to_f32_array());
                    self.const_act(node, &f, DType::F32, &format!("input{i}"))
                }
                Val::DqConst { .. } => {
                    let f = HostTensor::F32(dequant_const(v)?);
                    self.const_act(node, &f, DType::F32, &format!("input{i}"))
                }
                _ => self.float_act(&node.input[i], &node.op_type)?,
            };
            acts.push(self.in_rowmajor(a, &node.name)?);
        }
        let rank = acts[0].shape.len() as i64;
        let mut axis = attr_i(node, "axis", 0);
        if axis < 0 {
            axis += rank;
        }
        if axis < 0 || axis >= rank {
            return Err(malformed(format!(
                "node '{}': axis out of range",
                node.name
            )));
        }
        let ax = axis as usize;
        for a in &acts[1..] {
            let agree = a.shape.len() == acts[0].shape.len()
                && a.shape
                    .iter()
                    .zip(&acts[0].shape)
                    .enumerate()
                    .all(|(d, (x, y))| d == ax || x == y);
            if !agree {
                return Err(malformed(format!(
                    "node '{}': Concat inputs {:?} and {:?} differ outside axis {ax}",
                    node.name, acts[0].shape, a.shape
                )));
            }
        }
        let mut shape = acts[0].shape.clone();
        shape[ax] = acts.iter().map(|a| a.shape[ax]).sum();
        let out = Self::out_name(node);
        let y = self.g.activation(&out, DType::F32, shape.clone(), None);
        self.g.push(
            OpCode::Concat,
            acts.iter().map(|a| Some(a.t)).collect(),
            y,
            &concat::Params {
                axis: axis as usize,
            },
            &node.name,
        );
        let perm = identity(shape.len());
        self.vals.insert(out, Val::Act(Act { t: y, shape, perm }));
        Ok(())
    }

    pub(super) fn lower_pad(&mut self, node: &NodeProto) -> Result<()> {
        let mode = match attr_s(node, "mode").as_deref().unwrap_or("constant") {
            "constant" => None,
            "edge" => Some(PadMode::Edge),
            "reflect" => Some(PadMode::Reflect),
            "wrap" => Some(PadMode::Wrap),
            other => {
                return Err(unsupported(
                    node,
                    format!("mode={other} (constant, edge, reflect and wrap are supported)"),
                ))
            }
        };
        let mut pads = match self.const_input(node, 1)? {
            Some(p) => p.to_i64(),
            None => {
                attr_ints(node, "pads").ok_or_else(|| unsupported(node, "pads must be constant"))?
            }
        };
        let value = self
            .const_input(node, 2)?
            .map(|v| v.to_f64()[0])
            .unwrap_or(attr_f(node, "value", 0.0) as f64);
        let xv = self.req_input(node, 0)?;
        let (x, quant) = match &xv {
            Val::DqAct { src, scale, zp } => (src.clone(), Some((*scale, *zp))),
            // Plain integers are padded as they are.
            Val::Act(a)
                if matches!(
                    self.g.tensors[a.t].dtype,
                    DType::I32 | DType::I8 | DType::U8
                ) && self.g.tensors[a.t].quant.is_none() =>
            {
                (a.clone(), None)
            }
            _ => (self.float_act(&node.input[0], &node.op_type)?, None),
        };
        let r = x.shape.len();
        if node.input.get(3).is_some_and(|s| !s.is_empty()) {
            // `axes` (opset 18): the pads name only those axes.
            let axes = self
                .const_input(node, 3)?
                .ok_or_else(|| unsupported(node, "axes must be constant"))?
                .to_i64();
            if pads.len() != 2 * axes.len() {
                return Err(malformed(format!(
                    "node '{}': {} pads for {} axes",
                    node.name,
                    pads.len(),
                    axes.len()
                )));
            }
            let mut full = vec![0i64; 2 * r];
            for (k, &a) in axes.iter().enumerate() {
                let a = axis_of(node, a, r)?;
                full[a] = pads[k];
                full[r + a] = pads[axes.len() + k];
            }
            pads = full;
        }
        if pads.len() != 2 * r || pads.iter().any(|&p| p < 0) {
            return Err(unsupported(node, "pads must be 2×rank non-negative values"));
        }
        let (before, after): (Vec<usize>, Vec<usize>) = (
            pads[..r].iter().map(|&p| p as usize).collect(),
            pads[r..].iter().map(|&p| p as usize).collect(),
        );
        let shape: Vec<usize> = (0..r).map(|i| x.shape[i] + before[i] + after[i]).collect();
        let out = Self::out_name(node);
        let (dtype, v) = match quant {
            Some((s, z)) => {
                self.g.set_quant(x.t, quant);
                (
                    DType::I8,
                    ((value as f32 / s).round_ties_even() as i32 + z).clamp(-128, 127),
                )
            }
            None => match self.g.tensors[x.t].dtype {
                DType::F32 => (DType::F32, (value as f32).to_bits() as i32),
                DType::I8 => (DType::I8, (value as i64).clamp(-128, 127) as i32),
                DType::U8 => (DType::U8, (value as i64).clamp(0, 255) as i32),
                d => (d, value as i64 as i32),
            },
        };
        let params = pad::Params {
            before: PerAxis::new(&permuted(&before, &x.perm)),
            after: PerAxis::new(&permuted(&after, &x.perm)),
            value: v,
            mode,
        };
        let y = self
            .g
            .activation(&out, dtype, permuted(&shape, &x.perm), quant);
        self.g
            .push(OpCode::Pad, vec![Some(x.t)], y, &params, &node.name);
        let act = Act {
            t: y,
            shape,
            perm: x.perm,
        };
        let v = match quant {
            Some((scale, zp)) => Val::DqAct {
                src: act,
                scale,
                zp,
            },
            None => Val::Act(act),
        };
        self.vals.insert(out, v);
        Ok(())
    }
}

/// `x` with its axes permuted by `p` (a permutation of its rank): free for
/// runtime values (a new logical view of the same bytes), folded for
/// constants.
pub(super) fn transposed(x: Val, p: &[usize]) -> Result<Val> {
    let tr = |a: Act| -> Act {
        let inv = inverse(p);
        Act {
            t: a.t,
            shape: permuted(&a.shape, p),
            perm: a.perm.iter().map(|&q| inv[q]).collect(),
        }
    };
    Ok(match x {
        Val::Const(c) => Val::Const(c.map_layout(|a| Ok(a.permuted_axes(IxDyn(p))))?),
        Val::DqConst { .. } => Val::Const(HostTensor::F32(
            dequant_const(&x)?
                .permuted_axes(IxDyn(p))
                .as_standard_layout()
                .to_owned(),
        )),
        Val::Act(a) => Val::Act(tr(a)),
        Val::DqAct { src, scale, zp } => Val::DqAct {
            src: tr(src),
            scale,
            zp,
        },
    })
}

/// The most elements a constant folded at compile time may have (256 MB
/// as int32, 512 MB in the f64 folding arithmetic): a few bytes of ONNX
/// can ask for terabytes.
pub(super) const MAX_FOLDED_ELEMENTS: usize = 1 << 26;

thread_local! {
    /// Bytes the constants folded so far may still take (the compiler's
    /// memory budget, set per compilation).
    static FOLD_LEFT: core::cell::Cell<u64> = const { core::cell::Cell::new(u64::MAX) };
}

/// Starts a compilation's folding budget.
pub(crate) fn set_fold_budget(bytes: u64) {
    FOLD_LEFT.with(|c| c.set(bytes));
}

/// `Err` naming the node when folding a constant of `shape` would exceed
/// [`MAX_FOLDED_ELEMENTS`], or what is left of the memory budget counting
/// 8 bytes an element (checked before anything is allocated); otherwise
/// takes it from the budget.
pub(super) fn check_fold(node: &NodeProto, shape: &[usize]) -> Result<()> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    // The non-zero axes too: ndarray refuses (panics on) a shape whose
    // non-zero axes overflow even when a zero axis makes it empty (found by
    // the compile_onnx fuzz target on a ConstantOfShape).
    let reach = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d.max(1)));
    let Some(n) =
        n.filter(|&n| n <= MAX_FOLDED_ELEMENTS && reach.is_some_and(|r| r <= MAX_FOLDED_ELEMENTS))
    else {
        return Err(unsupported(
            node,
            format!(
                "folding a constant of shape {shape:?} (the compiler folds at most {MAX_FOLDED_ELEMENTS} elements)"
            ),
        ));
    };
    let bytes = n as u64 * 8;
    let left = FOLD_LEFT.with(|c| c.get());
    if bytes > left {
        return Err(unsupported(
            node,
            format!(
                "folding a constant of shape {shape:?} ({bytes} bytes) goes over the memory budget ({left} bytes left; --max-memory)"
            ),
        ));
    }
    FOLD_LEFT.with(|c| c.set(left - bytes));
    Ok(())
}
