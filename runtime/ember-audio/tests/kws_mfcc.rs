//! MFCCs from the spoken keyword clips against the reference features.

use ember_audio::{KwsMfcc, KWS_COEFFS, KWS_FRAMES};
use ember_tests::{shared_dir, vectors};
use ndarray::{ArrayD, Axis};

/// Channel 0 of a 16-bit PCM WAV file.
fn read_wav(path: &std::path::Path) -> (u32, Vec<i16>) {
    let bytes = std::fs::read(path).unwrap();
    let w = ember_audio::wav::Wav::parse(&bytes).unwrap();
    let mut pcm = vec![0i16; w.frames()];
    w.channel0_into(&mut pcm);
    (w.sample_rate, pcm)
}

/// The WAV of a kws reference row: the keyword clips, plus the MLPerf
/// "marvin" clip (an unknown word) in `audio/mlperf`.
fn clip(name: &str) -> (u32, Vec<i16>) {
    let dir = if name.starts_with("marvin") {
        "audio/mlperf"
    } else {
        "audio/keywords"
    };
    read_wav(&shared_dir().join(dir).join(format!("{name}.wav")))
}

#[test]
fn mfcc_matches_reference_features() {
    let names = ember_tests::row_names("kws");
    let want_f: ArrayD<f32> = vectors("kws", "mfcc_float");
    let want_q: ArrayD<i8> = vectors("kws", "mfcc_int8");
    let fe = KwsMfcc::new();
    let (mut worst, mut same, mut total) = (0f32, 0usize, 0usize);
    for (row, name) in names.iter().enumerate() {
        let (rate, pcm) = clip(name);
        assert_eq!(rate, 16_000);
        let mut out = [[0f32; KWS_COEFFS]; KWS_FRAMES];
        fe.compute(&pcm, &mut out);
        let wf = want_f.index_axis(Axis(0), row);
        for (a, b) in out.iter().flatten().zip(wf.iter()) {
            worst = worst.max((a - b).abs());
        }
        let mut q = [0i8; KWS_FRAMES * KWS_COEFFS];
        KwsMfcc::quantize(&out, 0.5847029, 83, &mut q);
        let wq = want_q.index_axis(Axis(0), row);
        same += q.iter().zip(wq.iter()).filter(|(a, b)| a == b).count();
        total += q.len();
    }
    let share = same as f64 / total as f64;
    eprintln!(
        "kws MFCC over {} clips: max abs error {worst:e}, int8 identical {:.3}%",
        names.len(),
        share * 100.0
    );
    assert!(worst <= 1e-3, "max abs error {worst}");
    assert!(share >= 0.995, "int8 identical share {share}");
}

/// WAV → MFCC → int8 kws model → label, for every clip: the same label as
/// TFLite's reference kernels on the reference features.
#[test]
fn wav_to_label_matches_reference() {
    use ember_runtime::{Interpreter, Model};
    let names = ember_tests::row_names("kws");
    let want: ArrayD<i8> = vectors("kws", "int8_tflite_ref_out");
    let blob = ember_tests::compile(&ember_tests::mlperf("kws", "kws_int8_qdq.onnx"));
    let m = Model::load(blob.bytes()).unwrap();
    let q = m.input_info(0).unwrap().quant.expect("quantized input");
    let mut arena = ember_compiler::aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    let fe = KwsMfcc::new();
    for (row, name) in names.iter().enumerate() {
        let (_, pcm) = clip(name);
        let mut mfcc = [[0f32; KWS_COEFFS]; KWS_FRAMES];
        fe.compute(&pcm, &mut mfcc);
        let mut x = [0i8; KWS_FRAMES * KWS_COEFFS];
        KwsMfcc::quantize(&mfcc, q.scale, q.zero_point, &mut x);
        it.input_mut(0).unwrap().copy_from(&x).unwrap();
        it.invoke().unwrap();
        let got = ember_tests::argmax(it.output(0).unwrap().as_i8().unwrap());
        let w: Vec<i8> = want.index_axis(Axis(0), row).iter().copied().collect();
        assert_eq!(got, ember_tests::argmax(&w), "{name}");
    }
}
