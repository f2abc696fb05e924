//! Where the quantize/dequantize pairs go: the activations around every op
//! that has an integer kernel, which of them share one scale (the inputs
//! and output of ops that move values without changing them: reshapes,
//! transposes, pooling, Concat), which have a fixed one (Softmax, Sigmoid,
//! Tanh, as TFLite's integer kernels require), which `Relu`/`Clip` the op
//! before absorbs (its output's zero point clamps), and which weights
//! become int8.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{GraphProto, NodeProto};

use super::proto::{float_dims, float_init, initializers, input};
use crate::error::Result;
use crate::lower::attrs::{attr, attr_f, attr_i};

/// Ops whose output holds the same values as (some of) their input, so
/// they share its quantization.
const SAME_SCALE: &[&str] = &[
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Concat",
];

/// Output quantization fixed by the op's range: `(scale, zero point)`.
fn fixed_output(op: &str) -> Option<(f32, i8)> {
    match op {
        "Softmax" | "Sigmoid" => Some((1.0 / 256.0, -128)),
        "Tanh" => Some((1.0 / 128.0, 0)),
        _ => None,
    }
}

/// A layer whose weights become int8 per output channel.
#[derive(Clone, Debug)]
pub(super) struct Layer {
    /// Node index.
    pub(super) node: usize,
    /// Axis of the weight (input 1) that indexes output channels.
    pub(super) axis: usize,
    /// Axis of the input activation that indexes input channels (1 for a
    /// convolution's NCHW input, [`super::observe::LAST_AXIS`] for a
    /// matrix product).
    pub(super) input_axis: usize,
}

/// The quantization plan of a graph.
#[derive(Clone, Debug, Default)]
pub(super) struct Plan {
    /// Activation tensors that get a quantize/dequantize pair.
    pub(super) tensors: Vec<String>,
    /// Union-find parents over `tensors` (one root per scale group).
    parent: Vec<usize>,
    index: HashMap<String, usize>,
    /// Tensors with a fixed quantization.
    pub(super) fixed: HashMap<String, (f32, i8)>,
    /// Layers with integer weights.
    pub(super) layers: Vec<Layer>,
    /// `Relu`/`Clip` nodes absorbed into the node before them, by the
    /// index of that node.
    pub(super) absorbed: HashMap<usize, usize>,
    /// Constant operands quantized per tensor: `(node, input)`.
    pub(super) consts: Vec<(usize, usize)>,
    /// Nodes whose inputs and outputs are quantized.
    pub(super) quantized_nodes: Vec<usize>,
}

/// The weights of a layer with an integer kernel.
pub(super) struct WeightLayout {
    /// The weights' axis of output channels.
    pub(super) axis: usize,
    /// The weights' dims.
    pub(super) dims: Vec<usize>,
}

/// The weight layout of a layer with an integer kernel: a `Conv`, a plain
/// `Gemm` (no transposed input, unit `alpha`/`beta`), or a `MatMul` by a
/// constant matrix, with constant float weights (and a bias of one value
/// per output channel). Only the initializers' headers are read.
pub(super) fn layer_weights(g: &GraphProto, n: &NodeProto) -> Option<WeightLayout> {
    let dims = float_dims(g, input(n, 1)?)?;
    let axis = match n.op_type.as_str() {
        "Conv" if dims.len() >= 3 => 0,
        "Gemm"
            if dims.len() == 2
                && attr_i(n, "transA", 0) == 0
                && attr_f(n, "alpha", 1.0) == 1.0
                && attr_f(n, "beta", 1.0) == 1.0 =>
        {
            if attr_i(n, "transB", 0) != 0 {
                0
            } else {
                1
            }
        }
        "MatMul" if dims.len() == 2 => 1,
        _ => return None,
    };
    if let Some(b) = input(n, 2) {
        let b = float_dims(g, b)?;
        let (last, rest) = b.split_last()?;
        if *last != dims[axis] || rest.iter().any(|&d| d != 1) {
            return None;
        }
    }
    Some(WeightLayout { axis, dims })
}

/// `true` if `n` is a `Relu`, or a `Clip` from 0 to a constant.
fn is_relu(g: &GraphProto, n: &NodeProto) -> Result<bool> {
    Ok(match n.op_type.as_str() {
        "Relu" => true,
        "Clip" => {
            let bound = |i: usize, name: &str| -> Result<Option<f32>> {
                Ok(match input(n, i) {
                    Some(c) => float_init(g, c)?
                        .filter(|c| c.len() == 1)
                        .and_then(|c| c.iter().next().copied()),
                    None => attr(n, name).map(|a| a.f),
                })
            };
            bound(1, "min")? == Some(0.0) && bound(2, "max")?.is_some_and(|m| m > 0.0)
        }
        _ => false,
    })
}

impl Plan {
    fn add(&mut self, t: &str) -> usize {
        if let Some(&i) = self.index.get(t) {
            return i;
        }
        let i = self.tensors.len();
        self.tensors.push(t.into());
        self.parent.push(i);
        self.index.insert(t.into(), i);
        i
    }

    fn root(&self, mut i: usize) -> usize {
        while self.parent[i] != i {
            i = self.parent[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.parent[rb] = ra;
        }
    }

    /// The tensors that share `t`'s quantization (`t` included).
    pub(super) fn group(&self, t: &str) -> Vec<&str> {
        let Some(&i) = self.index.get(t) else {
            return vec![];
        };
        let r = self.root(i);
        (0..self.tensors.len())
            .filter(|&j| self.root(j) == r)
            .map(|j| self.tensors[j].as_str())
            .collect()
    }

    /// `true` if `t` gets a quantize/dequantize pair.
    pub(super) fn is_quantized(&self, t: &str) -> bool {
        self.index.contains_key(t)
    }

    /// Leaves in float every group with a member in `drop` (values that are
    /// not float, e.g. shape arithmetic in int64), and every node and
    /// layer that loses a quantized tensor with it.
    pub(super) fn drop_groups(&mut self, g: &GraphProto, drop: &HashSet<String>) {
        let doomed: HashSet<usize> = drop
            .iter()
            .filter_map(|t| self.index.get(t))
            .map(|&i| self.root(i))
            .collect();
        if doomed.is_empty() {
            return;
        }
        let keep: Vec<String> = (0..self.tensors.len())
            .filter(|&i| !doomed.contains(&self.root(i)))
            .map(|i| self.tensors[i].clone())
            .collect();
        let groups: Vec<Vec<String>> = keep
            .iter()
            .map(|t| self.group(t).iter().map(|s| s.to_string()).collect())
            .collect();
        let old = std::mem::take(self);
        for (t, grp) in keep.iter().zip(&groups) {
            let i = self.add(t);
            for o in grp {
                let j = self.add(o);
                self.join(i, j);
            }
        }
        self.fixed = old
            .fixed
            .into_iter()
            .filter(|(t, _)| self.is_quantized(t))
            .collect();
        let out = |n: usize| old_out(g, &old.absorbed, n);
        self.quantized_nodes = old
            .quantized_nodes
            .into_iter()
            .filter(|&n| {
                self.is_quantized(&out(n))
                    && g.node[n]
                        .input
                        .iter()
                        .filter(|i| old.index.contains_key(*i))
                        .all(|i| self.is_quantized(i))
            })
            .collect();
        let live: HashSet<usize> = self.quantized_nodes.iter().copied().collect();
        self.layers = old
            .layers
            .into_iter()
            .filter(|l| live.contains(&l.node))
            .collect();
        self.consts = old
            .consts
            .into_iter()
            .filter(|(n, _)| live.contains(n))
            .collect();
        self.absorbed = old
            .absorbed
            .into_iter()
            .filter(|(p, _)| live.contains(p))
            .collect();
    }
}

/// The name of node `n`'s (quantized) output: its own, or that of the
/// `Relu` it absorbs.
pub(super) fn old_out(g: &GraphProto, absorbed: &HashMap<usize, usize>, n: usize) -> String {
    let o = absorbed.get(&n).unwrap_or(&n);
    g.node[*o].output.first().cloned().unwrap_or_default()
}

/// Plans the quantization of `g` (after [`super::fold::fold_affine`]).
pub(super) fn plan(g: &GraphProto) -> Result<Plan> {
    let inits = initializers(g);
    let outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, n) in g.node.iter().enumerate() {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            consumers.entry(i.as_str()).or_default().push(j);
        }
    }
    let is_const = |t: &str| inits.contains_key(t);
    let mut p = Plan::default();
    let mut absorbed_set = HashSet::new();
    for (i, n) in g.node.iter().enumerate() {
        let producer = matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul" | "Add");
        let Some(x) = n
            .output
            .first()
            .filter(|x| producer && !outputs.contains(x.as_str()))
        else {
            continue;
        };
        if let Some(&[r]) = consumers.get(x.as_str()).map(Vec::as_slice) {
            if is_relu(g, &g.node[r])? {
                p.absorbed.insert(i, r);
                absorbed_set.insert(r);
            }
        }
    }
    for (i, n) in g.node.iter().enumerate() {
        if absorbed_set.contains(&i) || n.output.len() != 1 {
            continue;
        }
        let op = n.op_type.as_str();
        let data: Vec<&str> = match op {
            "Conv" | "Gemm" | "MatMul" => match layer_weights(g, n) {
                Some(WeightLayout { axis, .. }) => {
                    let input_axis = if op == "Conv" {
                        1
                    } else {
                        super::observe::LAST_AXIS
                    };
                    p.layers.push(Layer {
                        node: i,
                        axis,
                        input_axis,
                    });
                    input(n, 0).into_iter().collect()
                }
                None if op == "MatMul" => n.input.iter().map(String::as_str).collect(),
                None => continue,
            },
            "Add" => {
                for (k, x) in n.input.iter().enumerate() {
                    if is_const(x) {
                        p.consts.push((i, k));
                    }
                }
                n.input
                    .iter()
                    .map(String::as_str)
                    .filter(|x| !is_const(x))
                    .collect()
            }
            "Concat" => n.input.iter().map(String::as_str).collect(),
            _ if SAME_SCALE.contains(&op) || fixed_output(op).is_some() => {
                input(n, 0).into_iter().collect()
            }
            _ => continue,
        };
        if data.is_empty() || data.iter().any(|x| x.is_empty() || is_const(x)) {
            p.layers.retain(|l| l.node != i);
            p.consts.retain(|&(n, _)| n != i);
            continue;
        }
        let out = old_out(g, &p.absorbed, i);
        let o = p.add(&out);
        for x in data {
            let xi = p.add(x);
            if SAME_SCALE.contains(&op) {
                p.join(o, xi);
            }
        }
        if let Some(f) = fixed_output(op) {
            p.fixed.insert(out, f);
        }
        p.quantized_nodes.push(i);
    }
    // A node that is not quantized keeps its Relu.
    let live: HashSet<usize> = p.quantized_nodes.iter().copied().collect();
    p.absorbed.retain(|n, _| live.contains(n));
    Ok(p)
}
