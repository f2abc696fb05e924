//! Ember's own post-training quantization of float models: calibrated on
//! the first half of the MLPerf Tiny test vectors, scored on the second
//! half against onnxruntime's float outputs; bad calibration data refused
//! by name. (All five models and every range method, with TFLite's and
//! onnxruntime's quantization beside them, are in the `quantization`
//! bench.)

use ember_compiler::quantize::{quantize, Calibration, QuantizeOptions, RangeMethod};
use ember_compiler::{AlignedBlob, CompileError};
use ember_runtime::{DType, Model};
use ember_tests::float_inputs;
use ember_tests::mlperf;
use ember_tests::quantization::{score, score_with};
use ndarray::{ArrayD, Axis, IxDyn, Slice};

/// Every op between the input's Quantize and the output's Dequantize runs
/// an integer kernel (the same kernels as the converters' int8 models).
fn assert_integer_between_the_ends(onnx: &[u8]) {
    let c = ember_compiler::compile(onnx, &Default::default()).expect("compiles");
    let blob = AlignedBlob::new(&c.blob);
    let m = Model::load(blob.bytes()).unwrap();
    let n = m.num_ops();
    for i in 0..n {
        let op = m.op(i as u32).unwrap();
        let out = m.tensor(op.output).unwrap();
        let name = format!("{:?}", op.opcode);
        if i == n - 1 {
            assert_eq!(name, "Dequantize");
        } else if i == 0 {
            assert_eq!(name, "Quantize");
        } else {
            assert_eq!(
                out.dtype,
                DType::I8,
                "op {i} ({name}) computes in {:?}",
                out.dtype
            );
        }
    }
}

#[test]
fn kws_from_float_beats_tflite_and_matches_onnxruntime() {
    let s = score("kws", "kws_float32.onnx", RangeMethod::Auto);
    eprintln!("kws: {:.1} dB, top-1 {:.2}", s.sqnr, s.top1);
    // TFLite's int8 model: 8.9 dB / 0.81; onnxruntime's quantize_static at
    // its best: 29.5 dB / 1.00.
    assert!(s.sqnr >= 29.5, "kws SQNR {:.1} dB", s.sqnr);
    assert_eq!(s.top1, 1.0);
    // 25 samples: enough to correct the biases with.
    let r = &s.quantized.report;
    assert!(r.bias_corrected);
    // Per activation, the error against float on the calibration samples:
    // the output's is the model's.
    let out = r.tensors.iter().find(|t| t.name == "dense").unwrap();
    assert!(
        (out.sqnr - r.calibration_sqnr).abs() < 1e-6,
        "{} vs {}",
        out.sqnr,
        r.calibration_sqnr
    );
    assert!(r.tensors.iter().all(|t| t.sqnr > 20.0), "{:?}", r.tensors);
    assert!(r.top1_agreement >= 0.9);
    assert_eq!(s.quantized.report.weights.len(), 10);
    assert_integer_between_the_ends(&s.quantized.onnx);
}

#[test]
fn ad_from_float_beats_both_converters() {
    let s = score("ad", "ad_float32.onnx", RangeMethod::Auto);
    eprintln!("ad: {:.1} dB", s.sqnr);
    // TFLite 30.8 dB, onnxruntime at its best 36.0 dB.
    assert!(s.sqnr >= 40.0, "ad SQNR {:.1} dB", s.sqnr);
    // Each dense layer's batch norm (exported as Mul + Add) is folded.
    assert_eq!(s.quantized.report.folded, 18);
    assert!(
        s.quantized.report.float_nodes.is_empty(),
        "{:?}",
        s.quantized.report.float_nodes
    );
    assert_integer_between_the_ends(&s.quantized.onnx);
}

#[test]
fn dense_weights_per_tensor_by_default_per_channel_on_request() {
    let per_tensor = score("ad", "ad_float32.onnx", RangeMethod::Auto);
    assert!(per_tensor
        .quantized
        .report
        .weights
        .iter()
        .all(|w| w.channels == 1));
    let per_channel = score_with(
        "ad",
        "ad_float32.onnx",
        &QuantizeOptions {
            per_channel_dense: true,
            ..Default::default()
        },
    );
    let r = &per_channel.quantized.report;
    assert!(r.weights.iter().all(|w| w.channels > 1), "{:?}", r.weights);
    eprintln!("ad per-channel dense: {:.1} dB", per_channel.sqnr);
    assert!(per_channel.sqnr >= 44.0, "{:.1} dB", per_channel.sqnr);
    // Convolutions stay per channel.
    let kws = score("kws", "kws_float32.onnx", RangeMethod::Auto);
    let conv = kws
        .quantized
        .report
        .weights
        .iter()
        .filter(|w| w.channels > 1)
        .count();
    assert_eq!(conv, 9);
}

#[test]
fn every_range_method_gives_a_working_model() {
    for (name, method) in RangeMethod::ALL {
        let s = score("ad", "ad_float32.onnx", method);
        eprintln!("ad {name}: {:.1} dB", s.sqnr);
        assert!(s.sqnr >= 25.0, "{name}: {:.1} dB", s.sqnr);
        assert_eq!(
            s.quantized.report.method,
            if method == RangeMethod::Auto {
                RangeMethod::Mse
            } else {
                method
            }
        );
    }
}

fn err(r: Result<impl std::fmt::Debug, CompileError>) -> String {
    let e = r.expect_err("should fail").to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn bad_calibration_data_is_refused_by_name() {
    let onnx = std::fs::read(mlperf("ad", "ad_float32.onnx")).unwrap();
    let x = float_inputs("ad");
    let rows = |n: usize| x.slice_axis(Axis(0), Slice::from(..n)).to_owned();
    let q = |c: Calibration| quantize(&onnx, &c, &QuantizeOptions::default()).map(|_| ());

    let e = err(Calibration::new(vec![]));
    assert!(e.contains("no samples"), "{e}");
    let e = err(Calibration::new(vec![(String::new(), rows(0))]));
    assert!(e.contains("holds no samples"), "{e}");
    let e = err(Calibration::new(vec![(
        String::new(),
        ArrayD::from_elem(IxDyn(&[]), 1.0),
    )]));
    assert!(e.contains("scalar"), "{e}");
    let mut nan = rows(4);
    nan[[2, 7]] = f32::NAN;
    let e = err(Calibration::new(vec![(String::new(), nan)]));
    assert!(e.contains("NaN in sample 2"), "{e}");
    let e = err(Calibration::new(vec![
        ("a".into(), rows(3)),
        ("b".into(), rows(4)),
    ]));
    assert!(e.contains("'b' holds 4 samples and 'a' 3"), "{e}");

    // The wrong shape: 320 values a sample for an input of 640.
    let half = rows(4).into_shape_with_order(IxDyn(&[8, 320])).unwrap();
    let e = err(q(Calibration::new(vec![(String::new(), half)]).unwrap()));
    assert!(e.contains("640"), "{e}");
    let e = err(q(Calibration::new(vec![("mfcc".into(), rows(4))]).unwrap()));
    assert!(
        e.contains("no samples for the model's input 'input'"),
        "{e}"
    );

    // Constant samples: every activation has a zero range somewhere; no
    // division by zero, a model that runs.
    let zeros = ArrayD::zeros(IxDyn(&[3, 640]));
    let out = quantize(
        &onnx,
        &Calibration::new(vec![(String::new(), zeros)]).unwrap(),
        &QuantizeOptions::default(),
    )
    .unwrap();
    assert_integer_between_the_ends(&out.onnx);
    // Three samples are too few to correct biases with.
    assert!(!out.report.bias_corrected);
    // An SQNR target that is not a positive number of dB.
    for t in [f64::NAN, -3.0, f64::INFINITY] {
        let zeros = ArrayD::zeros(IxDyn(&[3, 640]));
        let r = quantize(
            &onnx,
            &Calibration::new(vec![(String::new(), zeros)]).unwrap(),
            &QuantizeOptions {
                sqnr_target: Some(t),
                ..Default::default()
            },
        );
        assert!(err(r).contains("must be a positive number"));
    }
}

#[test]
fn int8_io_drops_the_conversions_at_the_edges() {
    let onnx = std::fs::read(mlperf("kws", "kws_float32.onnx")).unwrap();
    let x = float_inputs("kws");
    let cal = Calibration::new(vec![(
        String::new(),
        x.slice_axis(Axis(0), Slice::from(..25)).to_owned(),
    )])
    .unwrap();
    let blob = |int8_io: bool| {
        let opts = QuantizeOptions {
            int8_io,
            ..Default::default()
        };
        let q = quantize(&onnx, &cal, &opts).unwrap();
        AlignedBlob::new(
            &ember_compiler::compile(&q.onnx, &Default::default())
                .unwrap()
                .blob,
        )
    };
    let (float_io, int8_io) = (blob(false), blob(true));
    let fm = Model::load(float_io.bytes()).unwrap();
    let im = Model::load(int8_io.bytes()).unwrap();
    assert_eq!(im.num_ops(), fm.num_ops() - 2);
    let (qi, qo) = (im.input_info(0).unwrap(), im.output_info(0).unwrap());
    assert_eq!((qi.dtype, qo.dtype), (DType::I8, DType::I8));
    let (iq, oq) = (qi.quant.unwrap(), qo.quant.unwrap());
    // The same answers: the float model's input quantized on the host, the
    // int8 output dequantized, within one output step of the float I/O
    // model on every row.
    let rows = x.shape()[0];
    let per = x.len() / rows;
    let flat: Vec<f32> = x.iter().copied().collect();
    let x8: Vec<i8> = flat
        .iter()
        .map(|&v| ((v / iq.scale).round() + iq.zero_point as f32).clamp(-128.0, 127.0) as i8)
        .collect();
    let a = ndarray::ArrayD::from_shape_vec(IxDyn(&[rows, per]), flat).unwrap();
    let b = ndarray::ArrayD::from_shape_vec(IxDyn(&[rows, per]), x8).unwrap();
    let want: Vec<Vec<f32>> = ember_tests::run_rows(&float_io, &a);
    let got: Vec<Vec<i8>> = ember_tests::run_rows(&int8_io, &b);
    for (r, (w, g)) in want.iter().zip(&got).enumerate() {
        for (&w, &g) in w.iter().zip(g) {
            let g = (g as i32 - oq.zero_point) as f32 * oq.scale;
            assert!((g - w).abs() <= oq.scale + 1e-6, "row {r}: {g} vs {w}");
        }
    }
}

/// `--quantize mixed`: below the target the sweep leaves the fewest
/// multiply-accumulates in float that reach it (on the calibration half),
/// the model gets closer to float on the unseen half too, and the rest
/// stays int8; a target int8 already meets changes nothing.
#[test]
fn mixed_precision_reaches_its_target_with_layers_left_in_float() {
    let int8 = score("ad", "ad_float32.onnx", RangeMethod::Auto);
    let r8 = &int8.quantized.report;
    let target = r8.calibration_sqnr + 6.0;
    let mixed = score_with(
        "ad",
        "ad_float32.onnx",
        &QuantizeOptions {
            sqnr_target: Some(target),
            ..Default::default()
        },
    );
    let r = &mixed.quantized.report;
    let m = r.mixed.as_ref().expect("a mixed-precision report");
    eprintln!(
        "ad mixed for {target:.1} dB: int8 {:.1} dB (eval {:.1}), mixed {:.1} dB (eval {:.1}), float: {:?}",
        m.int8_sqnr,
        int8.sqnr,
        r.calibration_sqnr,
        mixed.sqnr,
        m.float
            .iter()
            .map(|f| (&f.nodes, f.macs, f.sqnr))
            .collect::<Vec<_>>()
    );
    assert!((m.int8_sqnr - r8.calibration_sqnr).abs() < 0.01);
    assert!(!m.float.is_empty());
    assert!(r.calibration_sqnr >= target, "{:.1} dB", r.calibration_sqnr);
    assert!(mixed.sqnr > int8.sqnr + 3.0, "{:.1} dB", mixed.sqnr);
    // Part of the model is still int8, and fewer MACs are float than int8.
    let float_macs: u64 = m.float.iter().map(|f| f.macs).sum();
    assert!(!r.weights.is_empty() && r.weights.len() < r8.weights.len());
    assert!(r.float_nodes.len() > r8.float_nodes.len());
    assert!(float_macs > 0);
    // Already met: the int8 model, unchanged.
    let easy = score_with(
        "ad",
        "ad_float32.onnx",
        &QuantizeOptions {
            sqnr_target: Some(r8.calibration_sqnr - 1.0),
            ..Default::default()
        },
    );
    let e = easy.quantized.report.mixed.as_ref().unwrap();
    assert!(e.float.is_empty());
    assert_eq!(easy.quantized.onnx, int8.quantized.onnx);
}
