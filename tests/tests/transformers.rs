//! Transformers against onnxruntime: MiniLM (int8 dynamic, int8 QDQ) and
//! the Whisper tiny.en encoder (float), on the shared reference vectors.

use std::collections::HashMap;
use std::path::PathBuf;

use ember_compiler::{aligned_arena, compile_file, select::Target, AlignedBlob, Options};
use ember_runtime::{format::OpCode, Interpreter, Model};
use ember_tests::shared_dir;
use ndarray::{ArrayD, Axis};
use ndarray_npy::NpzReader;

fn transformers(path: &str) -> PathBuf {
    shared_dir().join("models/transformers").join(path)
}

fn npz<T: ndarray_npy::ReadableElement>(path: &str, key: &str) -> ArrayD<T> {
    let f = std::fs::File::open(transformers(path)).expect("shared vectors");
    NpzReader::new(f)
        .unwrap()
        .by_name(&format!("{key}.npy"))
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

fn compile(path: &str, shapes: &[(&str, Vec<usize>)]) -> AlignedBlob {
    let opts = Options {
        target: Target::CortexA76,
        input_shapes: shapes
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect::<HashMap<_, _>>(),
        ..Default::default()
    };
    let c = compile_file(transformers(path), &opts).unwrap_or_else(|e| panic!("{path}: {e}"));
    AlignedBlob::new(&c.blob)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

/// Runs a model whose inputs are int32 token tensors, named.
fn run_tokens(blob: &AlignedBlob, inputs: &[(&str, Vec<i32>)]) -> HashMap<String, Vec<f32>> {
    let m = Model::load(blob.bytes()).expect("blob loads");
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).expect("arena");
    for i in 0..m.num_inputs() {
        let name = m.input_info(i).unwrap().name;
        let (_, v) = inputs
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no data for input {name}"));
        it.input_mut(i).unwrap().copy_from(v).expect("int32 input");
    }
    it.invoke().expect("invoke");
    (0..m.num_outputs())
        .map(|i| {
            let name = m.output_info(i).unwrap().name.to_string();
            (name, it.output(i).unwrap().as_f32().unwrap().to_vec())
        })
        .collect()
}

const MINILM_VECTORS: &str = "minilm/minilm_testvectors.npz";

fn tokens(key: &str) -> ArrayD<i32> {
    npz::<i64>(MINILM_VECTORS, key).mapv(|v| v as i32)
}

fn rows(a: &ArrayD<i32>, r: std::ops::Range<usize>) -> Vec<i32> {
    a.slice_axis(Axis(0), r.into()).iter().copied().collect()
}

/// onnxruntime produced the reference with all 14 sentences in one batch
/// (padded to 19 tokens): dynamic quantization takes its range from the
/// whole batch, so the same batch reproduces it.
#[test]
fn minilm_int8_dynamic_matches_onnxruntime_batched() {
    let (ids, mask, tt) = (
        tokens("input_ids"),
        tokens("attention_mask"),
        tokens("token_type_ids"),
    );
    let shape = ids.shape().to_vec();
    let blob = compile(
        "minilm/all-MiniLM-L6-v2_int8_dynamic.onnx",
        &[
            ("input_ids", shape.clone()),
            ("attention_mask", shape.clone()),
            ("token_type_ids", shape.clone()),
        ],
    );
    let n = shape[0];
    let out = run_tokens(
        &blob,
        &[
            ("input_ids", rows(&ids, 0..n)),
            ("attention_mask", rows(&mask, 0..n)),
            ("token_type_ids", rows(&tt, 0..n)),
        ],
    );
    let emb = &out["sentence_embedding"];
    let ort: ArrayD<f32> = npz(MINILM_VECTORS, "onnx_out_int8_dynamic");
    let reference: ArrayD<f32> = npz(MINILM_VECTORS, "sentence_embedding_reference");
    for r in 0..n {
        let e = &emb[r * 384..(r + 1) * 384];
        let c_ort = cosine(e, ort.index_axis(Axis(0), r).as_slice().unwrap());
        let c_ref = cosine(e, reference.index_axis(Axis(0), r).as_slice().unwrap());
        assert!(c_ort >= 0.999, "row {r}: cosine {c_ort} vs onnxruntime");
        assert!(
            c_ref >= 0.98,
            "row {r}: cosine {c_ref} vs sentence-transformers"
        );
    }
}

/// Static quantization does not depend on the batch: one sentence at a
/// time, padded to 19 tokens.
#[test]
fn minilm_int8_qdq_matches_onnxruntime() {
    let (ids, mask, tt) = (
        tokens("input_ids"),
        tokens("attention_mask"),
        tokens("token_type_ids"),
    );
    let s = ids.shape()[1];
    let blob = compile(
        "minilm/all-MiniLM-L6-v2_int8_qdq.onnx",
        &[
            ("input_ids", vec![1, s]),
            ("attention_mask", vec![1, s]),
            ("token_type_ids", vec![1, s]),
        ],
    );
    // Attention fused: no score tensor, no MatMul of two activations.
    let m = Model::load(blob.bytes()).unwrap();
    let ops: Vec<OpCode> = (0..m.num_ops() as u32)
        .map(|i| m.op(i).unwrap().opcode)
        .collect();
    assert_eq!(ops.iter().filter(|&&o| o == OpCode::Attention).count(), 6);
    assert!(!ops.contains(&OpCode::MatMul));
    let ort: ArrayD<f32> = npz(MINILM_VECTORS, "onnx_out_int8_qdq");
    let reference: ArrayD<f32> = npz(MINILM_VECTORS, "sentence_embedding_reference");
    let mut close = 0;
    for r in 0..ids.shape()[0] {
        let out = run_tokens(
            &blob,
            &[
                ("input_ids", rows(&ids, r..r + 1)),
                ("attention_mask", rows(&mask, r..r + 1)),
                ("token_type_ids", rows(&tt, r..r + 1)),
            ],
        );
        let e = &out["sentence_embedding"];
        let c_ort = cosine(e, ort.index_axis(Axis(0), r).as_slice().unwrap());
        let c_ref = cosine(e, reference.index_axis(Axis(0), r).as_slice().unwrap());
        // Known gap: two rows (now 0 and 1) reach 0.991–0.993, the other
        // twelve 0.999+. The first difference in row 1 is one element of
        // layer 0's value projection: its exact value is 33.500009 steps,
        // which Ember's integer sum rounds to 34, while onnxruntime sums
        // the dequantized floats (fused multiply-adds, in blocks of 128)
        // and lands below 33.5. Such single flips grow through the layers.
        assert!(c_ort >= 0.99, "row {r}: cosine {c_ort} vs onnxruntime");
        close += (c_ort >= 0.999) as usize;
        // onnxruntime's own output of this file reaches 0.9765 on row 12
        // ("hello"): the quantized model, not the runtime, sets this bound.
        assert!(
            c_ref >= 0.975,
            "row {r}: cosine {c_ref} vs sentence-transformers"
        );
    }
    assert!(close >= 12, "only {close} rows within 0.999 of onnxruntime");
}

/// Sequence 128, one sentence: the arena stays small (attention fused,
/// buffers reused across the six layers).
#[test]
fn minilm_arena_at_sequence_128() {
    let shape = vec![1, 128];
    let blob = compile(
        "minilm/all-MiniLM-L6-v2_int8_dynamic.onnx",
        &[
            ("input_ids", shape.clone()),
            ("attention_mask", shape.clone()),
            ("token_type_ids", shape),
        ],
    );
    let m = Model::load(blob.bytes()).unwrap();
    assert!(m.arena_bytes() < 2 << 20, "arena {} bytes", m.arena_bytes());
    // Weights stay int8: the blob is about the ONNX file's size.
    assert!(blob.bytes().len() < 24_000_000, "{}", blob.bytes().len());
}

#[test]
fn whisper_encoder_float_matches_onnxruntime() {
    let vectors = "whisper-tiny-en-encoder/whisper_encoder_testvectors.npz";
    let blob = compile(
        "whisper-tiny-en-encoder/whisper-tiny.en_encoder_float32.onnx",
        &[],
    );
    let m = Model::load(blob.bytes()).unwrap();
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    for (clip, frames) in [
        ("espeak_turn_on_the_lights", 200),
        ("short_wav_easy10s", 500),
    ] {
        let x: ArrayD<f32> = npz(vectors, &format!("{clip}__input_features"));
        let want: ArrayD<f32> = npz(
            vectors,
            &format!("{clip}__float_onnx_last_hidden_state_first{frames}"),
        );
        it.input_mut(0)
            .unwrap()
            .copy_from(x.as_slice().unwrap())
            .unwrap();
        it.invoke().unwrap();
        let y = it.output(0).unwrap().as_f32().unwrap().to_vec();
        assert_eq!(y.len(), 1500 * 384);
        let w = want.as_slice().unwrap();
        let err = y[..w.len()]
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err <= 1e-3, "{clip}: max abs error {err}");
    }
}

/// The int8 dynamic encoder. onnxruntime's own output moves by as much:
/// perturbing the log-mel input by a relative 1e-7 takes its per-frame
/// cosine to its unperturbed output down to 0.988 on these 200 frames (mean
/// 0.9974), as a rounding flip in one dynamic quantization step propagates
/// through four layers. Ember lands inside that spread (0.990, 0.9972).
#[test]
fn whisper_encoder_int8_dynamic_matches_onnxruntime() {
    let vectors = "whisper-tiny-en-encoder/whisper_encoder_testvectors.npz";
    let blob = compile(
        "whisper-tiny-en-encoder/whisper-tiny.en_encoder_int8_dynamic.onnx",
        &[],
    );
    let m = Model::load(blob.bytes()).unwrap();
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    let clip = "espeak_turn_on_the_lights";
    let x: ArrayD<f32> = npz(vectors, &format!("{clip}__input_features"));
    let want: ArrayD<f32> = npz(
        vectors,
        &format!("{clip}__int8_onnx_last_hidden_state_first200"),
    );
    it.input_mut(0)
        .unwrap()
        .copy_from(x.as_slice().unwrap())
        .unwrap();
    it.invoke().unwrap();
    let y = it.output(0).unwrap().as_f32().unwrap();
    let w = want.as_slice().unwrap();
    let cos: Vec<f32> = (0..200)
        .map(|f| cosine(&y[f * 384..(f + 1) * 384], &w[f * 384..(f + 1) * 384]))
        .collect();
    let min = cos.iter().copied().fold(1f32, f32::min);
    let mean = cos.iter().sum::<f32>() / cos.len() as f32;
    assert!(
        min >= 0.985 && mean >= 0.995,
        "per-frame cosine min {min}, mean {mean}"
    );
}
