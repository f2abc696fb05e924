//! The activation functions of `LSTM`, `GRU` and `RNN`: which ones a
//! node names (with their alpha and beta), and each as synthesized ops.

use tract_onnx::pb::{AttributeProto, NodeProto};

use super::super::attrs::{attr, step, unsupported};
use super::super::Lowerer;
use super::Cell;
use crate::error::{malformed, Result};

/// One activation function of a recurrent op, with its parameters.
#[derive(Clone, Debug)]
pub(super) struct Activation {
    pub(super) name: String,
    pub(super) alpha: Option<f32>,
    pub(super) beta: Option<f32>,
}

fn attr_floats(node: &NodeProto, name: &str) -> Vec<f32> {
    attr(node, name)
        .map(|a| a.floats.clone())
        .unwrap_or_default()
}

fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: v,
        r#type: 1, // FLOAT
        ..Default::default()
    }
}

/// The activations of `node`, `per_dir` for each of `dirs` directions,
/// with `activation_alpha`/`activation_beta` consumed in order by the
/// functions that take them.
pub(super) fn activations(node: &NodeProto, cell: Cell, dirs: usize) -> Result<Vec<Activation>> {
    let defaults = cell.default_activations();
    let names: Vec<String> = match attr(node, "activations") {
        Some(a) if !a.strings.is_empty() => a
            .strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).to_string())
            .collect(),
        _ => (0..dirs)
            .flat_map(|_| defaults.iter().map(|s| s.to_string()))
            .collect(),
    };
    if names.len() != defaults.len() * dirs {
        return Err(malformed(format!(
            "node '{}': {} activations given, {} needed ({} per direction)",
            node.name,
            names.len(),
            defaults.len() * dirs,
            defaults.len()
        )));
    }
    let (alphas, betas) = (
        attr_floats(node, "activation_alpha"),
        attr_floats(node, "activation_beta"),
    );
    let (mut a, mut b) = (alphas.iter(), betas.iter());
    names
        .into_iter()
        .map(|name| {
            let (takes_alpha, takes_beta) = match name.to_ascii_lowercase().as_str() {
                "sigmoid" | "tanh" | "relu" | "softsign" | "softplus" => (false, false),
                "leakyrelu" | "thresholdedrelu" | "elu" => (true, false),
                "affine" | "scaledtanh" | "hardsigmoid" => (true, true),
                _ => {
                    return Err(unsupported(
                        node,
                        format!("activation '{name}' (Ember has Sigmoid, Tanh, Relu, LeakyRelu, ThresholdedRelu, Elu, HardSigmoid, Softsign, Softplus, Affine, ScaledTanh)"),
                    ))
                }
            };
            Ok(Activation {
                name,
                alpha: if takes_alpha { a.next().copied() } else { None },
                beta: if takes_beta { b.next().copied() } else { None },
            })
        })
        .collect()
}

impl Lowerer<'_> {
    pub(super) fn activate(
        &mut self,
        i: usize,
        node: &NodeProto,
        act: &Activation,
        clip: Option<f32>,
        x: &str,
        out: &str,
    ) -> Result<()> {
        let mut x = x.to_string();
        if let Some(c) = clip {
            let lo = self.f32_const(format!("{out}.clip_lo"), &[], vec![-c])?;
            let hi = self.f32_const(format!("{out}.clip_hi"), &[], vec![c])?;
            let clipped = format!("{out}.clipped");
            self.sub(i, step(node, "Clip", &[x, lo, hi], &clipped))?;
            x = clipped;
        }
        let with = |op: &str, attrs: Vec<AttributeProto>| {
            let mut n = step(node, op, &[x.clone()], out);
            n.attribute = attrs;
            n
        };
        let alpha = |d: f32| vec![float_attr("alpha", act.alpha.unwrap_or(d))];
        match act.name.to_ascii_lowercase().as_str() {
            "sigmoid" => self.sub(i, with("Sigmoid", vec![])),
            "tanh" => self.sub(i, with("Tanh", vec![])),
            "relu" => self.sub(i, with("Relu", vec![])),
            "softsign" => self.sub(i, with("Softsign", vec![])),
            "softplus" => self.sub(i, with("Softplus", vec![])),
            "leakyrelu" => self.sub(i, with("LeakyRelu", alpha(0.01))),
            "thresholdedrelu" => self.sub(i, with("ThresholdedRelu", alpha(1.0))),
            "elu" => self.sub(i, with("Elu", alpha(1.0))),
            "hardsigmoid" => {
                let mut a = alpha(0.2);
                a.push(float_attr("beta", act.beta.unwrap_or(0.5)));
                self.sub(i, with("HardSigmoid", a))
            }
            // alpha · x + beta
            "affine" => {
                let a =
                    self.f32_const(format!("{out}.alpha"), &[], vec![act.alpha.unwrap_or(1.0)])?;
                let b =
                    self.f32_const(format!("{out}.beta"), &[], vec![act.beta.unwrap_or(0.0)])?;
                let ax = format!("{out}.ax");
                self.binary(i, node, "Mul", &x, &a, &ax)?;
                self.binary(i, node, "Add", &ax, &b, out)
            }
            // alpha · tanh(beta · x)
            "scaledtanh" => {
                let a =
                    self.f32_const(format!("{out}.alpha"), &[], vec![act.alpha.unwrap_or(1.0)])?;
                let b =
                    self.f32_const(format!("{out}.beta"), &[], vec![act.beta.unwrap_or(1.0)])?;
                let (bx, t) = (format!("{out}.bx"), format!("{out}.tanh"));
                self.binary(i, node, "Mul", &x, &b, &bx)?;
                self.sub(i, step(node, "Tanh", &[bx], &t))?;
                self.binary(i, node, "Mul", &t, &a, out)
            }
            other => Err(unsupported(node, format!("activation '{other}'"))),
        }
    }
}
