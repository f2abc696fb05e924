//! Helpers shared by Ember's end-to-end tests: where the shared data lives,
//! reading reference vectors, compiling and running models row by row,
//! building small ONNX models ([`onnx`]).

pub mod onnx;
pub mod quantization;
pub mod streaming;
pub mod voice;

use std::path::PathBuf;

use ember_compiler::{aligned_arena, AlignedBlob, Options};
use ember_runtime::{Interpreter, Model};
use ndarray::ArrayD;
use ndarray_npy::{NpzReader, ReadableElement};

/// The shared data folder: `$EMBER_SHARED`, or `../shared` beside the
/// workspace. Panics with a clear message if it is missing (tests need it).
pub fn shared_dir() -> PathBuf {
    let p = std::env::var_os("EMBER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        p.join("README.md").exists(),
        "shared data not found at {} (set EMBER_SHARED)",
        p.display()
    );
    p
}

/// Path of a MLPerf Tiny model file, e.g. `mlperf("kws", "kws_int8_qdq.onnx")`.
pub fn mlperf(model: &str, file: &str) -> PathBuf {
    shared_dir()
        .join("models/mlperf-tiny")
        .join(model)
        .join(file)
}

/// Reads array `key` of `vectors/<model>_testvectors.npz`.
pub fn vectors<T: ReadableElement>(model: &str, key: &str) -> ArrayD<T> {
    let p = shared_dir().join(format!("vectors/{model}_testvectors.npz"));
    let f = std::fs::File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut npz = NpzReader::new(f).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    npz.by_name(key)
        .or_else(|_| npz.by_name(&format!("{key}.npy")))
        .unwrap_or_else(|e| panic!("{} [{key}]: {e}", p.display()))
}

/// The float model inputs of `vectors/<model>_testvectors.npz`, one row per
/// model invocation (sww: the 30-frame windows of its frames).
pub fn float_inputs(model: &str) -> ArrayD<f32> {
    match model {
        "kws" => vectors(model, "mfcc_float"),
        "sww" => {
            let frames: ArrayD<f32> = vectors("sww", "lfbe_float");
            let n_win = frames.shape()[0] - 29;
            let flat: Vec<f32> = frames.iter().copied().collect();
            let mut w = Vec::with_capacity(n_win * 1200);
            for i in 0..n_win {
                w.extend_from_slice(&flat[i * 40..(i + 30) * 40]);
            }
            ArrayD::from_shape_vec(ndarray::IxDyn(&[n_win, 30, 1, 40]), w).expect("sww windows")
        }
        _ => vectors(model, "input_float"),
    }
}

/// Row names of `vectors/<model>_testvectors.json` (e.g. the clip of each
/// kws row), in row order.
pub fn row_names(model: &str) -> Vec<String> {
    let p = shared_dir().join(format!("vectors/{model}_testvectors.json"));
    let idx = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let list = idx
        .split("\"names\"")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("{} has no \"names\" list", p.display()));
    list.split('"')
        .filter(|t| t.chars().any(|c| c.is_alphanumeric()))
        .map(String::from)
        .collect()
}

/// Compiles an ONNX file with default options.
pub fn compile(path: &std::path::Path) -> AlignedBlob {
    let c = ember_compiler::compile_file(path, &Options::default())
        .unwrap_or_else(|e| panic!("compiling {}: {e}", path.display()));
    AlignedBlob::new(&c.blob)
}

/// Runs a single-input, single-output model on every row of `inputs`
/// (rows along axis 0, each reshaped to the model's input shape) and
/// returns the flat outputs, one Vec per row.
pub fn run_rows<I, O>(blob: &AlignedBlob, inputs: &ArrayD<I>) -> Vec<Vec<O>>
where
    I: Copy + bytemuck_like::Elem,
    O: Copy + bytemuck_like::Elem,
{
    let m = Model::load(blob.bytes()).expect("blob loads");
    let mut arena = aligned_arena(m.arena_bytes());
    let mut interp = Interpreter::new(&m, arena.bytes_mut()).expect("arena");
    let rows = inputs.shape()[0];
    let per_row = inputs.len() / rows;
    let flat: Vec<I> = inputs.iter().copied().collect();
    let mut outs = vec![];
    for r in 0..rows {
        let row = &flat[r * per_row..(r + 1) * per_row];
        I::copy_in(&mut interp, row);
        interp.invoke().expect("invoke");
        outs.push(O::copy_out(&interp));
    }
    outs
}

/// Per-dtype glue between test arrays and the interpreter.
pub mod bytemuck_like {
    use ember_runtime::Interpreter;

    /// An element type a test can feed or read.
    pub trait Elem: Sized {
        /// Writes `row` into input 0.
        fn copy_in(interp: &mut Interpreter<'_, '_>, row: &[Self]);
        /// Reads output 0.
        fn copy_out(interp: &Interpreter<'_, '_>) -> Vec<Self>;
    }

    impl Elem for i8 {
        fn copy_in(interp: &mut Interpreter<'_, '_>, row: &[i8]) {
            interp
                .input_mut(0)
                .unwrap()
                .copy_from(row)
                .expect("input dtype/len");
        }
        fn copy_out(interp: &Interpreter<'_, '_>) -> Vec<i8> {
            interp
                .output(0)
                .unwrap()
                .as_i8()
                .expect("i8 output")
                .to_vec()
        }
    }

    impl Elem for f32 {
        fn copy_in(interp: &mut Interpreter<'_, '_>, row: &[f32]) {
            interp
                .input_mut(0)
                .unwrap()
                .copy_from(row)
                .expect("input dtype/len");
        }
        fn copy_out(interp: &Interpreter<'_, '_>) -> Vec<f32> {
            interp
                .output(0)
                .unwrap()
                .as_f32()
                .expect("f32 output")
                .to_vec()
        }
    }
}

/// Index of the largest value.
pub fn argmax<T: PartialOrd + Copy>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Builds a small float ONNX model: graph input `x` of `in_dims` (a
/// negative dim becomes a symbolic one), `nodes` as (op type, node name,
/// inputs, outputs), and the listed graph outputs (same dims as `x`).
pub fn tiny_onnx(
    in_dims: &[i64],
    nodes: &[(&str, &str, &[&str], &[&str])],
    outputs: &[&str],
) -> Vec<u8> {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    use prost::Message;
    use tract_onnx::pb;
    let ty = || {
        Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto {
                    dim: in_dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(if d < 0 {
                                Value::DimParam("batch".into())
                            } else {
                                Value::DimValue(d)
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        })
    };
    let graph = pb::GraphProto {
        node: nodes
            .iter()
            .map(|(op, name, i, o)| pb::NodeProto {
                input: i.iter().map(|s| s.to_string()).collect(),
                output: o.iter().map(|s| s.to_string()).collect(),
                name: name.to_string(),
                op_type: op.to_string(),
                ..Default::default()
            })
            .collect(),
        name: "g".into(),
        input: vec![pb::ValueInfoProto {
            name: "x".into(),
            r#type: ty(),
            ..Default::default()
        }],
        output: outputs
            .iter()
            .map(|o| pb::ValueInfoProto {
                name: o.to_string(),
                r#type: ty(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}
