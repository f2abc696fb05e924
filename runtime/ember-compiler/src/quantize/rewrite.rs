//! Writing the QDQ graph: a `QuantizeLinear` → `DequantizeLinear` pair after
//! every planned activation (consumers read the dequantized value), int8
//! per-channel weights and int32 biases behind `DequantizeLinear` nodes,
//! absorbed `Relu`s removed. This is the form onnxruntime's quantizer
//! writes, so any ONNX runtime runs the result and Ember's compiler lowers
//! it onto its integer kernels.

use std::collections::{HashMap, HashSet};

use ndarray::{Axis, Dimension};
use tract_onnx::pb::{GraphProto, NodeProto};

use super::observe::ChannelStats;
use super::plan::Plan;
use super::proto::{f32s, float_init, i32s, i8s, input, int_attr, node};
use super::range::{int8_params, quantize_weight, weight_scale};
use crate::error::{CompileError, Result};

/// A weight made int8.
#[derive(Clone, Debug)]
pub struct WeightReport {
    /// The float initializer's name.
    pub name: String,
    /// Output channels (one scale each).
    pub channels: usize,
    /// Number of weights.
    pub len: usize,
}

/// The graph being written.
struct Writer {
    nodes: Vec<NodeProto>,
    inits: Vec<tract_onnx::pb::TensorProto>,
    /// Int8 copies of weights already written: name → (DQ output, scales).
    weights: HashMap<String, (String, Vec<f32>)>,
    /// Int8 copies of constant operands already written: name → DQ output.
    consts: HashMap<String, String>,
    report: Vec<WeightReport>,
}

impl Writer {
    /// A `QuantizeLinear`/`DequantizeLinear` pair from `from` to `to`.
    fn qdq(&mut self, t: &str, from: &str, to: &str, (scale, zp): (f32, i8)) {
        let (s, z, q) = (
            format!("{t}__scale"),
            format!("{t}__zero_point"),
            format!("{t}__quantized"),
        );
        self.inits.push(f32s(&s, &[], &[scale]));
        self.inits.push(i8s(&z, &[], &[zp]));
        self.nodes.push(node(
            "QuantizeLinear",
            format!("{t}__QuantizeLinear"),
            vec![from.into(), s.clone(), z.clone()],
            vec![q.clone()],
            vec![],
        ));
        self.nodes.push(node(
            "DequantizeLinear",
            format!("{t}__DequantizeLinear"),
            vec![q, s, z],
            vec![to.into()],
            vec![],
        ));
    }

    /// A constant behind a `DequantizeLinear` (per channel along `axis` when
    /// `scales` has more than one entry); returns its output's name.
    fn dq_const(&mut self, name: &str, q: QConst, scales: &[f32], axis: usize) -> String {
        let (qn, sn, zn, out) = (
            format!("{name}__quantized"),
            format!("{name}__scale"),
            format!("{name}__zero_point"),
            format!("{name}__dequantized"),
        );
        let c = scales.len();
        let dims = if c > 1 { vec![c] } else { vec![] };
        match q {
            QConst::I8(dims_q, v, zp) => {
                self.inits.push(i8s(&qn, &dims_q, &v));
                self.inits.push(i8s(&zn, &dims, &vec![zp; c]));
            }
            QConst::I32(dims_q, v) => {
                self.inits.push(i32s(&qn, &dims_q, &v));
                self.inits.push(i32s(&zn, &dims, &vec![0; c]));
            }
        }
        self.inits.push(f32s(&sn, &dims, scales));
        let attrs = if c > 1 {
            vec![int_attr("axis", axis as i64)]
        } else {
            vec![]
        };
        self.nodes.push(node(
            "DequantizeLinear",
            format!("{name}__DequantizeLinear"),
            vec![qn, sn, zn],
            vec![out.clone()],
            attrs,
        ));
        out
    }
}

/// Quantized constant data: int8 (dims, values, zero point) or int32.
enum QConst {
    I8(Vec<usize>, Vec<i8>, i8),
    I32(Vec<usize>, Vec<i32>),
}

/// The QDQ graph of `g` (folded) under `plan`, with each quantized
/// tensor's `(scale, zero point)` in `params`.
pub(super) fn rewrite(
    g: &GraphProto,
    plan: &Plan,
    params: &HashMap<String, (f32, i8)>,
    channels: &HashMap<String, ChannelStats>,
    correct_biases: bool,
    per_channel_dense: bool,
) -> Result<(GraphProto, Vec<WeightReport>)> {
    let outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let param = |t: &str| {
        params
            .get(t)
            .copied()
            .ok_or_else(|| CompileError::Internal(format!("no quantization for '{t}'")))
    };
    // Where consumers read each quantized tensor, and what a quantized graph
    // output's producer writes instead.
    let mut read_as: HashMap<&str, String> = HashMap::new();
    let mut written_as: HashMap<&str, String> = HashMap::new();
    for t in &plan.tensors {
        if outputs.contains(t.as_str()) {
            written_as.insert(t, format!("{t}__float"));
        } else {
            read_as.insert(t, format!("{t}__dequantized"));
        }
    }
    let pair = |t: &str| -> (String, String) {
        let from = written_as.get(t).cloned().unwrap_or_else(|| t.to_string());
        let to = read_as.get(t).cloned().unwrap_or_else(|| t.to_string());
        (from, to)
    };
    let mut w = Writer {
        nodes: Vec::new(),
        inits: Vec::new(),
        weights: HashMap::new(),
        consts: HashMap::new(),
        report: Vec::new(),
    };
    let inputs: HashSet<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
    for t in plan.tensors.iter().filter(|t| inputs.contains(t.as_str())) {
        let (from, to) = pair(t);
        w.qdq(t, &from, &to, param(t)?);
    }
    let absorbed: HashSet<usize> = plan.absorbed.values().copied().collect();
    let layers: HashMap<usize, usize> = plan.layers.iter().map(|l| (l.node, l.axis)).collect();
    let op_input = |i: usize| input(&g.node[i], 0).unwrap_or("");
    for (i, n) in g.node.iter().enumerate() {
        if absorbed.contains(&i) {
            continue;
        }
        let mut n = n.clone();
        if let Some(&r) = plan.absorbed.get(&i) {
            n.output[0] = g.node[r].output[0].clone();
        }
        for x in n.input.iter_mut() {
            if let Some(r) = read_as.get(x.as_str()) {
                *x = r.clone();
            }
        }
        if let Some(&axis) = layers.get(&i) {
            let stats = channels.get(op_input(i));
            let dense = n.op_type != "Conv";
            let how = LayerHow {
                axis,
                x_scale: param(op_input(i))?.0,
                stats,
                correct_bias: correct_biases,
                per_tensor: dense && !per_channel_dense,
            };
            quantize_layer(g, &mut w, &mut n, &how)?;
        }
        for &(_, k) in plan.consts.iter().filter(|(c, _)| *c == i) {
            let name = n.input[k].clone();
            if let Some(done) = w.consts.get(&name) {
                n.input[k] = done.clone();
            } else if let Some(c) = float_init(g, &name)? {
                let lo = c.iter().copied().fold(0f32, f32::min);
                let hi = c.iter().copied().fold(0f32, f32::max);
                let (s, zp) = int8_params(lo, hi);
                let q = c
                    .iter()
                    .map(|&x| ((x / s).round() + zp as f32).clamp(-128.0, 127.0) as i8)
                    .collect();
                let dq = w.dq_const(&name, QConst::I8(c.shape().to_vec(), q, zp), &[s], 0);
                w.consts.insert(name, dq.clone());
                n.input[k] = dq;
            }
        }
        let out = n.output.first().cloned().unwrap_or_default();
        if let Some(f) = written_as.get(out.as_str()) {
            n.output[0] = f.clone();
        }
        w.nodes.push(n);
        if plan.is_quantized(&out) {
            let (from, to) = pair(&out);
            w.qdq(&out, &from, &to, param(&out)?);
        }
    }
    let mut g2 = g.clone();
    g2.node = w.nodes;
    g2.initializer.extend(w.inits);
    let used: HashSet<&str> = g2
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(g2.output.iter().map(|o| o.name.as_str()))
        .collect::<HashSet<_>>();
    let used: HashSet<String> = used.into_iter().map(String::from).collect();
    g2.initializer.retain(|t| used.contains(&t.name));
    // Old exporters list initializers as inputs too: drop the removed ones.
    let old_inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    g2.input
        .retain(|i| !old_inits.contains(i.name.as_str()) || used.contains(&i.name));
    Ok((g2, w.report))
}

/// How one layer's weights and bias are quantized.
struct LayerHow<'a> {
    /// The weights' output-channel axis.
    axis: usize,
    /// The scale of the layer's input.
    x_scale: f32,
    /// The input's per-channel statistics, if observed.
    stats: Option<&'a ChannelStats>,
    /// Correct the bias for the weights' rounding.
    correct_bias: bool,
    /// One weight scale for the whole tensor.
    per_tensor: bool,
}

/// Replaces the weights (input 1) of layer `n` by int8 per channel along
/// `axis` (or with one scale for the whole tensor when `per_tensor`), and
/// its bias (input 2), if any, by int32 at the input's scale times each
/// channel's weight scale. With `correct_bias` and the
/// statistics of each input channel (`stats`), the bias is corrected for
/// the shift the weights' rounding puts on each output's mean (a `Conv` or
/// `Gemm` without a bias gets one).
fn quantize_layer(g: &GraphProto, w: &mut Writer, n: &mut NodeProto, how: &LayerHow) -> Result<()> {
    let &LayerHow {
        axis,
        x_scale,
        stats,
        correct_bias,
        per_tensor,
    } = how;
    let groups = crate::lower::attrs::attr_i(n, "group", 1).max(1) as usize;
    let wn = n.input[1].clone();
    let (dq, scales) = match w.weights.get(&wn) {
        Some(done) => done.clone(),
        None => {
            let a = float_init(g, &wn)?.ok_or_else(|| {
                CompileError::Internal(format!("weight '{wn}' is not a float constant"))
            })?;
            let scales: Vec<f32> = if per_tensor {
                let s = weight_scale(&a.iter().copied().collect::<Vec<_>>());
                vec![s; a.shape()[axis]]
            } else {
                a.axis_iter(Axis(axis))
                    .map(|lane| weight_scale(&lane.iter().copied().collect::<Vec<_>>()))
                    .collect()
            };
            let mut q = a.mapv(|_| 0i8);
            for (c, (src, mut dst)) in a
                .axis_iter(Axis(axis))
                .zip(q.axis_iter_mut(Axis(axis)))
                .enumerate()
            {
                dst.zip_mut_with(&src, |d, &s| *d = quantize_weight(s, scales[c]));
            }
            let qv: Vec<i8> = q.iter().copied().collect();
            let stored = if per_tensor {
                &scales[..1]
            } else {
                &scales[..]
            };
            let dq = w.dq_const(&wn, QConst::I8(a.shape().to_vec(), qv, 0), stored, axis);
            w.report.push(WeightReport {
                name: wn.clone(),
                channels: stored.len(),
                len: a.len(),
            });
            w.weights.insert(wn.clone(), (dq.clone(), scales.clone()));
            (dq, scales)
        }
    };
    let shift = match stats {
        Some(st) if correct_bias && n.op_type != "MatMul" => {
            let a = float_init(g, &wn)?.ok_or_else(|| {
                CompileError::Internal(format!("weight '{wn}' is not a float constant"))
            })?;
            mean_shift(&a, axis, &scales, &st.mean, groups)
        }
        _ => None,
    };
    n.input[1] = dq;
    let bias = match input(n, 2).map(String::from) {
        Some(bn) => Some(
            float_init(g, &bn)?
                .ok_or_else(|| {
                    CompileError::Internal(format!("bias '{bn}' is not a float constant"))
                })?
                .iter()
                .copied()
                .collect::<Vec<f32>>(),
        ),
        None => shift.as_ref().map(|s| vec![0.0; s.len()]),
    };
    if let Some(mut b) = bias {
        if let Some(shift) = &shift {
            for (b, s) in b.iter_mut().zip(shift) {
                *b -= *s as f32;
            }
        }
        n.input.resize(n.input.len().max(3), String::new());
        let bs: Vec<f32> = scales.iter().map(|&s| x_scale * s).collect();
        let q: Vec<i32> = b
            .iter()
            .zip(&bs)
            .map(|(&v, &s)| {
                (v as f64 / s as f64)
                    .round()
                    .clamp(i32::MIN as f64, i32::MAX as f64) as i32
            })
            .collect();
        let name = format!("{}__bias", n.output[0]);
        let stored = if per_tensor { &bs[..1] } else { &bs[..] };
        n.input[2] = w.dq_const(&name, QConst::I32(vec![q.len()], q), stored, 0);
    }
    Ok(())
}

/// Makes the graph's quantized float inputs and outputs int8: the
/// `QuantizeLinear` after such an input and the `DequantizeLinear` before
/// such an output are removed, and the graph takes and gives their int8
/// values (with their scale and zero point), as a converter's int8 model
/// does: no conversion at the model's edges on the device.
pub(super) fn int8_io(g: &mut GraphProto) {
    use tract_onnx::pb::type_proto::Value;
    let set_int8 = |v: &mut tract_onnx::pb::ValueInfoProto| {
        if let Some(Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.elem_type = super::proto::INT8;
        }
    };
    for i in 0..g.input.len() {
        let name = g.input[i].name.clone();
        let readers: Vec<usize> = (0..g.node.len())
            .filter(|&k| g.node[k].input.contains(&name))
            .collect();
        let [k] = readers[..] else { continue };
        if g.node[k].op_type != "QuantizeLinear" || g.node[k].input.first() != Some(&name) {
            continue;
        }
        let q = g.node.remove(k);
        let quantized = q.output.first().cloned().unwrap_or_default();
        for n in g.node.iter_mut() {
            for x in n.input.iter_mut().filter(|x| **x == quantized) {
                *x = name.clone();
            }
        }
        set_int8(&mut g.input[i]);
    }
    for o in 0..g.output.len() {
        let name = g.output[o].name.clone();
        let Some(k) = g
            .node
            .iter()
            .position(|n| n.op_type == "DequantizeLinear" && n.output.first() == Some(&name))
        else {
            continue;
        };
        let quantized = g.node[k].input.first().cloned().unwrap_or_default();
        let readers = g
            .node
            .iter()
            .filter(|n| n.input.contains(&quantized))
            .count();
        let Some(p) = g
            .node
            .iter()
            .position(|n| n.output.first() == Some(&quantized))
        else {
            continue;
        };
        if readers != 1 || g.node[p].op_type != "QuantizeLinear" {
            continue;
        }
        g.node[p].output[0] = name;
        g.node.remove(k);
        set_int8(&mut g.output[o]);
    }
}

/// Which input channel each weight multiplies: a convolution's weight
/// `[m, c, …]` reads channel `c` of `m`'s group; a matrix's, the index
/// along its other axis.
struct InputChannels {
    axis: usize,
    in_axis: usize,
    conv: bool,
    per_group_in: usize,
    outs_per_group: usize,
}

impl InputChannels {
    /// The map for weights of `dims` (outputs along `axis`, `groups`
    /// groups), if the input has the `n_in` channels they read.
    fn new(dims: &[usize], axis: usize, groups: usize, n_in: usize) -> Option<Self> {
        let conv = dims.len() > 2;
        let in_axis = if conv { 1 } else { 1 - axis.min(1) };
        let per_group_in = *dims.get(in_axis)?;
        let outs = dims[axis];
        let want = if conv {
            per_group_in * groups
        } else {
            per_group_in
        };
        (n_in == want && groups > 0 && outs.is_multiple_of(groups)).then_some(InputChannels {
            axis,
            in_axis,
            conv,
            per_group_in,
            outs_per_group: outs / groups,
        })
    }

    /// The input channel of the weight at `idx`.
    fn of(&self, idx: &[usize]) -> usize {
        let group_start = if self.conv {
            (idx[self.axis] / self.outs_per_group) * self.per_group_in
        } else {
            0
        };
        idx[self.in_axis] + group_start
    }
}

/// The shift of each output channel's mean that rounding the weights `a`
/// (output channels along `axis`, quantized with `scales`) causes for
/// inputs whose channels have the means `means`: Σ (ŵ − w)·E[x] over each
/// output's weights. `None` when the means do not match the weights' input
/// channels.
fn mean_shift(
    a: &ndarray::ArrayD<f32>,
    axis: usize,
    scales: &[f32],
    means: &[f64],
    groups: usize,
) -> Option<Vec<f64>> {
    let map = InputChannels::new(a.shape(), axis, groups, means.len())?;
    let mut shift = vec![0f64; a.shape()[axis]];
    for (idx, &x) in a.indexed_iter() {
        let c = idx[axis];
        let s = scales[c];
        let d = quantize_weight(x, s) as f32 * s - x;
        shift[c] += d as f64 * means[map.of(idx.slice())];
    }
    Some(shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_shift_is_the_rounding_error_times_the_input_mean() {
        // Dense [K=2, N=1], scale 1: weights 0.4 and 1.6 round to 0 and 2.
        let a = ndarray::arr2(&[[0.4f32], [1.6]]).into_dyn();
        let s = mean_shift(&a, 1, &[1.0], &[10.0, 1.0], 1).unwrap();
        assert!((s[0] - (-0.4 * 10.0 + 0.4 * 1.0)).abs() < 1e-6, "{s:?}");
        // Depthwise [2, 1, 1, 1], groups 2: each output reads its own channel.
        let a = ndarray::Array4::from_shape_vec((2, 1, 1, 1), vec![0.4f32, 0.4])
            .unwrap()
            .into_dyn();
        let s = mean_shift(&a, 0, &[1.0, 1.0], &[1.0, 3.0], 2).unwrap();
        assert!(
            (s[0] + 0.4).abs() < 1e-6 && (s[1] + 1.2).abs() < 1e-6,
            "{s:?}"
        );
        // Means of the wrong length: no correction.
        assert!(mean_shift(&a, 0, &[1.0, 1.0], &[1.0], 2).is_none());
    }
}
