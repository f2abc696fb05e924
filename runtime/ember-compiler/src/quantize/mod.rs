//! Post-training static quantization: a float ONNX model and calibration
//! samples in, a QDQ ONNX model out — int8 weights per output channel for
//! convolutions and per tensor for dense layers (symmetric, clipped by
//! least squared error), int8 activations
//! (asymmetric, ranges from calibration), int32 biases. Any ONNX runtime
//! runs the result; [`crate::compile`] lowers it onto Ember's integer
//! kernels with TFLite's integer semantics.
//!
//! The steps, a module each:
//! - [`fold`]: batch norms (and the per-channel `Mul`/`Add` they export as)
//!   folded into the layer before them;
//! - [`plan`]: which activations get a quantize/dequantize pair, which share
//!   a scale, which have a fixed one, which `Relu`s disappear into a zero
//!   point, which weights become int8;
//! - [`observe`]: the float model run by Ember's host runtime on the
//!   samples, every planned tensor's range and histogram recorded;
//! - [`range`]: the range of each activation by the chosen method, the
//!   scale of each weight channel;
//! - [`rewrite`]: the QDQ graph;
//! - [`mixed`]: with an SQNR target, which scale groups stay in float.
//!
//! ```no_run
//! use ember_compiler::quantize::{quantize, Calibration, QuantizeOptions};
//! let onnx = std::fs::read("kws_float32.onnx")?;
//! let samples = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[8, 49, 10, 1]));
//! let cal = Calibration::new(vec![(String::new(), samples)])?;
//! let q = quantize(&onnx, &cal, &QuantizeOptions::default())?;
//! let blob = ember_compiler::compile(&q.onnx, &Default::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod fold;
mod mixed;
mod observe;
mod plan;
mod proto;
mod range;
mod rewrite;

use std::collections::{HashMap, HashSet};

pub use mixed::{FloatGroup, Mixed};
use ndarray::ArrayD;
use prost::Message;
pub use rewrite::WeightReport;
use tract_onnx::prelude::Framework;

use crate::error::{CompileError, Result};
use crate::Progress;

/// The fewest calibration samples whose per-channel means the biases are
/// corrected with: from fewer, the means are too noisy to help (with 6
/// images, vww loses 7 dB with the correction; with 25 clips, kws gains
/// 2 dB).
pub const BIAS_CORRECTION_SAMPLES: usize = 16;

/// How an activation's range is chosen from what calibration saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RangeMethod {
    /// Ember's default: [`RangeMethod::Mse`] (the best of the five on four
    /// of the five MLPerf Tiny models, and within 1.5 dB on the fifth).
    #[default]
    Auto,
    /// The smallest and largest values seen.
    MinMax,
    /// The 0.01th and 99.99th percentiles.
    Percentile,
    /// The range with the least expected squared quantization error
    /// (clipping outside, rounding inside).
    Mse,
    /// The range whose quantized histogram has the least KL divergence from
    /// the seen one.
    Entropy,
}

impl RangeMethod {
    /// Every method, by name.
    pub const ALL: [(&'static str, RangeMethod); 5] = [
        ("auto", RangeMethod::Auto),
        ("minmax", RangeMethod::MinMax),
        ("percentile", RangeMethod::Percentile),
        ("mse", RangeMethod::Mse),
        ("entropy", RangeMethod::Entropy),
    ];

    /// The method called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, m)| m)
    }

    /// The method's name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("auto", |(n, _)| n)
    }
}

/// Calibration samples: for each model input, an array whose first axis
/// holds the samples (`[N, d1, d2, …]` for an input `[1, d1, d2, …]`).
#[derive(Clone, Debug)]
pub struct Calibration {
    inputs: Vec<(String, ArrayD<f32>)>,
}

impl Calibration {
    /// Checks and wraps the samples, keyed by input name (an empty name:
    /// the model's only input). Every array needs the same number of
    /// samples, at least one, and finite values.
    pub fn new(inputs: Vec<(String, ArrayD<f32>)>) -> Result<Self> {
        let bad = |m: String| Err(CompileError::Calibration(m));
        let label = |n: &str| {
            if n.is_empty() {
                "the samples".to_string()
            } else {
                format!("'{n}'")
            }
        };
        let Some((first, a0)) = inputs.first() else {
            return bad("no samples".into());
        };
        if a0.ndim() == 0 {
            return bad(format!(
                "{} is a scalar; samples go along the first axis",
                label(first)
            ));
        }
        let n = a0.shape()[0];
        for (name, a) in &inputs {
            if a.ndim() == 0 || a.shape()[0] != n {
                return bad(format!(
                    "{} holds {} samples and {} {n}",
                    label(name),
                    a.shape().first().copied().unwrap_or(0),
                    label(first)
                ));
            }
            if a.is_empty() {
                return bad(format!("{} holds no samples", label(name)));
            }
            if let Some(i) = a.iter().position(|x| !x.is_finite()) {
                let per = a.len() / n;
                return bad(format!(
                    "{} has {} in sample {}",
                    label(name),
                    a.iter().nth(i).copied().unwrap_or(f32::NAN),
                    i / per
                ));
            }
        }
        if inputs.len() > 1 && inputs.iter().any(|(n, _)| n.is_empty()) {
            return bad("samples for several inputs need an input name each".into());
        }
        Ok(Calibration { inputs })
    }

    /// Number of samples.
    pub fn samples(&self) -> usize {
        self.inputs.first().map_or(0, |(_, a)| a.shape()[0])
    }

    /// The samples with an unnamed array bound to the model's only input;
    /// every model input needs samples and every array an input.
    fn named(&self, model_inputs: &[String]) -> Result<Calibration> {
        let mut c = self.clone();
        let list = model_inputs.join(", ");
        if let [(name, _)] = c.inputs.as_mut_slice() {
            if name.is_empty() {
                match model_inputs {
                    [only] => *name = only.clone(),
                    _ => {
                        return Err(CompileError::Calibration(format!(
                            "the model has {} inputs ({list}): give the samples as an .npz keyed by input name",
                            model_inputs.len(),
                        )))
                    }
                }
            }
        }
        for name in model_inputs {
            if !c.inputs.iter().any(|(n, _)| n == name) {
                return Err(CompileError::Calibration(format!(
                    "no samples for the model's input '{name}' (it has {list})"
                )));
            }
        }
        if let Some((n, _)) = c.inputs.iter().find(|(n, _)| !model_inputs.contains(n)) {
            return Err(CompileError::Calibration(format!(
                "'{n}' is not an input of the model (it has {list})"
            )));
        }
        Ok(c)
    }
}

/// Quantization options.
#[derive(Clone, Debug, Default)]
pub struct QuantizeOptions {
    /// How activation ranges are chosen.
    pub method: RangeMethod,
    /// Told `("calibrating", done, total)` as samples run.
    pub progress: Option<Progress>,
    /// Leave the biases as they are instead of correcting them for the
    /// mean shift that rounding the weights causes (done only with at
    /// least [`BIAS_CORRECTION_SAMPLES`] samples).
    pub no_bias_correction: bool,
    /// Give dense layers (`Gemm`, `MatMul`) a weight scale per output
    /// channel too. By default they get one per tensor, as TFLite's fully
    /// connected kernels do: one requantization multiplier, half the
    /// instructions of the per-channel epilogue on the M55 (ad: 2.7×
    /// fewer in all), at some accuracy (ad: 44.9 → 40.3 dB; kws and ic
    /// gain 1.1 and 0.2 dB).
    pub per_channel_dense: bool,
    /// Give the model int8 inputs and outputs (their scale and zero point
    /// in the blob, as a converter's int8 model has) instead of float ones
    /// converted at its edges.
    pub int8_io: bool,
    /// Mixed precision: leave in float the fewest multiply-accumulates
    /// that bring the model's output SQNR against the float model (on the
    /// calibration samples) to this many dB; everything else is int8.
    pub sqnr_target: Option<f64>,
}

/// One quantized activation.
#[derive(Clone, Debug)]
pub struct TensorReport {
    /// Tensor name.
    pub name: String,
    /// Smallest and largest values calibration saw.
    pub seen: (f32, f32),
    /// The range quantized into.
    pub range: (f32, f32),
    /// int8 scale.
    pub scale: f32,
    /// int8 zero point.
    pub zero_point: i8,
    /// SQNR in dB of its quantized value against its float value on the
    /// calibration samples (errors from every layer before it included).
    pub sqnr: f64,
}

/// What quantization did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Calibration samples run.
    pub samples: usize,
    /// Batch norms and per-channel affine ops folded into layers.
    pub folded: usize,
    /// The activations quantized.
    pub tensors: Vec<TensorReport>,
    /// The weights made int8.
    pub weights: Vec<WeightReport>,
    /// Nodes left in float (no integer kernel, or non-float values).
    pub float_nodes: Vec<String>,
    /// The range method used.
    pub method: RangeMethod,
    /// SQNR in dB of the quantized model's outputs against the float
    /// model's on the calibration samples.
    pub calibration_sqnr: f64,
    /// Whether the biases were corrected for the weights' rounding.
    pub bias_corrected: bool,
    /// Share of calibration samples whose largest first-output value is
    /// where the float model's is (top-1 agreement for a classifier).
    pub top1_agreement: f64,
    /// With an SQNR target: what the mixed-precision sweep left in float.
    pub mixed: Option<Mixed>,
}

/// A quantized model.
#[derive(Clone, Debug)]
pub struct Quantized {
    /// The QDQ ONNX model.
    pub onnx: Vec<u8>,
    /// What was done.
    pub report: Report,
}

/// Quantizes the float ONNX model `onnx` with the calibration samples
/// `cal`.
pub fn quantize(onnx: &[u8], cal: &Calibration, opts: &QuantizeOptions) -> Result<Quantized> {
    if let Some(t) = opts.sqnr_target.filter(|t| !t.is_finite() || *t <= 0.0) {
        return Err(CompileError::Calibration(format!(
            "an SQNR target of {t} dB: it must be a positive number"
        )));
    }
    let mut model = tract_onnx::onnx()
        .proto_model_for_read(&mut &onnx[..])
        .map_err(|e| CompileError::Malformed(format!("not a readable ONNX protobuf: {e}")))?;
    if let Some(o) = model
        .opset_import
        .iter()
        .find(|o| (o.domain.is_empty() || o.domain == "ai.onnx") && o.version < 13)
    {
        return Err(CompileError::Unsupported {
            op_type: "model".into(),
            node: String::new(),
            what: format!(
                "quantization writes per-channel QuantizeLinear/DequantizeLinear, which need opset 13; the model has opset {} (re-export it at 13 or newer)",
                o.version
            ),
        });
    }
    let g = model
        .graph
        .as_mut()
        .ok_or_else(|| CompileError::Malformed("the model has no graph".into()))?;
    let cal = cal.named(&observe::model_inputs(g))?;
    let folded = fold::fold_affine(g)?;
    let mut plan = plan::plan(g)?;
    if plan.tensors.is_empty() {
        return Err(CompileError::Unsupported {
            op_type: "model".into(),
            node: String::new(),
            what: "nothing to quantize: no op of the model has an integer kernel".into(),
        });
    }
    let channel_axes: HashMap<String, usize> = plan
        .layers
        .iter()
        .filter_map(|l| Some((proto::input(&g.node[l.node], 0)?.to_string(), l.input_axis)))
        .collect();
    let observed = observe::observe(&model, &plan.tensors, &channel_axes, &cal, opts)?;
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| CompileError::Malformed("the model has no graph".into()))?;
    plan.drop_groups(g, &observed.not_float);
    let method = match opts.method {
        RangeMethod::Auto => RangeMethod::Mse,
        m => m,
    };
    let bias_corrected = !opts.no_bias_correction && cal.samples() >= BIAS_CORRECTION_SAMPLES;
    // The QDQ model under a plan.
    let build = |plan: &plan::Plan| -> Result<_> {
        let (params, tensors) = choose_params(plan, &observed.stats, method)?;
        let (g2, weights) = rewrite::rewrite(
            g,
            plan,
            &params,
            &observed.channels,
            bias_corrected,
            opts.per_channel_dense,
        )?;
        let mut q = model.clone();
        q.graph = Some(g2);
        Ok((q, tensors, weights))
    };
    let (plan, mixed) = match opts.sqnr_target {
        Some(target) => {
            let reference = observe::Reference::new(&model, &cal)?;
            let progress = |done: usize, total: usize| {
                if let Some(p) = &opts.progress {
                    (p.0)("choosing precisions", done as u64, total as u64);
                }
            };
            let score = |p: &plan::Plan| Ok(reference.score(&build(p)?.0, &cal)?.sqnr());
            let (p, m) = mixed::sweep(g, &plan, &observed.stats, target, score, progress)?;
            (p, Some(m))
        }
        None => (plan, None),
    };
    let (mut q, tensors, weights) = build(&plan)?;
    q.producer_name = "ember".into();
    q.producer_version = env!("CARGO_PKG_VERSION").into();
    // Each activation, and the graph's outputs, against their float
    // values: where the error comes in, and what the model gives.
    let outputs: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let mut pairs: Vec<(String, String)> = tensors
        .iter()
        .map(|t| {
            let q = if outputs.contains(&t.name.as_str()) {
                t.name.clone()
            } else {
                format!("{}__dequantized", t.name)
            };
            (t.name.clone(), q)
        })
        .collect();
    for o in &outputs {
        if !pairs.iter().any(|(f, _)| f == o) {
            pairs.push((o.to_string(), o.to_string()));
        }
    }
    let close = observe::compare(&model, &q, &pairs, &cal)?;
    let mut tensors = tensors;
    for (t, c) in tensors.iter_mut().zip(&close) {
        t.sqnr = c.sqnr();
    }
    let of_output = |o: &str| pairs.iter().position(|(f, _)| f == o).map(|i| close[i]);
    let (signal, noise) = outputs
        .iter()
        .filter_map(|o| of_output(o))
        .fold((0.0, 0.0), |(s, n), c| (s + c.signal, n + c.noise));
    let calibration_sqnr = observe::sqnr_db(signal, noise);
    let top1_agreement = outputs
        .first()
        .and_then(|o| of_output(o))
        .map_or(0.0, |c| c.same_argmax as f64 / cal.samples().max(1) as f64);
    if opts.int8_io {
        if let Some(g) = q.graph.as_mut() {
            rewrite::int8_io(g);
        }
    }
    let onnx = q.encode_to_vec();
    let quantized: HashSet<usize> = plan.quantized_nodes.iter().copied().collect();
    let absorbed: HashSet<usize> = plan.absorbed.values().copied().collect();
    let float_nodes = g
        .node
        .iter()
        .enumerate()
        .filter(|(i, _)| !quantized.contains(i) && !absorbed.contains(i))
        .map(|(_, n)| format!("{} ({})", n.name, n.op_type))
        .collect();
    Ok(Quantized {
        onnx,
        report: Report {
            samples: cal.samples(),
            folded,
            tensors,
            weights,
            float_nodes,
            method,
            calibration_sqnr,
            bias_corrected,
            top1_agreement,
            mixed,
        },
    })
}

/// Each quantized tensor's int8 `(scale, zero point)`, by name.
type Params = HashMap<String, (f32, i8)>;

/// Each quantized tensor's `(scale, zero point)` under `method`: one range
/// per scale group (the union of its members' ranges), fixed ones as the
/// op requires.
fn choose_params(
    plan: &plan::Plan,
    stats: &HashMap<String, observe::Stats>,
    method: RangeMethod,
) -> Result<(Params, Vec<TensorReport>)> {
    let mut params: HashMap<String, (f32, i8)> = HashMap::new();
    let mut tensors = Vec::new();
    for t in &plan.tensors {
        if params.contains_key(t) {
            continue;
        }
        let group = plan.group(t);
        let chosen = match group.iter().find_map(|m| plan.fixed.get(*m)) {
            Some(&f) => f,
            None => {
                let (mut lo, mut hi) = (0f32, 0f32);
                for m in &group {
                    let s = stats
                        .get(*m)
                        .ok_or_else(|| CompileError::Internal(format!("'{m}' not observed")))?;
                    let (l, h) = range::choose(s, method);
                    lo = lo.min(l);
                    hi = hi.max(h);
                }
                range::int8_params(lo, hi)
            }
        };
        for m in group {
            let seen = stats.get(m).map_or((0.0, 0.0), |s| (s.min, s.max));
            let (s, z) = chosen;
            tensors.push(TensorReport {
                name: m.into(),
                seen,
                range: (s * (-128.0 - z as f32), s * (127.0 - z as f32)),
                scale: s,
                zero_point: z,
                sqnr: 0.0,
            });
            params.insert(m.into(), chosen);
        }
    }
    Ok((params, tensors))
}
