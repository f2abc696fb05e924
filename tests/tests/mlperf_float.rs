//! Float models against onnxruntime, and onnxruntime-quantized models
//! (float I/O) against onnxruntime's own outputs.

use ember_tests::{argmax, compile, float_inputs, mlperf, run_rows, vectors};
use ndarray::{ArrayD, Axis};

fn check_float(model: &str, file: &str) {
    let blob = compile(&mlperf(model, file));
    let x = float_inputs(model);
    let want: ArrayD<f32> = vectors(model, "float_onnx_out");
    let got: Vec<Vec<f32>> = run_rows(&blob, &x);
    let lo = want.iter().cloned().fold(f32::INFINITY, f32::min);
    let hi = want.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let tol = 1e-4 * (hi - lo).max(f32::MIN_POSITIVE);
    let mut worst = 0f32;
    for (r, out) in got.iter().enumerate() {
        for (a, b) in out.iter().zip(want.index_axis(Axis(0), r).iter()) {
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!(
        "{model} float: max abs error {worst:e} (tolerance {tol:e}, output range {})",
        hi - lo
    );
    assert!(worst <= tol, "{model}: max abs error {worst} > {tol}");
}

#[test]
fn kws_float_matches_onnxruntime() {
    check_float("kws", "kws_float32.onnx");
}

#[test]
fn vww_float_matches_onnxruntime() {
    check_float("vww", "vww_float32.onnx");
}

#[test]
fn ic_float_matches_onnxruntime() {
    check_float("ic", "ic_float32.onnx");
}

#[test]
fn ad_float_matches_onnxruntime() {
    check_float("ad", "ad_float32.onnx");
}

#[test]
fn sww_float_matches_onnxruntime() {
    check_float("sww", "sww_float32.onnx");
}

fn check_ort(model: &str, file: &str, out_scale: f32) {
    let blob = compile(&mlperf(model, file));
    let x = float_inputs(model);
    let want: ArrayD<f32> = vectors(model, "int8_ort_qdq_onnx_out");
    let got: Vec<Vec<f32>> = run_rows(&blob, &x);
    let mut worst = 0f32;
    for (r, out) in got.iter().enumerate() {
        let w: Vec<f32> = want.index_axis(Axis(0), r).iter().copied().collect();
        assert_eq!(
            argmax(out),
            argmax(&w),
            "{model} row {r}: argmax differs: {out:?} vs {w:?}"
        );
        for (a, b) in out.iter().zip(&w) {
            worst = worst.max((a - b).abs());
        }
    }
    let steps = worst / out_scale;
    eprintln!("{model} ort int8: max difference {steps} output steps");
    assert!(
        steps <= 2.0 + 1e-3,
        "{model}: {steps} quantization steps apart"
    );
}

#[test]
fn kws_ort_int8_matches_onnxruntime() {
    check_ort("kws", "kws_int8_ort_qdq.onnx", 1.0 / 255.0);
}

#[test]
fn vww_ort_int8_matches_onnxruntime() {
    check_ort("vww", "vww_int8_ort_qdq.onnx", 1.0 / 255.0);
}

#[test]
fn ic_ort_int8_matches_onnxruntime() {
    check_ort("ic", "ic_int8_ort_qdq.onnx", 1.0 / 255.0);
}
