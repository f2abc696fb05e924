//! Fuzzes inference on real models with hostile inputs: the MLPerf Tiny
//! keyword model (int8 QDQ and float), the anomaly-detection autoencoder
//! (int8 and float) and the image classifier (int8), compiled once from the
//! shared data (`EMBER_SHARED`, else `../shared`). The first byte picks the
//! model, the rest fills its input, repeated to length: raw float bits
//! (NaN, infinities, subnormals) or extreme int8. `invoke` must not panic.
#![no_main]

use std::sync::OnceLock;

use ember_compiler::{aligned_arena, AlignedBlob};
use ember_fuzz::{compile_fixed, shared};
use ember_runtime::{Interpreter, Model};
use libfuzzer_sys::fuzz_target;

const MODELS: &[&str] = &[
    "kws/kws_int8_qdq.onnx",
    "kws/kws_float32.onnx",
    "ad/ad_int8_qdq.onnx",
    "ad/ad_float32.onnx",
    "ic/ic_int8_qdq.onnx",
    "kws/kws_int8_ort_qdq.onnx",
];

/// The models, compiled and loaded once (the blobs live in a static of
/// their own, which the models borrow).
fn models() -> &'static [Model<'static>] {
    static BLOBS: OnceLock<Vec<AlignedBlob>> = OnceLock::new();
    static M: OnceLock<Vec<Model<'static>>> = OnceLock::new();
    M.get_or_init(|| {
        BLOBS
            .get_or_init(|| {
                MODELS
                    .iter()
                    .map(|m| {
                        let p = shared().join("models/mlperf-tiny").join(m);
                        let onnx = std::fs::read(&p)
                            .unwrap_or_else(|e| panic!("{}: {e} (set EMBER_SHARED)", p.display()));
                        compile_fixed(&onnx, m)
                    })
                    .collect()
            })
            .iter()
            .map(|b| Model::load(b.bytes()).expect("harness blob loads"))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, fill)) = data.split_first() else {
        return;
    };
    let ms = models();
    let model = &ms[which as usize % ms.len()];
    let mut arena = aligned_arena(model.arena_bytes());
    let mut it = Interpreter::new(model, arena.bytes_mut()).expect("bind");
    for i in 0..model.num_inputs() {
        let t = it.input_mut(i).expect("input");
        if fill.is_empty() {
            t.bytes.fill(0);
        } else {
            for (d, s) in t.bytes.iter_mut().zip(fill.iter().cycle()) {
                *d = *s;
            }
        }
    }
    it.invoke().expect("invoke on a valid model and any input");
    for i in 0..model.num_outputs() {
        let _ = it.output(i).expect("output");
    }
});
