//! A recurrent voice model exported by others, against onnxruntime:
//! Silero VAD's 16 kHz sequence model (the `silero-vad` 6.2.3 wheel on
//! PyPI, MIT): raw audio in, an STFT as a convolution, four convolutions,
//! an LSTM with its state (`h`, `c` → `hn`, `cn`) carried from chunk to
//! chunk, and a speech probability out. `cargo xtask test` downloads the
//! wheel into a cache and sets `EMBER_VOICE_MODEL_DIR` to its `data`
//! folder; without it the test says so and passes.
//!
//! The recording is the ten `keywords/*_v0.wav` clips of the shared data
//! one after the other (10 s, 312 chunks of 32 ms). The reference
//! probabilities in `tests/data/real_voice` come from onnxruntime 1.32
//! (`make_reference.py` there), chunk by chunk as here: the float model,
//! and the model after onnxruntime's `quantize_dynamic` turned its LSTM
//! into `com.microsoft.DynamicQuantizeLSTM` with int8 weights — which
//! this test rebuilds from the float model with the same per-row
//! quantization, so that no quantized copy has to be stored.

use std::path::PathBuf;

use ember_audio::vad::{Segment, Segmenter, VAD_INPUT};
use ember_compiler::{AlignedBlob, Options};
use ember_runtime::Model;
use ember_tests::voice;
use ndarray::ArrayD;
use ndarray_npy::read_npy;

fn model_dir() -> Option<PathBuf> {
    let d = std::env::var_os("EMBER_VOICE_MODEL_DIR").map(PathBuf::from);
    if d.is_none() {
        eprintln!("EMBER_VOICE_MODEL_DIR is not set: Silero VAD is skipped");
    }
    d
}

/// Compiles `onnx` for one chunk with its LSTM state bound, and runs the
/// ten-word recording through it: one speech probability per chunk.
fn stream(onnx: &[u8]) -> Vec<f32> {
    let mut opts = Options::default();
    opts.input_shapes.insert("input".into(), vec![1, VAD_INPUT]);
    opts.state.add("auto").unwrap();
    let c = ember_compiler::compile(onnx, &opts).unwrap_or_else(|e| panic!("{e}"));
    let aligned = AlignedBlob::new(&c.blob);
    let state = Model::load(aligned.bytes()).ok().map(|m| m.num_state());
    assert_eq!(state, Some(2), "h and c are kept between chunks");
    let pcm = voice::keyword_recording(&ember_tests::shared_dir()).unwrap();
    voice::probabilities(&c.blob, &pcm).unwrap()
}

fn reference(name: &str) -> Vec<f32> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/real_voice")
        .join(name);
    let a: ArrayD<f32> = read_npy(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    a.iter().copied().collect()
}

fn segments(p: &[f32]) -> Vec<Segment> {
    let mut s = Segmenter::default();
    let mut out: Vec<Segment> = p.iter().filter_map(|&v| s.push(v)).collect();
    out.extend(s.finish());
    out
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn silero_vad_matches_onnxruntime_chunk_by_chunk() {
    let Some(dir) = model_dir() else { return };
    let onnx = std::fs::read(dir.join("silero_vad_16k_sequence.onnx")).unwrap();

    let want = reference("silero_vad_float.npy");
    let got = stream(&onnx);
    let e = max_diff(&got, &want);
    eprintln!("silero VAD float: {} chunks, max |diff| {e:e}", got.len());
    assert!(e <= 1e-4, "float: {e}");
    let speech = segments(&want);
    assert_eq!(speech.len(), 10, "one segment per spoken word: {speech:?}");
    assert_eq!(segments(&got), speech);

    let want = reference("silero_vad_lstm_int8.npy");
    let got = stream(&ember_tests::onnx::dynamic_quantize_lstm(&onnx, 0));
    let e = max_diff(&got, &want);
    let flips = got
        .iter()
        .zip(&want)
        .filter(|(a, b)| (**a >= 0.5) != (**b >= 0.5))
        .count();
    eprintln!("silero VAD, int8 LSTM weights: max |diff| {e:e}, {flips} decisions differ");
    assert_eq!(flips, 0);
    assert!(e <= 2e-2, "int8 LSTM: {e}");
    assert_eq!(segments(&got), speech);
}
