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
    /// Values per sample.
    pub(super) len: usize,
}

impl Stats {
    /// The value at the centre of bin `i`.
    pub(super) fn center(&self, i: usize) -> f64 {
        let w = (self.max as f64 - self.min as f64) / BINS as f64;
        self.min as f64 + (i as f64 + 0.5) * w
    }
}

/// The statistics of every tensor in `names` and the names of those that
/// are not float (left out of quantization).
pub(super) fn observe(
    model: &ModelProto,
    names: &[String],
    channel_axes: &HashMap<String, usize>,
    cal: &Calibration,
    opts: &QuantizeOptions,
) -> Result<Observed> {
    let m = with_outputs(model, names)?;
    let mut stats: Vec<Stats> = Vec::new();
    let mut float = Vec::new();
    // Per-channel sums and counts of the tensors in `channel_axes`.
    let mut sums: HashMap<usize, (Vec<f64>, u64)> = HashMap::new();
    let progress = |done: usize, total: usize| {
        if let Some(p) = &opts.progress {
            (p.0)("calibrating", done as u64, total as u64);
        }
    };
    run_samples(&m, cal, 2, progress, |pass, s, sess| {
        let (model, interp) = (sess.model, &sess.interp);
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
                    len: 0,
                };
                names.len()
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
                st.len = v.len();
                for &x in v {
                    if !x.is_finite() {
                        return Err(CompileError::Calibration(format!(
                            "sample {s} makes '{}' {x}",
                            names[o]
                        )));
                    }
                    st.min = st.min.min(x);
                    st.max = st.max.max(x);
                }
                if let Some(&axis) = channel_axes.get(&names[o]) {
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
        Ok(())
    })?;
    let mut out = Observed::default();
    for (o, st) in stats.into_iter().enumerate() {
        if float[o] {
            out.stats.insert(names[o].clone(), st);
        } else {
            out.not_float.insert(names[o].clone());
        }
    }
    for (o, (sum, count)) in sums {
        let mean = sum.iter().map(|s| s / count.max(1) as f64).collect();
        out.channels.insert(names[o].clone(), ChannelStats { mean });
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
struct HostRun {
    blob: AlignedBlob,
    arena: AlignedBlob,
    feed: Vec<Vec<f32>>,
    samples: usize,
}

/// A [`HostRun`]'s model loaded and bound to its arena, once for all the
/// samples it runs.
struct Session<'m, 'a> {
    /// The model.
    model: &'m Model<'m>,
    /// Its interpreter, holding the last sample's values.
    interp: Interpreter<'m, 'a>,
    feed: &'m [Vec<f32>],
    samples: usize,
}

impl Session<'_, '_> {
    /// Runs sample `s`.
    fn run(&mut self, s: usize) -> Result<()> {
        for (i, x) in self.feed.iter().enumerate() {
            let per = x.len() / self.samples.max(1);
            self.interp
                .input_mut(i)
                .and_then(|mut t| t.copy_from(&x[s * per..(s + 1) * per]))
                .map_err(internal)?;
        }
        self.interp
            .invoke()
            .map_err(|e| CompileError::Calibration(format!("sample {s}: {e}")))
    }

    /// Each output's values after the last run (empty for a non-float
    /// output).
    fn float_outputs(&self) -> Vec<&[f32]> {
        (0..self.model.num_outputs())
            .map(|o| {
                self.interp
                    .output(o)
                    .and_then(|v| v.as_f32())
                    .unwrap_or(&[])
            })
            .collect()
    }
}

impl HostRun {
    /// Compiles `onnx` (inputs shaped like one sample of `cal`) and checks
    /// the samples against its inputs.
    fn new(onnx: &[u8], cal: &Calibration) -> Result<Self> {
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

    /// Loads the model and binds its arena once, and hands the session to
    /// `work`.
    fn session<T>(&mut self, work: impl FnOnce(&mut Session<'_, '_>) -> Result<T>) -> Result<T> {
        let model = Model::load(self.blob.bytes()).map_err(internal)?;
        let interp = Interpreter::new(&model, self.arena.bytes_mut()).map_err(internal)?;
        work(&mut Session {
            model: &model,
            interp,
            feed: &self.feed,
            samples: self.samples,
        })
    }
}

/// Compiles `onnx` for the host and runs it `passes` times over the
/// calibration samples, calling `each(pass, sample, session)` after every
/// invoke.
fn run_samples(
    onnx: &[u8],
    cal: &Calibration,
    passes: usize,
    progress: impl Fn(usize, usize),
    mut each: impl FnMut(usize, usize, &Session<'_, '_>) -> Result<()>,
) -> Result<()> {
    let n = cal.samples();
    HostRun::new(onnx, cal)?.session(|sess| {
        for pass in 0..passes {
            for s in 0..n {
                progress(pass * n + s, passes * n);
                sess.run(s)?;
                each(pass, s, sess)?;
            }
        }
        progress(passes * n, passes * n);
        Ok(())
    })
}

/// How close one tensor of a quantized model is to the float model's.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Closeness {
    /// Σ float² over the samples.
    pub(super) signal: f64,
    /// Σ (quantized − float)².
    pub(super) noise: f64,
    /// Samples whose largest value is where the float model's is.
    pub(super) same_argmax: usize,
}

impl Closeness {
    /// The SQNR in dB.
    pub(super) fn sqnr(&self) -> f64 {
        sqnr_db(self.signal, self.noise)
    }
}

/// `10 log10(signal / noise)`, finite for zero signal or noise.
pub(super) fn sqnr_db(signal: f64, noise: f64) -> f64 {
    10.0 * (signal.max(f64::MIN_POSITIVE) / noise.max(f64::MIN_POSITIVE)).log10()
}

/// The float model's outputs on every calibration sample, kept to score
/// quantized variants of it against (the mixed-precision sweep scores
/// dozens).
pub(super) struct Reference {
    names: Vec<String>,
    /// Per sample, per output.
    outputs: Vec<Vec<Vec<f32>>>,
}

impl Reference {
    /// Runs `float` on the samples.
    pub(super) fn new(float: &ModelProto, cal: &Calibration) -> Result<Self> {
        let names: Vec<String> = float
            .graph
            .as_ref()
            .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
            .unwrap_or_default();
        let mut outputs = Vec::with_capacity(cal.samples());
        run_samples(
            &with_outputs(float, &names)?,
            cal,
            1,
            |_, _| {},
            |_, _, sess| {
                outputs.push(sess.float_outputs().iter().map(|v| v.to_vec()).collect());
                Ok(())
            },
        )?;
        Ok(Reference { names, outputs })
    }

    /// The outputs of `q` (a quantized variant with the same graph
    /// outputs), all of them together, against the float model's.
    pub(super) fn score(&self, q: &ModelProto, cal: &Calibration) -> Result<Closeness> {
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut c = Closeness::default();
        run_samples(
            &with_outputs(q, &self.names)?,
            cal,
            1,
            |_, _| {},
            |_, s, sess| {
                let want = self.outputs.get(s).map_or(&[][..], Vec::as_slice);
                let got = sess.float_outputs();
                for (w, g) in want.iter().zip(&got) {
                    for (&w, &g) in w.iter().zip(g.iter()) {
                        c.signal += w as f64 * w as f64;
                        c.noise += (g as f64 - w as f64).powi(2);
                    }
                }
                if let (Some(w), Some(g)) = (want.first(), got.first()) {
                    if !w.is_empty() && argmax(w) == argmax(g) {
                        c.same_argmax += 1;
                    }
                }
                Ok(())
            },
        )?;
        Ok(c)
    }
}

/// Each tensor of the QDQ model `q` against the float model `float` on the
/// calibration samples, both run side by side: `pairs` names, for each
/// tensor, its name in `float` and the name of its dequantized value in
/// `q`; both models get those as their graph outputs.
pub(super) fn compare(
    float: &ModelProto,
    q: &ModelProto,
    pairs: &[(String, String)],
    cal: &Calibration,
) -> Result<Vec<Closeness>> {
    let (fo, qo): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
    let mut fr = HostRun::new(&with_outputs(float, &fo)?, cal)?;
    let mut qr = HostRun::new(&with_outputs(q, &qo)?, cal)?;
    let mut acc = vec![Closeness::default(); pairs.len()];
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b]));
    fr.session(|f| {
        qr.session(|q| {
            for s in 0..cal.samples() {
                f.run(s)?;
                q.run(s)?;
                let (want, got) = (f.float_outputs(), q.float_outputs());
                for ((w, g), c) in want.iter().zip(&got).zip(acc.iter_mut()) {
                    for (&w, &g) in w.iter().zip(g.iter()) {
                        c.signal += w as f64 * w as f64;
                        c.noise += (g as f64 - w as f64).powi(2);
                    }
                    if !w.is_empty() && argmax(w) == argmax(g) {
                        c.same_argmax += 1;
                    }
                }
            }
            Ok(())
        })
    })?;
    Ok(acc)
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
