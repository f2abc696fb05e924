//! The streaming wake-word front end and detector on the MLPerf 10 s clip:
//! features against the reference log-mel frames, int8 features against the
//! reference quantized frames, and the detections of the whole streaming
//! pipeline (front end → 30-frame window → compiled sww model → detector)
//! against the detections of TFLite's reference outputs.

use ember_audio::sww::{Detector, FeatureWindow, SwwLogMel, SWW_MELS};
use ember_runtime::{Interpreter, Model};
use ember_tests::{compile, mlperf, shared_dir, vectors};
use ndarray::{ArrayD, Axis};

fn clip() -> Vec<i16> {
    let bytes = std::fs::read(shared_dir().join("audio/mlperf/short_wav_easy10s.wav")).unwrap();
    let w = ember_audio::wav::Wav::parse(&bytes).unwrap();
    assert_eq!(w.sample_rate, 16_000);
    let mut pcm = vec![0i16; w.frames()];
    w.channel0_into(&mut pcm);
    pcm
}

/// All feature frames of the clip, fed in chunks of awkward sizes.
fn frames(pcm: &[i16]) -> Vec<[f32; SWW_MELS]> {
    let mut fe = SwwLogMel::new();
    let mut out = Vec::new();
    let sizes = [1usize, 7, 333, 1000, 512, 4096];
    let (mut pos, mut i) = (0, 0);
    while pos < pcm.len() {
        let n = sizes[i % sizes.len()].min(pcm.len() - pos);
        fe.push(&pcm[pos..pos + n], |f| out.push(*f));
        pos += n;
        i += 1;
    }
    assert_eq!(fe.frames(), out.len());
    out
}

#[test]
fn log_mel_frames_match_reference_features() {
    let pcm = clip();
    let got = frames(&pcm);
    let want: ArrayD<f32> = vectors("sww", "lfbe_float");
    assert_eq!(got.len(), want.shape()[0], "frame count");
    let worst = got
        .iter()
        .flatten()
        .zip(want.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-3, "max abs error {worst}");
    eprintln!(
        "sww log-mel: max abs error {worst:.2e} over {} frames",
        got.len()
    );
}

#[test]
fn streaming_detections_match_reference_windows() {
    let blob = compile(&mlperf("sww", "sww_int8_qdq.onnx"));
    let m = Model::load(blob.bytes()).unwrap();
    let q_in = m.input_info(0).unwrap().quant.unwrap();
    let q_out = m.output_info(0).unwrap().quant.unwrap();
    let pcm = clip();

    // int8 features against the reference quantized frames.
    let want_q: ArrayD<i8> = vectors("sww", "lfbe_int8");
    let mut q_frames = Vec::new();
    for f in frames(&pcm) {
        let mut q = [0i8; SWW_MELS];
        SwwLogMel::quantize(&f, q_in.scale, q_in.zero_point, &mut q);
        q_frames.push(q);
    }
    let same = q_frames
        .iter()
        .flatten()
        .zip(want_q.iter())
        .filter(|(a, b)| a == b)
        .count();
    let share = same as f64 / want_q.len() as f64;
    assert!(
        share >= 0.995,
        "only {:.3} % of int8 features identical",
        share * 100.0
    );
    eprintln!("sww int8 features: {:.3} % identical", share * 100.0);

    // The streaming pipeline, one new frame at a time.
    let mut arena = ember_compiler::aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    let mut win = FeatureWindow::new();
    let mut det = Detector::new(0.95);
    let (mut got, mut n_win) = (Vec::new(), 0);
    for q in &q_frames {
        if !win.push(q) {
            continue;
        }
        assert!(win.copy_into(it.input_mut(0).unwrap().bytes));
        it.invoke().unwrap();
        let out = it.output(0).unwrap().as_i8().unwrap();
        let p0 = (out[0] as i32 - q_out.zero_point) as f32 * q_out.scale;
        if let Some(d) = det.push(n_win, p0) {
            got.push(d.window);
        }
        n_win += 1;
    }

    // The same detector over TFLite's reference outputs.
    let golden: ArrayD<i8> = vectors("sww", "int8_tflite_ref_out");
    assert_eq!(n_win, golden.shape()[0], "window count");
    let mut ref_det = Detector::new(0.95);
    let want: Vec<usize> = (0..golden.shape()[0])
        .filter_map(|w| {
            let p0 =
                (golden.index_axis(Axis(0), w)[0] as i32 - q_out.zero_point) as f32 * q_out.scale;
            ref_det.push(w, p0).map(|d| d.window)
        })
        .collect();
    assert!(!want.is_empty(), "the reference detects the wake word");
    assert_eq!(got, want, "detection windows");
    let times: Vec<f32> = want.iter().map(|&w| Detector::window_end_s(w)).collect();
    eprintln!("sww detections at {times:?} s");
}
