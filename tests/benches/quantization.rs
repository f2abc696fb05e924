//! `cargo bench -p ember-tests --bench quantization`: Ember's quantization
//! of the five MLPerf Tiny float models with every range method,
//! calibrated on the first half of each model's float test vectors and
//! scored on the second half (SQNR against onnxruntime's float output, and
//! top-1 agreement), beside TFLite's int8 model on the same rows; then
//! mixed precision at targets above what int8 gives. Every quantized model
//! is written to `target/quantization/` for `cargo xtask bench --model`.

use ember_compiler::quantize::{QuantizeOptions, RangeMethod};
use ember_tests::quantization::{score, score_with, sqnr, Score};
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
    println!();
    println!("| model | SQNR target (calibration half) | SQNR / top-1 (evaluation half) | layers left in float | float MACs |");
    println!("|---|---|---|---|---|");
    for m in ["kws", "vww", "ic", "ad", "sww"] {
        let file = format!("{m}_float32.onnx");
        let int8 = score(m, &file, RangeMethod::Auto);
        save(m, "int8", &int8);
        let base = int8.quantized.report.calibration_sqnr;
        println!(
            "| {m} | int8: {base:.1} dB | {:.1} dB / {:.2} | 0 | 0 |",
            int8.sqnr, int8.top1
        );
        for extra in [3.0, 6.0] {
            let target = (base + extra).round();
            let s = score_with(
                m,
                &file,
                &QuantizeOptions {
                    sqnr_target: Some(target),
                    ..Default::default()
                },
            );
            save(m, &format!("mixed{target:.0}"), &s);
            let mixed = s.quantized.report.mixed.as_ref().expect("mixed report");
            let nodes: usize = mixed.float.iter().map(|f| f.nodes.len()).sum();
            let macs: u64 = mixed.float.iter().map(|f| f.macs).sum();
            println!(
                "| {m} | {target:.0} dB: {:.1} dB | {:.1} dB / {:.2} | {nodes} | {macs} |",
                s.quantized.report.calibration_sqnr, s.sqnr, s.top1
            );
        }
    }
}

/// Writes the quantized model to `target/quantization/<model>_<what>.onnx`.
fn save(model: &str, what: &str, s: &Score) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/quantization");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{model}_{what}.onnx")), &s.quantized.onnx);
}
