//! Scoring Ember's own quantization of the MLPerf Tiny float models: the
//! float test vectors split in two halves, the first calibrates, the second
//! is scored against onnxruntime's float output (SQNR in dB and the share
//! of rows whose top class agrees).

use ember_compiler::quantize::{quantize, Calibration, QuantizeOptions, Quantized, RangeMethod};
use ember_compiler::AlignedBlob;
use ndarray::{ArrayD, Axis, Slice};

use crate::{argmax, float_inputs, mlperf, run_rows, vectors};

/// Signal-to-quantization-noise ratio of `got` against `want`, in dB.
pub fn sqnr(got: &[f32], want: &[f32]) -> f64 {
    let signal: f64 = want.iter().map(|&w| (w as f64).powi(2)).sum();
    let noise: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w as f64).powi(2))
        .sum();
    10.0 * (signal / noise.max(f64::MIN_POSITIVE)).log10()
}

/// A quantized model's score on the second half of the test vectors.
#[derive(Clone, Debug)]
pub struct Score {
    /// The quantized model.
    pub quantized: Quantized,
    /// SQNR in dB against the float model.
    pub sqnr: f64,
    /// Share of rows whose top class is the float model's.
    pub top1: f64,
    /// Rows scored.
    pub rows: usize,
}

/// Quantizes `<model>_float32.onnx` (or `file`) with `method`, calibrated on
/// the first half of its test vectors, and scores it on the second half.
pub fn score(model: &str, file: &str, method: RangeMethod) -> Score {
    score_with(
        model,
        file,
        &QuantizeOptions {
            method,
            ..Default::default()
        },
    )
}

/// [`score`] with any quantization options.
pub fn score_with(model: &str, file: &str, opts: &QuantizeOptions) -> Score {
    let x = float_inputs(model);
    let n = x.shape()[0];
    let half = n / 2;
    let cal = x.slice_axis(Axis(0), Slice::from(..half)).to_owned();
    let eval = x.slice_axis(Axis(0), Slice::from(half..)).to_owned();
    let onnx = std::fs::read(mlperf(model, file)).expect("float model");
    let cal = Calibration::new(vec![(String::new(), cal)]).expect("calibration");
    let q = quantize(&onnx, &cal, opts).unwrap_or_else(|e| panic!("quantizing {model}: {e}"));
    let c = ember_compiler::compile(&q.onnx, &Default::default())
        .unwrap_or_else(|e| panic!("compiling quantized {model}: {e}"));
    let blob = AlignedBlob::new(&c.blob);
    let got: Vec<Vec<f32>> = run_rows(&blob, &eval);
    let want: ArrayD<f32> = vectors(model, "float_onnx_out");
    let want = want.slice_axis(Axis(0), Slice::from(half..)).to_owned();
    let want_rows: Vec<Vec<f32>> = want
        .axis_iter(Axis(0))
        .map(|r| r.iter().copied().collect())
        .collect();
    let agree = got
        .iter()
        .zip(&want_rows)
        .filter(|(g, w)| argmax(g) == argmax(w))
        .count();
    let flat_got: Vec<f32> = got.concat();
    let flat_want: Vec<f32> = want_rows.concat();
    Score {
        quantized: q,
        sqnr: sqnr(&flat_got, &flat_want),
        top1: agree as f64 / got.len() as f64,
        rows: got.len(),
    }
}
