//! `--stream`: a model that slides a window over time, compiled into a
//! per-frame model, gives after warm-up the windowed model's output for
//! the window ending at each new frame, bit for bit — the MLPerf Tiny
//! wake-word model on all 282 windows of its test vectors, for every
//! target's kernels — and a layer that cannot be streamed runs on the
//! rebuilt window, named in the report.

use ember_compiler::select::Target;
use ember_compiler::stream::StreamAxis;
use ember_compiler::{aligned_arena, AlignedBlob, Options};
use ember_runtime::{Interpreter, Model};
use ember_tests::onnx::{self as ox, FLOAT};
use ember_tests::{mlperf, vectors};
use ndarray::ArrayD;
use tract_onnx::pb;

fn compile(onnx: &[u8], target: Target, stream: Option<StreamAxis>) -> (AlignedBlob, Options) {
    let opts = Options {
        target,
        stream,
        ..Default::default()
    };
    let c = ember_compiler::compile(onnx, &opts).unwrap_or_else(|e| panic!("{target}: {e}"));
    (AlignedBlob::new(&c.blob), opts)
}

/// Runs `blob` once per row of `rows` (each the input's bytes) and returns
/// each output's bytes.
fn run_rows(blob: &AlignedBlob, rows: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let m = Model::load(blob.bytes()).unwrap();
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    rows.iter()
        .map(|r| {
            it.input_mut(0).unwrap().bytes.copy_from_slice(r);
            it.invoke().unwrap();
            it.output(0).unwrap().bytes.to_vec()
        })
        .collect()
}

#[test]
fn streamed_wake_word_equals_the_windowed_model_on_every_window() {
    let onnx = std::fs::read(mlperf("sww", "sww_int8_qdq.onnx")).unwrap();
    let frames: ArrayD<i8> = vectors("sww", "lfbe_int8");
    let reference: ArrayD<i8> = vectors("sww", "int8_tflite_ref_out");
    let flat: Vec<u8> = frames.iter().map(|&v| v as u8).collect();
    let (n_frames, n_win, win) = (frames.shape()[0], reference.shape()[0], 30);
    assert_eq!(n_frames, n_win + win - 1);
    let windows: Vec<Vec<u8>> = (0..n_win)
        .map(|w| flat[w * 40..(w + win) * 40].to_vec())
        .collect();
    let one_by_one: Vec<Vec<u8>> = flat.chunks(40).map(|c| c.to_vec()).collect();
    for target in [
        Target::Reference,
        Target::Generic,
        Target::CortexM55,
        Target::CortexM4,
        Target::CortexA53,
    ] {
        let (windowed, _) = compile(&onnx, target, None);
        let want = run_rows(&windowed, &windows);
        let (streamed, _) = compile(&onnx, target, Some(StreamAxis::Auto));
        let m = Model::load(streamed.bytes()).unwrap();
        assert_eq!(m.input_info(0).unwrap().dims(), [1, 1, 1, 40]);
        assert!(
            m.total_macs() * 15 < 826_371,
            "{} MACs per frame",
            m.total_macs()
        );
        let got = run_rows(&streamed, &one_by_one);
        for w in 0..n_win {
            assert_eq!(got[w + win - 1], want[w], "{target}: window {w}");
            let r: Vec<u8> = reference
                .index_axis(ndarray::Axis(0), w)
                .iter()
                .map(|&v| v as u8)
                .collect();
            assert_eq!(got[w + win - 1], r, "{target}: window {w} vs TFLite");
        }
    }
}

#[test]
fn the_report_says_what_streams_and_the_float_model_streams_too() {
    let onnx = std::fs::read(mlperf("sww", "sww_float32.onnx")).unwrap();
    let c = ember_compiler::compile(
        &onnx,
        &Options {
            target: Target::Reference,
            stream: Some(StreamAxis::Axis(1)),
            ..Default::default()
        },
    )
    .unwrap();
    let r = c.stream.unwrap();
    assert_eq!((r.axis, r.window), (1, 30));
    assert_eq!(r.per_frame.len(), 7, "{:?}", r.per_frame);
    assert!(r.whole_window.is_empty(), "{:?}", r.whole_window);
    // Ring buffers of 2 × 40, then 4, 9 and 14 frames of 128 floats.
    assert_eq!(r.state_bytes, 4 * (2 * 40 + (4 + 9 + 14) * 128));
    let streamed = AlignedBlob::new(&c.blob);
    let (windowed, _) = compile(&onnx, Target::Reference, None);
    let frames: ArrayD<f32> = vectors("sww", "lfbe_float");
    let bytes: Vec<u8> = frames.iter().flat_map(|v| v.to_le_bytes()).collect();
    let one_by_one: Vec<Vec<u8>> = bytes.chunks(160).map(|c| c.to_vec()).collect();
    let windows: Vec<Vec<u8>> = (0..40)
        .map(|w| bytes[w * 160..(w + 30) * 160].to_vec())
        .collect();
    let got = run_rows(&streamed, &one_by_one[..69]);
    let want = run_rows(&windowed, &windows);
    for w in 0..40 {
        assert_eq!(got[w + 29], want[w], "window {w}");
    }
}

/// A PyTorch-style 1-D CNN, `[1, C, T]`: Conv1d (k 3) → Relu → Conv1d
/// (k 3, dilation 2) → ReduceMean over time → Gemm.
fn conv1d_model(t: i64) -> Vec<u8> {
    let data = |n: usize, seed: u32| -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    };
    let inits = vec![
        ox::floats("w1", &[6, 4, 3], data(72, 1)),
        ox::floats("b1", &[6], data(6, 2)),
        ox::floats("w2", &[6, 6, 3], data(108, 3)),
        ox::floats("b2", &[6], data(6, 4)),
        ox::floats("wd", &[6, 2], data(12, 5)),
        ox::floats("bd", &[2], data(2, 6)),
        ox::integers("axes", ox::INT64, &[1], vec![2]),
    ];
    let nodes = vec![
        ox::node(
            "Conv",
            &["x", "w1", "b1"],
            "c1",
            vec![ox::ints("kernel_shape", &[3])],
        ),
        ox::node("Relu", &["c1"], "r1", vec![]),
        ox::node(
            "Conv",
            &["r1", "w2", "b2"],
            "c2",
            vec![ox::ints("kernel_shape", &[3]), ox::ints("dilations", &[2])],
        ),
        ox::node(
            "ReduceMean",
            &["c2", "axes"],
            "m",
            vec![ox::int("keepdims", 0)],
        ),
        ox::node("Gemm", &["m", "wd", "bd"], "y", vec![]),
    ];
    ox::model(
        pb::GraphProto {
            name: "c1d".into(),
            node: nodes,
            input: vec![ox::value("x", FLOAT, &[1, 4, t])],
            output: vec![ox::value("y", FLOAT, &[1, 2])],
            initializer: inits,
            ..Default::default()
        },
        18,
    )
}

#[test]
fn a_layer_that_cannot_stream_runs_on_the_rebuilt_window() {
    const T: usize = 12;
    let onnx = conv1d_model(T as i64);
    // [1, C, T]: both axes could be time.
    let e = ember_compiler::compile(
        &onnx,
        &Options {
            stream: Some(StreamAxis::Axis(1)),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("nothing streams along axis 1 of input 'x'"),
        "{e}"
    );
    let e = ember_compiler::compile(
        &onnx,
        &Options {
            stream: Some(StreamAxis::Auto),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("cannot tell the time axis of input 'x' [1, 4, 12]: pass --stream-axis N"),
        "{e}"
    );
    let c = ember_compiler::compile(
        &onnx,
        &Options {
            target: Target::Reference,
            stream: Some(StreamAxis::Axis(2)),
            ..Default::default()
        },
    )
    .unwrap();
    let r = c.stream.unwrap();
    assert_eq!(r.window, T);
    assert_eq!(r.whole_window.len(), 1, "{r:?}");
    assert!(
        r.whole_window[0].1.contains("mixes positions along time"),
        "{r:?}"
    );
    let streamed = AlignedBlob::new(&c.blob);
    let (windowed, _) = compile(&onnx, Target::Reference, None);
    // Frames of the [1, 4, T] recording: 4 channels at one time step.
    let n = 40;
    let rec: Vec<f32> = (0..4 * n)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let at = |c: usize, t: usize| rec[c * n + t];
    let one_by_one: Vec<Vec<u8>> = (0..n)
        .map(|t| (0..4).flat_map(|c| at(c, t).to_le_bytes()).collect())
        .collect();
    let got = run_rows(&streamed, &one_by_one);
    for (end, out) in got.iter().enumerate().skip(T - 1) {
        let window: Vec<u8> = (0..4)
            .flat_map(|c| (end + 1 - T..=end).flat_map(move |t| at(c, t).to_le_bytes()))
            .collect();
        let want = run_rows(&windowed, &[window]);
        assert_eq!(*out, want[0], "window ending at frame {end}");
    }
}
