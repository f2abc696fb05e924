//! Bad input never panics: corrupted blobs, malformed ONNX files and
//! unsupported operators all come back as typed errors.

use ember_compiler::{aligned_arena, AlignedBlob, CompileError, Options};
use ember_runtime::format::crc32;
use ember_runtime::{Error, Interpreter, Model};
use ember_tests::{compile, mlperf};

/// Deterministic xorshift PRNG (no dependency, reproducible failures).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn kws_blob() -> Vec<u8> {
    compile(&mlperf("kws", "kws_int8_qdq.onnx"))
        .bytes()
        .to_vec()
}

fn fix_crc(b: &mut [u8]) {
    if b.len() >= 16 {
        let c = crc32(&b[16..]);
        b[12..16].copy_from_slice(&c.to_le_bytes());
    }
}

/// Loads, and if that succeeds, runs once: neither may panic.
fn load_and_run(bytes: &[u8]) -> Result<(), Error> {
    let blob = AlignedBlob::new(bytes);
    let m = Model::load(blob.bytes())?;
    let mut arena = aligned_arena(m.arena_bytes().min(1 << 24));
    let mut it = Interpreter::new(&m, arena.bytes_mut())?;
    it.invoke()
}

#[test]
fn every_truncation_is_an_error() {
    let b = kws_blob();
    for len in 0..b.len() {
        let r = load_and_run(&b[..len]);
        assert!(r.is_err(), "truncated to {len} bytes but loaded");
    }
    assert!(load_and_run(&b).is_ok());
}

#[test]
fn byte_flips_fail_the_checksum() {
    let b = kws_blob();
    let mut rng = Rng(0x9E3779B97F4A7C15);
    for _ in 0..2000 {
        let mut m = b.clone();
        let i = rng.below(m.len());
        m[i] ^= 1 << rng.below(8);
        assert!(load_and_run(&m).is_err(), "flip at {i} not detected");
    }
}

/// Mutations with the checksum recomputed exercise the structural
/// validation behind it: every outcome must be Ok or a typed error.
#[test]
fn mutated_blobs_with_valid_checksums_never_panic() {
    let b = kws_blob();
    let mut rng = Rng(12345);
    let mut rejected = 0;
    let n = 3000;
    for k in 0..n {
        let mut m = b.clone();
        let flips = 1 + rng.below(4);
        for _ in 0..flips {
            let i = if k % 2 == 0 {
                rng.below(m.len().min(4096))
            } else {
                rng.below(m.len())
            };
            m[i] = match rng.below(4) {
                0 => m[i] ^ (1 << rng.below(8)),
                1 => 0xFF,
                2 => 0,
                _ => rng.next() as u8,
            };
        }
        fix_crc(&mut m);
        if load_and_run(&m).is_err() {
            rejected += 1;
        }
    }
    eprintln!("{rejected} of {n} structurally mutated blobs rejected, the rest ran");
    assert!(
        rejected > n / 4,
        "validation rejects too little: {rejected} of {n}"
    );
}

fn set_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn bad_header_fields_are_named() {
    let b = kws_blob();
    let case = |off: usize, v: u32| {
        let mut m = b.clone();
        set_u32(&mut m, off, v);
        fix_crc(&mut m);
        load_and_run(&m).unwrap_err()
    };
    assert_eq!(
        {
            let mut m = b.clone();
            m[0] = b'X';
            load_and_run(&m).unwrap_err()
        },
        Error::BadMagic
    );
    assert_eq!(case(4, 99), Error::UnsupportedVersion(99));
    assert!(matches!(
        case(8, b.len() as u32 + 16),
        Error::Truncated { .. }
    ));
    assert!(
        matches!(case(28, 1 << 30), Error::BadSection(_)),
        "tensor table offset"
    );
    assert!(
        matches!(case(36, 1 << 30), Error::BadSection(_)),
        "op table offset"
    );
    assert!(
        matches!(case(24, 1 << 20), Error::BadSection(_)),
        "tensor count"
    );
    assert!(matches!(case(88, 7), Error::BadHeader(_)), "rounding");
    assert!(
        matches!(case(20, 16), Error::BadTensor { .. }),
        "arena too small for the plan"
    );
}

fn u32_of(b: &[u8], off: usize) -> usize {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize
}

/// Names are slices of the string pool, which is checked as UTF-8 once at
/// load: invalid bytes in the pool, and a name that cuts a character in
/// two, are both refused.
#[test]
fn bad_names_are_named() {
    let b = kws_blob();
    let (pool_len, pool) = (u32_of(&b, 80), u32_of(&b, 84));
    assert!(pool_len >= 2);
    let mut m = b.clone();
    m[pool] = 0xff;
    fix_crc(&mut m);
    assert_eq!(
        load_and_run(&m).unwrap_err(),
        Error::BadSection("string pool is not UTF-8")
    );
    // "é" (two bytes) at the start of the pool; tensor 0 named by its
    // second byte alone.
    let mut m = b.clone();
    m[pool..pool + 2].copy_from_slice("é".as_bytes());
    let rec = u32_of(&b, 28);
    set_u32(&mut m, rec + 44, 1);
    set_u32(&mut m, rec + 48, 1);
    fix_crc(&mut m);
    assert!(
        matches!(
            load_and_run(&m).unwrap_err(),
            Error::BadTensor { tensor: 0, reason } if reason.contains("character boundaries")
        ),
        "name inside a character"
    );
}

#[test]
fn wrong_checksum_is_reported() {
    let mut b = kws_blob();
    let last = b.len() - 1;
    b[last] ^= 0x55;
    assert!(matches!(
        load_and_run(&b),
        Err(Error::ChecksumMismatch { .. })
    ));
}

#[test]
fn small_or_misaligned_arena_is_an_error() {
    let blob = compile(&mlperf("kws", "kws_int8_qdq.onnx"));
    let m = Model::load(blob.bytes()).unwrap();
    let mut arena = aligned_arena(m.arena_bytes() + 16);
    let need = m.arena_bytes();
    assert_eq!(
        Interpreter::new(&m, &mut arena.bytes_mut()[..need - 1]).err(),
        Some(Error::ArenaTooSmall {
            needed: need,
            got: need - 1
        })
    );
    assert_eq!(
        Interpreter::new(&m, &mut arena.bytes_mut()[1..need + 1]).err(),
        Some(Error::MisalignedArena)
    );
}

#[test]
fn misaligned_blob_is_an_error() {
    let b = kws_blob();
    let mut padded = vec![0u8; 1];
    padded.extend_from_slice(&b);
    let a = AlignedBlob::new(&padded);
    assert_eq!(
        Model::load(&a.bytes()[1..]).err(),
        Some(Error::MisalignedBlob)
    );
}

fn compile_err(bytes: &[u8]) -> CompileError {
    ember_compiler::compile(bytes, &Options::default()).expect_err("must not compile")
}

#[test]
fn malformed_onnx_is_an_error() {
    assert!(matches!(
        compile_err(b"definitely not protobuf \xff\xff\xff"),
        CompileError::Malformed(_)
    ));
    let real = std::fs::read(mlperf("kws", "kws_int8_qdq.onnx")).unwrap();
    let mut rng = Rng(777);
    for _ in 0..200 {
        let len = rng.below(real.len());
        // Truncated files: an error (or, rarely, a smaller valid model), never a panic.
        let _ = ember_compiler::compile(&real[..len], &Options::default());
    }
    for _ in 0..200 {
        let mut m = real.clone();
        for _ in 0..8 {
            let i = rng.below(m.len());
            m[i] = rng.next() as u8;
        }
        let _ = ember_compiler::compile(&m, &Options::default());
    }
}

fn one_node_model(op_type: &str, in_dims: &[i64]) -> Vec<u8> {
    ember_tests::tiny_onnx(in_dims, &[(op_type, "the_node", &["x"], &["y"])], &["y"])
}

#[test]
fn unsupported_operator_names_type_and_node() {
    let e = compile_err(&one_node_model("Unique", &[1, 4]));
    let msg = e.to_string();
    assert!(matches!(e, CompileError::Unsupported { .. }), "{msg}");
    assert!(msg.contains("Unique") && msg.contains("the_node"), "{msg}");
}

#[test]
fn tensors_above_rank_six_are_refused_by_name() {
    for rank in [7, 16, 40] {
        let e = compile_err(&one_node_model("Relu", &vec![1; rank]));
        let msg = e.to_string();
        assert!(matches!(e, CompileError::Unsupported { .. }), "{msg}");
        assert!(msg.contains(&format!("rank {rank}")), "{msg}");
    }
}

#[test]
fn dynamic_shape_is_named_with_the_fix() {
    let e = compile_err(&one_node_model("Relu", &[-1, 4]));
    let msg = e.to_string();
    assert!(matches!(e, CompileError::DynamicShape { .. }), "{msg}");
    assert!(msg.contains("--shape x="), "{msg}");
    // With the shape fixed it compiles and runs.
    let mut opts = Options::default();
    opts.input_shapes.insert("x".into(), vec![2, 4]);
    let c = ember_compiler::compile(&one_node_model("Relu", &[-1, 4]), &opts).unwrap();
    let blob = AlignedBlob::new(&c.blob);
    let m = Model::load(blob.bytes()).unwrap();
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    it.input_mut(0)
        .unwrap()
        .copy_from(&[-1.0f32, 2.0, -3.0, 4.0, 0.5, -0.5, 7.0, -7.0])
        .unwrap();
    it.invoke().unwrap();
    assert_eq!(
        it.output(0).unwrap().as_f32().unwrap(),
        &[0.0, 2.0, 0.0, 4.0, 0.5, 0.0, 7.0, 0.0]
    );
}

/// The transformer ops' geometry lives in their params (strides, head
/// counts, axes) and in the op table: mutations there, with the checksum
/// recomputed, are refused at load or run cleanly, never a panic or an
/// out-of-bounds read. MiniLM at 8 tokens.
#[test]
fn mutated_transformer_params_never_panic() {
    let onnx = ember_tests::shared_dir()
        .join("models/transformers/minilm/all-MiniLM-L6-v2_int8_dynamic.onnx");
    let opts = Options {
        input_shapes: ["input_ids", "attention_mask", "token_type_ids"]
            .iter()
            .map(|n| (n.to_string(), vec![1, 8]))
            .collect(),
        ..Default::default()
    };
    let b = ember_compiler::compile_file(&onnx, &opts).unwrap().blob;
    assert!(load_and_run(&b).is_ok());
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let (n_ops, ops_off) = (u32_at(32), u32_at(36));
    let (n_params, params_off) = (u32_at(64), u32_at(68));
    let regions = [(ops_off, n_ops * 32), (params_off, n_params * 4)];
    let mut rng = Rng(0xA77E);
    let (mut rejected, n) = (0, 100);
    for _ in 0..n {
        let mut m = b.clone();
        let (start, len) = regions[rng.below(2)];
        for _ in 0..1 + rng.below(3) {
            let i = start + rng.below(len);
            m[i] = match rng.below(3) {
                0 => m[i] ^ (1 << rng.below(8)),
                1 => 0xFF,
                _ => rng.next() as u8,
            };
        }
        fix_crc(&mut m);
        if load_and_run(&m).is_err() {
            rejected += 1;
        }
    }
    eprintln!("{rejected} of {n} mutated transformer blobs rejected, the rest ran");
    assert!(
        rejected > n / 4,
        "validation rejects too little: {rejected} of {n}"
    );
}

/// Every operator the compiler accepts, given too few inputs (none, one
/// runtime tensor, two, or empty names where tensors should be), is an
/// error naming the node or a model that compiles, never a panic (ONNX
/// files can say anything; issue 24 found `Relu` with no inputs indexing
/// past the end).
#[test]
fn too_few_inputs_are_errors_for_every_operator() {
    use ember_tests::onnx::{self, node, value, FLOAT};
    use tract_onnx::pb;
    let mut panics = vec![];
    for op in ember_compiler::supported_ops() {
        let forms: [&[&str]; 6] = [
            &[],
            &["x"],
            &["x", "x2"],
            &["", "x"],
            &["x", ""],
            &["x", "", "x2"],
        ];
        for &inputs in &forms {
            let graph = pb::GraphProto {
                name: "g".into(),
                node: vec![node(op.op_type, inputs, "y", vec![])],
                input: vec![value("x", FLOAT, &[1, 4]), value("x2", FLOAT, &[1, 4])],
                output: vec![value("y", FLOAT, &[1, 4])],
                ..Default::default()
            };
            let bytes = onnx::model(graph, 18);
            let r = std::panic::catch_unwind(|| {
                ember_compiler::compile(&bytes, &Options::default()).map(|_| ())
            });
            match r {
                Err(_) => panics.push(format!("{} with inputs {inputs:?}", op.op_type)),
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    assert!(!msg.contains("internal error"), "{}: {msg}", op.op_type);
                }
                Ok(Ok(())) => {}
            }
        }
    }
    assert!(panics.is_empty(), "panicked: {panics:?}");
}

/// Dimensions the blob's 32-bit fields cannot hold are refused by name,
/// not truncated (issue 24: `[1, 4294967300]` compiled to `[1, 4]`,
/// `[1, 2^40]` to `[1, 0]`, a Pad of 2^40 to an identity).
#[test]
fn dimensions_past_32_bits_are_refused() {
    for dims in [[1, 4_294_967_300], [1, 1 << 40], [1 << 31, 3]] {
        let msg = compile_err(&one_node_model("Relu", &dims)).to_string();
        assert!(msg.contains("at most 4 GiB"), "{dims:?}: {msg}");
    }
    // The same through a fixed symbolic dimension (`--shape x=4294967297x4`).
    let opts = Options {
        input_shapes: [("x".to_string(), vec![4_294_967_297, 4])]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let msg = ember_compiler::compile(&one_node_model("Relu", &[-1, 4]), &opts)
        .expect_err("must not compile")
        .to_string();
    assert!(msg.contains("at most 4 GiB"), "{msg}");
    // A Pad that makes a tensor of 2^40 elements.
    use ember_tests::onnx::{self, integers, node, value, FLOAT, INT64};
    let graph = tract_onnx::pb::GraphProto {
        name: "g".into(),
        node: vec![node("Pad", &["x", "pads"], "y", vec![])],
        initializer: vec![integers("pads", INT64, &[4], vec![0, 0, 0, 1 << 40])],
        input: vec![value("x", FLOAT, &[1, 4])],
        output: vec![value("y", FLOAT, &[1, (1 << 40) + 4])],
        ..Default::default()
    };
    let msg = compile_err(&onnx::model(graph, 18)).to_string();
    assert!(msg.contains("at most 4 GiB"), "{msg}");
}

/// Inconsistent models issue 24 found accepted are one-line errors: a
/// convolution bias of the wrong length, `group = 0`, an opset Ember does
/// not know, two graph inputs of one name.
#[test]
fn inconsistent_models_are_refused_by_name() {
    use ember_tests::onnx::{self, floats, node, value, FLOAT};
    use tract_onnx::pb;
    let conv = |bias: usize, group: i64, opset: i64, twice: bool| {
        let mut input = vec![value("x", FLOAT, &[1, 2, 5, 5])];
        if twice {
            input.push(value("x", FLOAT, &[1, 2, 5, 5]));
        }
        let graph = pb::GraphProto {
            name: "g".into(),
            node: vec![node(
                "Conv",
                &["x", "w", "b"],
                "y",
                vec![onnx::int("group", group)],
            )],
            initializer: vec![
                floats("w", &[3, 2, 3, 3], vec![0.1; 54]),
                floats("b", &[bias as i64], vec![0.5; bias]),
            ],
            input,
            output: vec![value("y", FLOAT, &[1, 3, 3, 3])],
            ..Default::default()
        };
        onnx::model(graph, opset)
    };
    assert!(ember_compiler::compile(&conv(3, 1, 13, false), &Options::default()).is_ok());
    let cases = [
        (
            conv(5, 1, 13, false),
            "bias of 5 values for 3 output channels",
        ),
        (conv(3, 0, 13, false), "group 0"),
        (conv(3, 1, 99, false), "opset 99"),
        (conv(3, 1, 13, true), "graph input 'x' is declared twice"),
    ];
    for (bytes, needle) in cases {
        let e = compile_err(&bytes);
        let msg = e.to_string();
        assert!(msg.contains(needle), "{needle}: {msg}");
        assert!(!msg.contains('\n') && !msg.contains("internal"), "{msg}");
    }
}

/// A zero, negative or non-finite quantization scale is named as such
/// (issue 24: a zero scale was reported as "quantize output must be
/// quantized i8/u8").
#[test]
fn bad_quantization_scales_are_named() {
    use ember_tests::onnx::{self, floats, integers, node, value, FLOAT, INT8};
    use tract_onnx::pb;
    for (s_in, s_out) in [(0.05, 0.0), (0.0, 0.05), (0.05, -1.0), (f32::NAN, 0.05)] {
        let graph = pb::GraphProto {
            name: "g".into(),
            node: vec![
                node("QuantizeLinear", &["x", "s_in", "z"], "q", vec![]),
                node("DequantizeLinear", &["q", "s_in", "z"], "d", vec![]),
                node("Relu", &["d"], "r", vec![]),
                node("QuantizeLinear", &["r", "s_out", "z"], "y", vec![]),
            ],
            initializer: vec![
                floats("s_in", &[], vec![s_in]),
                floats("s_out", &[], vec![s_out]),
                integers("z", INT8, &[], vec![0]),
            ],
            input: vec![value("x", FLOAT, &[1, 4])],
            output: vec![value("y", INT8, &[1, 4])],
            ..Default::default()
        };
        let msg = compile_err(&onnx::model(graph, 13)).to_string();
        assert!(
            msg.contains("must be positive and finite"),
            "{s_in} {s_out}: {msg}"
        );
    }
}

/// Constants folded at compile time have a budget checked before anything
/// is allocated (issue 24: `ConstantOfShape [50000, 10000, 2, 3]` and
/// `Range 0..2^40` aborted on allocation).
#[test]
fn huge_folded_constants_are_refused_at_once() {
    use ember_tests::onnx::{self, floats, integers, node, value, FLOAT, INT64};
    use tract_onnx::pb;
    let model = |nodes: Vec<pb::NodeProto>, initializer: Vec<pb::TensorProto>| {
        onnx::model(
            pb::GraphProto {
                name: "g".into(),
                node: nodes,
                initializer,
                input: vec![value("x", FLOAT, &[1, 4])],
                output: vec![value("y", FLOAT, &[1, 4])],
                ..Default::default()
            },
            13,
        )
    };
    let cases = [
        model(
            vec![
                node("ConstantOfShape", &["shape"], "c", vec![]),
                node("Add", &["x", "c"], "y", vec![]),
            ],
            vec![integers("shape", INT64, &[4], vec![50000, 10000, 2, 3])],
        ),
        model(
            vec![
                node("Range", &["a", "b", "d"], "c", vec![]),
                node("Add", &["x", "c"], "y", vec![]),
            ],
            vec![
                floats("a", &[], vec![0.0]),
                floats("b", &[], vec![(1u64 << 40) as f32]),
                floats("d", &[], vec![1.0]),
            ],
        ),
        model(
            vec![
                node("Expand", &["a", "shape"], "c", vec![]),
                node("Add", &["x", "c"], "y", vec![]),
            ],
            vec![
                floats("a", &[], vec![1.0]),
                integers("shape", INT64, &[3], vec![100000, 100000, 100]),
            ],
        ),
    ];
    for bytes in cases {
        let t = std::time::Instant::now();
        let msg = compile_err(&bytes).to_string();
        assert!(msg.contains("the compiler folds at most"), "{msg}");
        assert!(t.elapsed().as_secs() < 2, "{:?}", t.elapsed());
    }
}

/// The plan checks (what makes running a blob memory-safe) name each way a
/// plan can be wrong, on a blob whose checksum is right: the loader refuses
/// a tensor written by two ops, an op reading a tensor before any op writes
/// it, and every recorded lifetime that is not the truth; binding to an
/// arena refuses two tensors alive at once in the same bytes.
#[test]
fn bad_arena_plans_are_refused() {
    use ember_runtime::format::{OP_RECORD_BYTES, TENSOR_RECORD_BYTES};
    let bytes = ember_tests::tiny_onnx(
        &[1, 16],
        &[
            ("Relu", "r0", &["x"], &["a"]),
            ("Relu", "r1", &["a"], &["b"]),
            ("Relu", "r2", &["b"], &["y"]),
        ],
        &["y"],
    );
    let good = ember_compiler::compile(&bytes, &Options::default())
        .unwrap()
        .blob;
    let aligned = AlignedBlob::new(&good);
    let m = Model::load(aligned.bytes()).unwrap();
    let id = |name: &str| {
        (0..m.num_tensors() as u32)
            .find(|&t| m.tensor(t).unwrap().name == name)
            .unwrap()
    };
    let (x, a, b) = (id("x"), id("a"), id("b"));
    assert_eq!(m.num_ops(), 3);
    let tensors = u32_of(&good, 28);
    let ops = u32_of(&good, 36);
    let operands = u32_of(&good, 60);
    // Operand slot `k` of op `o` (its inputs, then its output).
    let operand = |o: usize, k: usize| {
        let first = u32_of(&good, ops + o * OP_RECORD_BYTES + 8);
        operands + 4 * (first + k)
    };
    let edit = |at: usize, v: u32| {
        let mut b2 = good.clone();
        set_u32(&mut b2, at, v);
        fix_crc(&mut b2);
        b2
    };
    let rec = |t: u32, field: usize| tensors + t as usize * TENSOR_RECORD_BYTES + field;
    let x_off = u32_of(&good, rec(x, 28)) as u32;
    // Each edit with the reasons the loader may give (which of several
    // broken facts it meets first depends on the tensors' order).
    let cases: [(Vec<u8>, &[&str]); 7] = [
        // Op 1 writes `a` again (and so no op writes `b`, which op 2 reads).
        (
            edit(operand(1, 1), a),
            &[
                "tensor written twice",
                "reads an arena tensor before it is written",
            ],
        ),
        // Op 0 reads `b`, which op 1 writes.
        (
            edit(operand(0, 0), b),
            &["reads an arena tensor before it is written"],
        ),
        // Lifetimes that lie: `a` said to be born before op 0 writes it, or
        // after; said to die before op 1 reads it, or after its last use;
        // `x` said to be nothing's.
        (
            edit(rec(a, 56), 0),
            &["tensor written twice", "graph input"],
        ),
        (edit(rec(a, 56), 2), &["tensor written twice"]),
        (
            edit(rec(a, 60), 1),
            &["reads a tensor after its recorded lifetime ends"],
        ),
        (
            edit(rec(a, 60), 3),
            &["recorded lifetime does not end at the tensor's last use"],
        ),
        (
            {
                let mut b2 = good.clone();
                set_u32(&mut b2, rec(x, 56), u32::MAX);
                set_u32(&mut b2, rec(x, 60), u32::MAX);
                fix_crc(&mut b2);
                b2
            },
            &["graph input's recorded lifetime does not start at step 0"],
        ),
    ];
    for (blob, reasons) in cases {
        let e = Model::load(AlignedBlob::new(&blob).bytes())
            .err()
            .unwrap_or_else(|| panic!("{reasons:?}: loaded"));
        let reason = e.to_string();
        assert!(
            reasons.iter().any(|r| reason.contains(r)),
            "{reasons:?}: {reason}"
        );
    }
    // `a` moved onto `x`: both live at op 0. The lifetimes are true, so the
    // blob loads; binding it to an arena finds the shared bytes.
    let moved = edit(rec(a, 28), x_off);
    let blob = AlignedBlob::new(&moved);
    let m = Model::load(blob.bytes()).unwrap();
    let mut arena = ember_compiler::aligned_arena(m.arena_bytes());
    let e = Interpreter::new(&m, arena.bytes_mut()).err().unwrap();
    assert!(
        e.to_string()
            .contains("shares arena bytes with a tensor alive at the same time"),
        "{e}"
    );
    // The untouched plan passes the same check.
    let m = Model::load(aligned.bytes()).unwrap();
    assert!(Interpreter::new(&m, arena.bytes_mut()).is_ok());
}

/// A 10,000-op graph loads, binds to its arena and runs right: loading is
/// linear in the ops (it was cubic: 2,000 ops took 84 s), so a long blob is
/// no denial of service at boot.
#[test]
fn ten_thousand_op_chain_loads_and_runs() {
    const N: usize = 10_000;
    let names: Vec<String> = (0..=N)
        .map(|i| match i {
            0 => "x".into(),
            i if i == N => "y".into(),
            i => format!("t{i}"),
        })
        .collect();
    let ops: Vec<(String, [&str; 1], [&str; 1])> = (0..N)
        .map(|i| (format!("r{i}"), [&names[i][..]], [&names[i + 1][..]]))
        .collect();
    let nodes: Vec<(&str, &str, &[&str], &[&str])> = ops
        .iter()
        .map(|(n, i, o)| ("Relu", &n[..], &i[..], &o[..]))
        .collect();
    let bytes = ember_tests::tiny_onnx(&[1, 8], &nodes, &["y"]);
    let blob = ember_compiler::compile(&bytes, &Options::default())
        .unwrap()
        .blob;
    let aligned = AlignedBlob::new(&blob);
    let m = Model::load(aligned.bytes()).unwrap();
    assert_eq!(m.num_ops(), N);
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    let x = [-3.0f32, -1.5, 0.0, 0.5, 1.0, 2.0, -0.25, 7.0];
    it.input_mut(0).unwrap().copy_from(&x).unwrap();
    it.invoke().unwrap();
    let y: Vec<f32> = it
        .output(0)
        .unwrap()
        .bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(y, x.map(|v| v.max(0.0)));
}

/// The compiler's memory budget (`Options::max_memory`, the CLI's
/// `--max-memory`): constants it would fold, and the constants of the
/// result, beyond it are refused before they are allocated; the same model
/// compiles under a budget that holds it.
#[test]
fn compiler_memory_budget_is_enforced() {
    use ember_tests::onnx::{self, integers, node, value, FLOAT, INT64};
    use tract_onnx::pb;
    // A [1000, 1000] ConstantOfShape broadcast into the output: 8 MB folded
    // (counted at 8 bytes an element).
    let bytes = onnx::model(
        pb::GraphProto {
            name: "g".into(),
            node: vec![
                node("ConstantOfShape", &["shape"], "c", vec![]),
                node("Add", &["x", "c"], "y", vec![]),
            ],
            initializer: vec![integers("shape", INT64, &[2], vec![1000, 1000])],
            input: vec![value("x", FLOAT, &[1, 1000])],
            output: vec![value("y", FLOAT, &[1000, 1000])],
            ..Default::default()
        },
        13,
    );
    let with = |budget: usize| Options {
        max_memory: Some(budget),
        ..Default::default()
    };
    assert!(ember_compiler::compile(&bytes, &with(64 << 20)).is_ok());
    let e = ember_compiler::compile(&bytes, &with(4 << 20)).unwrap_err();
    assert!(e.to_string().contains("goes over the memory budget"), "{e}");
    // A 4 MB weight: compiled under 16M, refused under 2M.
    let weight = onnx::model(
        pb::GraphProto {
            name: "g".into(),
            node: vec![node("Add", &["x", "w"], "y", vec![])],
            initializer: vec![ember_tests::onnx::floats(
                "w",
                &[1000, 1000],
                vec![0.5; 1_000_000],
            )],
            input: vec![value("x", FLOAT, &[1, 1000])],
            output: vec![value("y", FLOAT, &[1000, 1000])],
            ..Default::default()
        },
        13,
    );
    assert!(ember_compiler::compile(&weight, &with(16 << 20)).is_ok());
    let e = ember_compiler::compile(&weight, &with(2 << 20)).unwrap_err();
    assert!(e.to_string().contains("the model's constants needs"), "{e}");
}
