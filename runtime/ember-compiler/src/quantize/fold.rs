//! Folding the per-channel affine ops after a convolution or dense layer
//! (`BatchNormalization`, or the `Mul` and `Add` an exported Keras batch
//! norm becomes) into that layer's weights and bias, so that they are
//! quantized once, together, instead of each rounding its own output.

use std::collections::{HashMap, HashSet};

use ndarray::{ArrayD, Axis};
use tract_onnx::pb::{GraphProto, NodeProto};

use super::plan::{layer_weights, WeightLayout};
use super::proto::{f32s, float_init, input};
use crate::error::Result;
use crate::lower::attrs::attr_f;
use crate::lower::normalization::batchnorm_affine;

/// A layer whose output channels can absorb a scale and an offset.
struct Layer {
    /// The weight initializer.
    weight: String,
    /// Axis of the weight that indexes output channels.
    weight_axis: usize,
    /// Number of output channels.
    channels: usize,
    /// The output's rank for a convolution (`[N, C, spatial…]`: channels
    /// at axis 1); `None` for Gemm (`[M, N]`: channels last).
    conv_rank: Option<usize>,
}

/// The layer `n` if it can absorb a per-channel affine op: a `Conv` or a
/// `Gemm` with an integer kernel (see [`layer_weights`]; a `MatMul` has no
/// bias to take the offset).
fn layer(g: &GraphProto, n: &NodeProto) -> Option<Layer> {
    if !matches!(n.op_type.as_str(), "Conv" | "Gemm") {
        return None;
    }
    let WeightLayout { axis, dims } = layer_weights(g, n)?;
    Some(Layer {
        weight: input(n, 1)?.into(),
        weight_axis: axis,
        channels: dims[axis],
        conv_rank: (n.op_type == "Conv").then_some(dims.len()),
    })
}

/// A constant operand's values per output channel of `layer`, if it
/// broadcasts along the channel axis only (or is a scalar).
fn per_channel(c: &ArrayD<f32>, layer: &Layer) -> Option<Vec<f32>> {
    if c.len() == 1 {
        return Some(vec![c.iter().next().copied()?; layer.channels]);
    }
    if c.len() != layer.channels {
        return None;
    }
    let dims = c.shape();
    let ok = match layer.conv_rank {
        // Conv output [N, C, spatial…]: the operand padded on the left to
        // the output's rank must be [1, C, 1, …], so C is followed by
        // exactly rank − 2 ones (a bare [C] would broadcast along the last
        // spatial axis instead).
        Some(rank) => {
            let first = dims.iter().position(|&d| d != 1);
            first.is_some_and(|f| {
                dims.len() - f == rank - 1 && dims[f + 1..].iter().all(|&d| d == 1)
            })
        }
        // Gemm output [M, N]: [N] or [1, N].
        None => dims.last() == Some(&layer.channels),
    };
    ok.then(|| c.iter().copied().collect())
}

/// `(scale, offset)` per channel of the op `n` applied to the layer's
/// output `x`, if `n` is a per-channel affine op of constants.
fn affine(g: &GraphProto, n: &NodeProto, x: &str, layer: &Layer) -> Result<Option<Vec<[f32; 2]>>> {
    let consts = |i: usize| -> Result<Option<Vec<f32>>> {
        Ok(match input(n, i) {
            Some(name) => float_init(g, name)?.and_then(|c| per_channel(&c, layer)),
            None => None,
        })
    };
    let other = if input(n, 0) == Some(x) { 1 } else { 0 };
    Ok(match n.op_type.as_str() {
        "BatchNormalization" if input(n, 0) == Some(x) && n.output.len() == 1 => {
            let (Some(gamma), Some(beta), Some(mean), Some(var)) =
                (consts(1)?, consts(2)?, consts(3)?, consts(4)?)
            else {
                return Ok(None);
            };
            let eps = attr_f(n, "epsilon", 1e-5) as f64;
            Some(
                (0..layer.channels)
                    .map(|c| {
                        let f = |v: &[f32]| v[c] as f64;
                        let (s, o) = batchnorm_affine(f(&gamma), f(&beta), f(&mean), f(&var), eps);
                        [s as f32, o as f32]
                    })
                    .collect(),
            )
        }
        "Mul" => consts(other)?.map(|m| m.iter().map(|&s| [s, 0.0]).collect()),
        "Add" => consts(other)?.map(|a| a.iter().map(|&b| [1.0, b]).collect()),
        _ => None,
    })
}

/// Folds every per-channel affine op that directly follows a foldable
/// layer (and is that layer output's only consumer) into the layer;
/// returns how many were folded. New weights and biases are new
/// initializers (the old ones may be shared with other nodes).
pub(super) fn fold_affine(g: &mut GraphProto) -> Result<usize> {
    let outputs: HashSet<String> = g.output.iter().map(|o| o.name.clone()).collect();
    let mut folded = 0;
    'again: loop {
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (j, n) in g.node.iter().enumerate() {
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                consumers.entry(i.as_str()).or_default().push(j);
            }
        }
        for (i, n) in g.node.iter().enumerate() {
            let Some(x) = n.output.first().filter(|x| !outputs.contains(*x)) else {
                continue;
            };
            let Some(&[j]) = consumers.get(x.as_str()).map(Vec::as_slice) else {
                continue;
            };
            let Some(l) = layer(g, n) else { continue };
            let Some(ab) = affine(g, &g.node[j], x, &l)? else {
                continue;
            };
            let mut w = float_init(g, &l.weight)?.unwrap_or_default();
            for (c, mut lane) in w.axis_iter_mut(Axis(l.weight_axis)).enumerate() {
                lane.mapv_inplace(|v| v * ab[c][0]);
            }
            let b = match input(n, 2) {
                Some(b) => float_init(g, b)?.unwrap_or_default(),
                None => ArrayD::zeros(ndarray::IxDyn(&[l.channels])),
            };
            let b: Vec<f32> = b.iter().zip(&ab).map(|(&b, &[s, o])| b * s + o).collect();
            let out = g.node[j].output[0].clone();
            let (wn, bn) = (format!("{out}__folded_w"), format!("{out}__folded_b"));
            let wv: Vec<f32> = w.iter().copied().collect();
            g.initializer.push(f32s(&wn, w.shape(), &wv));
            g.initializer.push(f32s(&bn, &[l.channels], &b));
            let n = &mut g.node[i];
            n.input.resize(3, String::new());
            n.input[1] = wn;
            n.input[2] = bn;
            n.output[0] = out;
            g.node.remove(j);
            folded += 1;
            continue 'again;
        }
        return Ok(folded);
    }
}
