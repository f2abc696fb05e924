//! Helpers the fuzz targets share: a small deterministic RNG, the shared
//! data folder, tiny ONNX models built in code, and compiling a model into
//! a loaded, bound interpreter's ingredients.

use std::path::PathBuf;

use ember_compiler::{AlignedBlob, Options};
use prost::Message;
use tract_onnx::pb;

/// The largest arena a fuzz target binds (bigger models are skipped: the
/// point is the code paths, not the memory).
pub const MAX_ARENA: usize = 64 << 20;

/// The most multiply-accumulates per invoke a fuzz target runs (a mutated
/// dimension can make a model of billions, which is slow, not wrong: the
/// kws model with a batch of 1,631 took 40 s under the fuzzing build).
pub const MAX_MACS: u64 = 100_000_000;

/// SplitMix64: small, fast, deterministic from the seed libFuzzer gives.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// An element of `v` (`None` when empty).
    pub fn pick<'v, T>(&mut self, v: &'v [T]) -> Option<&'v T> {
        if v.is_empty() {
            None
        } else {
            v.get(self.below(v.len()))
        }
    }
}

/// The shared data folder: `EMBER_SHARED`, else `../shared` beside the
/// repository.
pub fn shared() -> PathBuf {
    std::env::var_os("EMBER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// A graph input or output of element type `elem` (ONNX `TensorProto`
/// data type) and `dims`.
pub fn value_info(name: &str, elem: i32, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node of the default domain.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: format!("{op}_{}", outputs.first().copied().unwrap_or("")),
        op_type: op.into(),
        ..Default::default()
    }
}

/// A scalar initializer: float (`elem` 1) or int8 (`elem` 3) from `value`.
pub fn scalar(name: &str, elem: i32, value: f32) -> pb::TensorProto {
    let raw_data = match elem {
        1 => value.to_le_bytes().to_vec(),
        _ => vec![value as i8 as u8],
    };
    pb::TensorProto {
        name: name.into(),
        data_type: elem,
        raw_data,
        ..Default::default()
    }
}

/// An opset-13 model of `nodes` between `inputs` and `outputs`.
pub fn model(
    nodes: Vec<pb::NodeProto>,
    init: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: init,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A float model: `x` [1, 3, 4] → Relu → Sigmoid → `y`.
pub fn tiny_float() -> Vec<u8> {
    model(
        vec![
            node("Relu", &["x"], &["r"]),
            node("Sigmoid", &["r"], &["y"]),
        ],
        vec![],
        vec![value_info("x", 1, &[1, 3, 4])],
        vec![value_info("y", 1, &[1, 3, 4])],
    )
}

/// An int8 model: `x` int8 [2, 5] → DequantizeLinear → Relu →
/// QuantizeLinear → `y` int8.
pub fn tiny_int8() -> Vec<u8> {
    model(
        vec![
            node("DequantizeLinear", &["x", "s", "z"], &["d"]),
            node("Relu", &["d"], &["r"]),
            node("QuantizeLinear", &["r", "s", "z"], &["y"]),
        ],
        vec![scalar("s", 1, 0.05), scalar("z", 3, -3.0)],
        vec![value_info("x", 3, &[2, 5])],
        vec![value_info("y", 3, &[2, 5])],
    )
}

/// Compiles `onnx` with the default options into an aligned blob; panics
/// with the compiler's message (the harness's own fixed models must
/// compile).
pub fn compile_fixed(onnx: &[u8], what: &str) -> AlignedBlob {
    let c = ember_compiler::compile(onnx, &Options::default())
        .unwrap_or_else(|e| panic!("harness model {what} does not compile: {e}"));
    AlignedBlob::new(&c.blob)
}
