//! `cargo bench -p ember-tests --bench quantization`: Ember's quantization
//! of the five MLPerf Tiny float models with every range method,
//! calibrated on the first half of each model's float test vectors and
//! scored on the second half (SQNR against onnxruntime's float output, and
//! top-1 agreement), beside TFLite's int8 model on the same rows.

use ember_compiler::quantize::RangeMethod;
use ember_tests::quantization::{score, sqnr};
use ember_tests::{argmax, vectors};
use ndarray::{ArrayD, Axis, Slice};

/// TFLite's int8 model on the second half: its reference-kernel outputs,
/// dequantized with its output quantization.
fn tflite(model: &str) -> (f64, f64) {
    let q: ArrayD<i8> = vectors(model, "int8_tflite_ref_out");
    let f: ArrayD<f32> = vectors(model, "float_onnx_out");
    let half = f.shape()[0] / 2;
    let (scale, zp) = if model == "ad" {
        (0.364_498_5, 96.0)
    } else {
        (1.0 / 256.0, -128.0)
    };
    let q = q
        .slice_axis(Axis(0), Slice::from(half..))
        .mapv(|v| (v as f32 - zp) * scale);
    let f = f.slice_axis(Axis(0), Slice::from(half..)).to_owned();
    let agree = q
        .axis_iter(Axis(0))
        .zip(f.axis_iter(Axis(0)))
        .filter(|(a, b)| {
            let (a, b): (Vec<f32>, Vec<f32>) =
                (a.iter().copied().collect(), b.iter().copied().collect());
            argmax(&a) == argmax(&b)
        })
        .count();
    let qv: Vec<f32> = q.iter().copied().collect();
    let fv: Vec<f32> = f.iter().copied().collect();
    (sqnr(&qv, &fv), agree as f64 / q.shape()[0] as f64)
}

fn main() {
    println!("| model | TFLite int8 | Ember auto | minmax | percentile | mse | entropy |");
    println!("|---|---|---|---|---|---|---|");
    for m in ["kws", "vww", "ic", "ad", "sww"] {
        let (t, t1) = tflite(m);
        let mut row = format!("| {m} | {t:.1} dB / {t1:.2} |");
        for (_, method) in RangeMethod::ALL {
            let s = score(m, &format!("{m}_float32.onnx"), method);
            row += &format!(" {:.1} dB / {:.2} |", s.sqnr, s.top1);
        }
        println!("{row}");
    }
}
