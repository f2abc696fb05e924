//! `ember embed`: sentence embeddings (WordPiece + model + pooling), its
//! JSON contract and its errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ember_tests::{mlperf, shared_dir};
use ndarray::Array2;
use ndarray_npy::NpzReader;

/// Runs the `ember` binary (under `EMBER_EXE_RUNNER` when the tests run
/// under an emulator, as in `tests/cli.rs`).
fn ember(args: &[&str]) -> Output {
    let exe = env!("CARGO_BIN_EXE_ember");
    let runner = std::env::var("EMBER_EXE_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut cmd = match words.next() {
        Some(emulator) => {
            let mut c = Command::new(emulator);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(args).output().expect("run ember")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ember-embed-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn minilm(file: &str) -> PathBuf {
    shared_dir().join("models/transformers/minilm").join(file)
}

/// A failure is exit status 1 with exactly one `error:` line on stderr.
fn assert_clean_failure(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

#[test]
fn embed_errors_are_clean() {
    let vocab = minilm("vocab.txt");
    // No vocabulary.
    let o = ember(&[
        "embed",
        "model.ember",
        "--vocab",
        "/nonexistent/vocab.txt",
        "hello",
    ]);
    assert_clean_failure(&o, "cannot read vocabulary");
    // A file that is not a BERT vocabulary.
    let bad = tmp("bad_vocab.txt");
    std::fs::write(&bad, "[PAD]\n[UNK]\nhello\n").unwrap();
    let o = ember(&["embed", "model.ember", "--vocab", s(&bad), "hello"]);
    assert_clean_failure(&o, "no [CLS], [SEP] token");
    // A model that is not a text encoder (compiled in memory).
    let kws = mlperf("kws", "kws_int8_qdq.onnx");
    let o = ember(&["embed", s(&kws), "--vocab", s(&vocab), "hello"]);
    assert_clean_failure(&o, "not a text-embedding model");
    // A missing model.
    let o = ember(&["embed", "/nonexistent/m.ember", "--vocab", s(&vocab), "x"]);
    assert_clean_failure(&o, "cannot read /nonexistent/m.ember");
}

/// Compiles MiniLM for a fixed sequence length, embeds all 14 test
/// sentences (two per call, through the JSON contract) and compares them
/// with the sentence-transformers reference and with onnxruntime's output
/// of the same quantized model (`ref_key`).
fn embed_minilm(file: &str, ref_key: &str) {
    const SEQ: usize = 32;
    let dir = shared_dir().join("models/transformers/minilm");
    let vocab = dir.join("vocab.txt");
    let blob = tmp(&format!("{file}.ember"));
    let shape = |n: &str| format!("{n}=1x{SEQ}");
    let o = ember(&[
        "compile",
        s(&dir.join(file)),
        "-o",
        s(&blob),
        "--shape",
        &shape("input_ids"),
        "--shape",
        &shape("attention_mask"),
        "--shape",
        &shape("token_type_ids"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("minilm_testvectors.json")).unwrap(),
    )
    .unwrap();
    let sentences: Vec<&str> = index["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut npz =
        NpzReader::new(std::fs::File::open(dir.join("minilm_testvectors.npz")).unwrap()).unwrap();
    let reference: Array2<f32> = npz.by_name("sentence_embedding_reference.npy").unwrap();
    let onnxrt: Array2<f32> = npz.by_name(&format!("{ref_key}.npy")).unwrap();

    // One text: exactly {"embedding": [...]}, unit length.
    let o = ember(&[
        "embed",
        s(&blob),
        "--vocab",
        s(&vocab),
        sentences[0],
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["embedding"]);
    let e0 = floats(&v["embedding"]);
    assert_eq!(e0.len(), 384);
    let norm = e0.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");

    // All sentences, two at a time.
    let mut embs: Vec<Vec<f32>> = Vec::new();
    for pair in sentences.chunks(2) {
        let mut args = vec!["embed", s(&blob), "--vocab", s(&vocab)];
        args.extend_from_slice(pair);
        args.push("--json");
        let o = ember(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let list = v["embeddings"].as_array().unwrap();
        assert_eq!(list.len(), pair.len());
        let (a, b) = (floats(&list[0]), floats(&list[1]));
        let c = v["cosine"].as_f64().unwrap() as f32;
        assert!((c - cosine(&a, &b)).abs() < 1e-4, "{c}");
        embs.push(a);
        embs.push(b);
    }
    for (r, e) in embs.iter().enumerate() {
        let want = reference.row(r).to_vec();
        let ort = onnxrt.row(r).to_vec();
        let (c_ref, c_ort) = (cosine(e, &want), cosine(e, &ort));
        eprintln!("{file} row {r}: cos {c_ref:.4} vs reference, {c_ort:.4} vs onnxruntime");
        assert!(
            c_ref > 0.95,
            "row {r} '{}': cos {c_ref} vs reference",
            sentences[r]
        );
        assert!(
            c_ort > 0.98,
            "row {r} '{}': cos {c_ort} vs onnxruntime",
            sentences[r]
        );
    }
    assert!(
        (cosine(&embs[0], &e0) - 1.0).abs() < 1e-5,
        "same text, same embedding"
    );

    // Two texts without --json: the cosine (reference 0.7553).
    let o = ember(&[
        "embed",
        s(&blob),
        "--vocab",
        s(&vocab),
        sentences[0],
        sentences[1],
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let c: f32 = out
        .trim()
        .strip_prefix("cosine ")
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap();
    assert!((c - 0.7553).abs() < 0.05, "{out}");

    // A text longer than the sequence: truncated, with a warning.
    let long = "the quick brown fox jumps over the lazy dog ".repeat(8);
    let o = ember(&["embed", s(&blob), "--vocab", s(&vocab), &long]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: text 1 has") && err.contains("tokens; truncated to the model's 32"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("embedding of dimension 384"));
}

#[test]
fn embed_minilm_int8_qdq() {
    embed_minilm("all-MiniLM-L6-v2_int8_qdq.onnx", "onnx_out_int8_qdq");
}

#[test]
fn embed_minilm_int8_dynamic() {
    embed_minilm(
        "all-MiniLM-L6-v2_int8_dynamic.onnx",
        "onnx_out_int8_dynamic",
    );
}
