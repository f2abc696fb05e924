//! Calibration: the float model, with every tensor the plan quantizes made
//! a graph output, compiled and run by Ember's own host runtime on each
//! calibration sample. Two passes: the first finds each tensor's range,
//! the second fills a histogram over it (what the range methods read).

use std::collections::{HashMap, HashSet};

use ember_runtime::{DType, Interpreter, Model};
use prost::Message;
use tract_onnx::pb::{GraphProto, ModelProto, ValueInfoProto};

use super::{Calibration, QuantizeOptions};
use crate::error::{CompileError, Result};
use crate::{aligned_arena, AlignedBlob, Options};

/// In a channel-axis request: the tensor's last axis, whatever its rank.
pub(super) const LAST_AXIS: usize = usize::MAX;

/// Bins of each tensor's histogram.
pub(super) const BINS: usize = 2048;

/// What calibration saw of one tensor.
#[derive(Clone, Debug)]
pub(super) struct Stats {
    /// Smallest value.
    pub(super) min: f32,
    /// Largest value.
    pub(super) max: f32,
    /// Counts of [`BINS`] equal bins over `[min, max]`.
    pub(super) hist: Vec<u64>,
}

impl Stats {
    /// The value at the centre of bin `i`.
    pub(super) fn center(&self, i: usize) -> f64 {
        let w = (self.max as f64 - self.min as f64) / BINS as f64;
        self.min as f64 + (i as f64 + 0.5) * w
    }
}

/// The statistics of every tensor in `names`, the names of those that are
/// not float (left out of quantization), and per sample the values of the
/// graph's own outputs (what a quantized model is scored against).
pub(super) fn observe(
    model: &ModelProto,
    names: &[String],
    channel_axes: &HashMap<String, usize>,
    cal: &Calibration,
    opts: &QuantizeOptions,
) -> Result<Observed> {
    let graph_outputs: Vec<String> = model
        .graph
        .as_ref()
        .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default();
    let mut all: Vec<String> = names.to_vec();
    all.extend(graph_outputs.iter().filter(|o| !names.contains(o)).cloned());
    let m = with_outputs(model, &all)?;
    let n = cal.samples();
    let mut stats: Vec<Stats> = Vec::new();
    let mut float = Vec::new();
    let mut reference = vec![Vec::new(); n];
    // Per-channel sums and counts of the tensors in `channel_axes`.
    let mut sums: HashMap<usize, (Vec<f64>, u64)> = HashMap::new();
    let out_index: Vec<usize> = graph_outputs
        .iter()
        .filter_map(|o| all.iter().position(|a| a == o))
        .collect();
    let progress = |done: usize, total: usize| {
        if let Some(p) = &opts.progress {
            (p.0)("calibrating", done as u64, total as u64);
        }
    };
    run_samples(&m, cal, 2, progress, |pass, s, model, interp| {
        if stats.is_empty() {
            for o in 0..model.num_outputs() {
                let info = model.output_info(o).map_err(internal)?;
                float.push(info.dtype == DType::F32);
            }
            stats = vec![
                Stats {
                    min: f32::INFINITY,
                    max: f32::NEG_INFINITY,
                    hist: vec![0; BINS],
                };
                all.len()
            ];
        }
        for (o, st) in stats.iter_mut().enumerate() {
            if !float[o] {
                continue;
            }
            let v = interp
                .output(o)
                .and_then(|v| v.as_f32())
                .map_err(internal)?;
            if pass == 0 {
                for &x in v {
                    if !x.is_finite() {
                        return Err(CompileError::Calibration(format!(
                            "sample {s} makes '{}' {x}",
                            all[o]
                        )));
                    }
                    st.min = st.min.min(x);
                    st.max = st.max.max(x);
                }
                if let Some(&axis) = channel_axes.get(&all[o]) {
                    let dims = model.output_info(o).map_err(internal)?.dims().to_vec();
                    let axis = if axis == LAST_AXIS {
                        dims.len().saturating_sub(1)
                    } else {
                        axis
                    };
                    if let Some(&c) = dims.get(axis) {
                        let inner: usize = dims[axis + 1..].iter().product();
                        let (sum, count) = sums.entry(o).or_insert_with(|| (vec![0.0; c], 0));
                        for (i, &x) in v.iter().enumerate() {
                            sum[(i / inner.max(1)) % c] += x as f64;
                        }
                        *count += (v.len() / c.max(1)) as u64;
                    }
                }
            } else {
                let w = (st.max as f64 - st.min as f64) / BINS as f64;
                for &x in v {
                    let b = if w > 0.0 {
                        (((x as f64 - st.min as f64) / w) as usize).min(BINS - 1)
                    } else {
                        0
                    };
                    st.hist[b] += 1;
                }
            }
        }
        // The graph's own float outputs, in the graph's order (what the
        // quantized model's outputs are scored against).
        if pass == 0 {
            for &o in out_index.iter().filter(|&&o| float[o]) {
                let v = interp
                    .output(o)
                    .and_then(|v| v.as_f32())
                    .map_err(internal)?;
                reference[s].extend_from_slice(v);
            }
        }
        Ok(())
    })?;
    let mut out = Observed::default();
    for (o, st) in stats.into_iter().enumerate().take(names.len()) {
        if float[o] {
            out.stats.insert(names[o].clone(), st);
        } else {
            out.not_float.insert(names[o].clone());
        }
    }
    out.reference = reference;
    for (o, (sum, count)) in sums {
        let mean = sum.iter().map(|s| s / count.max(1) as f64).collect();
        out.channels.insert(all[o].clone(), ChannelStats { mean });
    }
    Ok(out)
}

/// What calibration saw.
#[derive(Debug, Default)]
pub(super) struct Observed {
    /// Each float tensor's statistics.
    pub(super) stats: HashMap<String, Stats>,
    /// Tensors that are not float.
    pub(super) not_float: HashSet<String>,
    /// Per sample, the graph outputs' values, concatenated.
    pub(super) reference: Vec<Vec<f32>>,
    /// Per-channel statistics of the tensors asked for (channels along the
    /// axis asked for), over all samples and positions.
    pub(super) channels: HashMap<String, ChannelStats>,
}

/// One tensor's channels.
#[derive(Clone, Debug, Default)]
pub(super) struct ChannelStats {
    /// E[x] per channel.
    pub(super) mean: Vec<f64>,
}

fn internal(e: ember_runtime::Error) -> CompileError {
    CompileError::Internal(e.to_string())
}

/// A model compiled for the host with its calibration samples laid out for
/// its inputs.
pub(super) struct HostRun {
    blob: AlignedBlob,
    arena: AlignedBlob,
    feed: Vec<Vec<f32>>,
    samples: usize,
}

impl HostRun {
    /// Compiles `onnx` (inputs shaped like one sample of `cal`) and checks
    /// the samples against its inputs.
    pub(super) fn new(onnx: &[u8], cal: &Calibration) -> Result<Self> {
        let shapes = cal
            .inputs
            .iter()
            .map(|(n, a)| {
                let mut s = vec![1];
                s.extend_from_slice(&a.shape()[1..]);
                (n.clone(), s)
            })
            .collect();
        let compiled = crate::compile(
            onnx,
            &Options {
                input_shapes: shapes,
                ..Default::default()
            },
        )?;
        let blob = AlignedBlob::new(&compiled.blob);
        let model = Model::load(blob.bytes()).map_err(internal)?;
        let arena = aligned_arena(model.arena_bytes());
        let n = cal.samples();
        let mut feed = Vec::new();
        for i in 0..model.num_inputs() {
            let info = model.input_info(i).map_err(internal)?;
            let (name, a) = cal
                .inputs
                .iter()
                .find(|(n, _)| n == info.name)
                .ok_or_else(|| CompileError::Internal(format!("input {} not fed", info.name)))?;
            let per = a.len() / n.max(1);
            if info.dtype != DType::F32 || info.size != per * 4 {
                return Err(CompileError::Calibration(format!(
                    "the samples of '{name}' have {per} values each; the model's input takes {} of {}",
                    info.size / info.dtype.size().max(1),
                    info.dtype.name()
                )));
            }
            feed.push(a.iter().copied().collect::<Vec<f32>>());
        }
        Ok(HostRun {
            blob,
            arena,
            feed,
            samples: n,
        })
    }

    /// Runs sample `s` and hands the model and interpreter to `look`.
    pub(super) fn run<T>(
        &mut self,
        s: usize,
        look: impl FnOnce(&Model<'_>, &Interpreter<'_, '_>) -> Result<T>,
    ) -> Result<T> {
        let model = Model::load(self.blob.bytes()).map_err(internal)?;
        let mut interp = Interpreter::new(&model, self.arena.bytes_mut()).map_err(internal)?;
        for (i, x) in self.feed.iter().enumerate() {
            let per = x.len() / self.samples.max(1);
            interp
                .input_mut(i)
                .and_then(|mut t| t.copy_from(&x[s * per..(s + 1) * per]))
                .map_err(internal)?;
        }
        interp
            .invoke()
            .map_err(|e| CompileError::Calibration(format!("sample {s}: {e}")))?;
        look(&model, &interp)
    }
}

/// Compiles `onnx` for the host and runs it `passes` times over the
/// calibration samples, calling `each(pass, sample, model, interpreter)`
/// after every invoke.
pub(super) fn run_samples(
    onnx: &[u8],
    cal: &Calibration,
    passes: usize,
    progress: impl Fn(usize, usize),
    mut each: impl FnMut(usize, usize, &Model<'_>, &Interpreter<'_, '_>) -> Result<()>,
) -> Result<()> {
    let mut host = HostRun::new(onnx, cal)?;
    let n = cal.samples();
    for pass in 0..passes {
        for s in 0..n {
            progress(pass * n + s, passes * n);
            host.run(s, |m, i| each(pass, s, m, i))?;
        }
    }
    progress(passes * n, passes * n);
    Ok(())
}

/// SQNR in dB of each tensor of the QDQ model `q` against the float
/// model `float` on the calibration samples: `pairs` names, for each
/// tensor, its name in `float` and the name of its dequantized value in
/// `q`; both models get those as their graph outputs.
pub(super) fn tensor_sqnr(
    float: &ModelProto,
    q: &ModelProto,
    pairs: &[(String, String)],
    cal: &Calibration,
) -> Result<Vec<f64>> {
    let (fo, qo): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
    let mut fr = HostRun::new(&with_outputs(float, &fo)?, cal)?;
    let mut qr = HostRun::new(&with_outputs(q, &qo)?, cal)?;
    let mut acc = vec![(0f64, 0f64); pairs.len()];
    let values = |m: &Model<'_>, i: &Interpreter<'_, '_>| -> Result<Vec<Vec<f32>>> {
        (0..m.num_outputs())
            .map(|o| {
                Ok(match i.output(o).and_then(|v| v.as_f32()) {
                    Ok(v) => v.to_vec(),
                    Err(_) => Vec::new(),
                })
            })
            .collect()
    };
    for s in 0..cal.samples() {
        let want = fr.run(s, values)?;
        let got = qr.run(s, values)?;
        for ((w, g), (sig, noise)) in want.iter().zip(&got).zip(acc.iter_mut()) {
            for (&w, &g) in w.iter().zip(g) {
                *sig += w as f64 * w as f64;
                *noise += (g as f64 - w as f64).powi(2);
            }
        }
    }
    Ok(acc
        .into_iter()
        .map(|(s, n)| 10.0 * (s.max(f64::MIN_POSITIVE) / n.max(f64::MIN_POSITIVE)).log10())
        .collect())
}

/// `model` with `names` (and nothing else) as its graph outputs, encoded.
fn with_outputs(model: &ModelProto, names: &[String]) -> Result<Vec<u8>> {
    let mut m = model.clone();
    let g: &mut GraphProto = m
        .graph
        .as_mut()
        .ok_or_else(|| CompileError::Malformed("the model has no graph".into()))?;
    g.output = names
        .iter()
        .map(|n| ValueInfoProto {
            name: n.clone(),
            ..Default::default()
        })
        .collect();
    Ok(m.encode_to_vec())
}

/// The graph's runtime inputs (inputs that are not initializers).
pub(super) fn model_inputs(g: &GraphProto) -> Vec<String> {
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    g.input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .map(|i| i.name.clone())
        .collect()
}
