//! The int8 QDQ MLPerf Tiny models (converted from TFLite) must reproduce
//! TFLite's reference kernels bit for bit, on every reference row.

use ember_tests::{compile, mlperf, run_rows, vectors};
use ndarray::{ArrayD, IxDyn};

fn check(model: &str, file: &str, input_key: &str) {
    let blob = compile(&mlperf(model, file));
    let x: ArrayD<i8> = vectors(model, input_key);
    let want: ArrayD<i8> = vectors(model, "int8_tflite_ref_out");
    let got: Vec<Vec<i8>> = run_rows(&blob, &x);
    assert_eq!(got.len(), want.shape()[0]);
    let mut bad = vec![];
    for (r, out) in got.iter().enumerate() {
        let w: Vec<i8> = want
            .index_axis(ndarray::Axis(0), r)
            .iter()
            .copied()
            .collect();
        if *out != w {
            bad.push(format!("row {r}: got {out:?}, want {w:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{model}: {} of {} rows differ:\n{}",
        bad.len(),
        got.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn kws_int8_bit_exact_with_tflite_reference() {
    check("kws", "kws_int8_qdq.onnx", "mfcc_int8");
}

#[test]
fn vww_int8_bit_exact_with_tflite_reference() {
    check("vww", "vww_int8_qdq.onnx", "input_int8");
}

#[test]
fn ic_int8_bit_exact_with_tflite_reference() {
    check("ic", "ic_int8_qdq.onnx", "input_int8");
}

#[test]
fn ad_int8_bit_exact_with_tflite_reference() {
    check("ad", "ad_int8_qdq.onnx", "input_int8");
}

/// sww: the vectors hold 311 feature frames; the model sees every window of
/// 30 consecutive frames.
#[test]
fn sww_int8_bit_exact_with_tflite_reference_on_every_window() {
    let blob = compile(&mlperf("sww", "sww_int8_qdq.onnx"));
    let frames: ArrayD<i8> = vectors("sww", "lfbe_int8");
    let want: ArrayD<i8> = vectors("sww", "int8_tflite_ref_out");
    let n_win = want.shape()[0];
    let flat: Vec<i8> = frames.iter().copied().collect();
    let mut windows = Vec::with_capacity(n_win * 30 * 40);
    for w in 0..n_win {
        windows.extend_from_slice(&flat[w * 40..(w + 30) * 40]);
    }
    let x = ArrayD::from_shape_vec(IxDyn(&[n_win, 30, 1, 40]), windows).unwrap();
    let got: Vec<Vec<i8>> = run_rows(&blob, &x);
    let mut bad = 0;
    for (r, out) in got.iter().enumerate() {
        let w: Vec<i8> = want
            .index_axis(ndarray::Axis(0), r)
            .iter()
            .copied()
            .collect();
        if *out != w {
            if bad < 5 {
                eprintln!("window {r}: got {out:?}, want {w:?}");
            }
            bad += 1;
        }
    }
    assert_eq!(bad, 0, "sww: {bad} of {n_win} windows differ");
}
