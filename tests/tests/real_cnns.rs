//! Three float CNNs exported by others, against onnxruntime: PaddleOCR's
//! MobileNetV3 text-direction classifier, PP-OCRv4 DBNet text detector (a
//! segmentation network: Resize, ConvTranspose, Sigmoid) and PP-OCRv4
//! recognizer, as the `rapidocr_onnxruntime` 1.4.4 wheel on PyPI ships them
//! (Apache-2.0). `cargo xtask test` downloads the wheel into a cache and
//! sets `EMBER_REAL_CNN_DIR` to its `models` folder; without it the test
//! says so and passes. The reference outputs in `tests/data/real_cnns`
//! come from onnxruntime 1.32 (`make_reference.py` there) on the same
//! text-like input, built here exactly as there.

use std::path::{Path, PathBuf};

use ember_compiler::{AlignedBlob, Options};
use ember_tests::run_rows;
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::read_npy;

/// Rows of dark strokes on light-gray noise (see `make_reference.py`).
fn pattern(c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(c * h * w);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let noise = ((7 * x + 13 * y + 29 * ch) % 16) as f32;
                let stroke = (5..11).contains(&(y % 16)) && x % 9 < 5 && x >= 4 && x < w - 4;
                v.push(if stroke { -1.0 } else { 1.0 - noise / 127.5 });
            }
        }
    }
    v
}

/// Compiles `model` for input `[1, 3, h, w]` and runs it on the pattern.
fn run(dir: &Path, model: &str, h: usize, w: usize) -> Vec<f32> {
    let mut opts = Options::default();
    opts.input_shapes.insert("x".into(), vec![1, 3, h, w]);
    let c = ember_compiler::compile_file(dir.join(format!("{model}.onnx")), &opts)
        .unwrap_or_else(|e| panic!("{model}: {e}"));
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 3, h, w]), pattern(3, h, w)).unwrap();
    let mut rows = run_rows::<f32, f32>(&AlignedBlob::new(&c.blob), &x);
    rows.pop().unwrap_or_default()
}

fn reference<T: ndarray_npy::ReadableElement>(name: &str) -> ArrayD<T> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/real_cnns")
        .join(name);
    read_npy(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The largest difference relative to the reference's range.
fn rel_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let lo = want.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = want.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    worst / (hi - lo).max(f32::MIN_POSITIVE)
}

#[test]
fn paddleocr_cnns_match_onnxruntime() {
    let Some(dir) = std::env::var_os("EMBER_REAL_CNN_DIR").map(PathBuf::from) else {
        eprintln!("EMBER_REAL_CNN_DIR is not set: the PaddleOCR models are skipped");
        return;
    };
    // Direction classifier (MobileNetV3: HardSigmoid, hard-swish as Clip/Mul).
    let cls = "ch_ppocr_mobile_v2.0_cls_infer";
    let got = run(&dir, cls, 48, 192);
    let want = reference::<f32>(&format!("{cls}.npy"));
    let e = rel_error(&got, want.as_slice().unwrap());
    eprintln!("{cls}: max error {e:e} of the output range");
    assert!(e < 1e-4, "{cls}: {e}");

    // Text detector: a probability map.
    let det = "ch_PP-OCRv4_det_infer";
    let got = run(&dir, det, 64, 64);
    let want = reference::<f32>(&format!("{det}.npy"));
    let e = rel_error(&got, want.as_slice().unwrap());
    eprintln!("{det}: max error {e:e} of the output range");
    assert!(e < 1e-4, "{det}: {e}");

    // Recognizer: per time step, the best class and the three best
    // probabilities.
    let rec = "ch_PP-OCRv4_rec_infer";
    let got = run(&dir, rec, 48, 160);
    let idx = reference::<i32>(&format!("{rec}.top3_index.npy"));
    let val = reference::<f32>(&format!("{rec}.top3_value.npy"));
    let classes = got.len() / idx.shape()[0];
    let mut worst = 0f32;
    for (t, row) in got.chunks_exact(classes).enumerate() {
        let best = row
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        assert_eq!(best.0 as i32, idx[[t, 0]], "{rec}: step {t}");
        for k in 0..3 {
            worst = worst.max((row[idx[[t, k]] as usize] - val[[t, k]]).abs());
        }
    }
    eprintln!("{rec}: max error {worst:e} on the top-3 probabilities");
    assert!(worst < 1e-4, "{rec}: {worst}");
}
