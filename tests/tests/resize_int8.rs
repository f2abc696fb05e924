//! int8 QDQ Resize: nearest moves the integers, interpolation (linear,
//! cubic, antialiased; up and down; every coordinate mode; crop-and-resize
//! extrapolation; another output quantization) runs as one int8 op that
//! gives the same bytes as the dequantize → f32 resize → quantize chain the
//! graph spells out (checked against that chain, which the compiler keeps
//! when the f32 result is also a graph output).

use ember_compiler::{aligned_arena, AlignedBlob, Options};
use ember_runtime::{DType, Interpreter, Model, OpCode};
use ember_tests::onnx::{self, floats, integers, node, value, FLOAT, INT64, INT8};
use tract_onnx::pb;

const X: [i64; 4] = [1, 3, 5, 7];

/// `x → DQ → Resize(sizes) → Q → y`; with `keep_float` the Resize's f32
/// result is a second graph output.
fn model(attrs: &[(&str, &str)], out: [i64; 2], yq: (f32, i32), keep_float: bool) -> Vec<u8> {
    let y = [1, 3, out[0], out[1]];
    let mut attribute: Vec<pb::AttributeProto> = attrs
        .iter()
        .filter(|(k, _)| *k != "antialias")
        .map(|(k, v)| onnx::string(k, v))
        .collect();
    if attrs.iter().any(|a| a.1 == "tf_crop_and_resize") {
        attribute.push(onnx::float("extrapolation_value", 0.37));
    }
    if attrs.iter().any(|a| a.0 == "antialias") {
        attribute.push(onnx::int("antialias", 1));
    }
    let mut outputs = vec![value("y", INT8, &y)];
    if keep_float {
        outputs.push(value("r", FLOAT, &y));
    }
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![
            node("DequantizeLinear", &["x", "xs", "xz"], "xf", vec![]),
            node("Resize", &["xf", "roi", "", "sizes"], "r", attribute),
            node("QuantizeLinear", &["r", "ys", "yz"], "y", vec![]),
        ],
        initializer: vec![
            floats("xs", &[], vec![0.05]),
            integers("xz", INT8, &[], vec![3]),
            floats("ys", &[], vec![yq.0]),
            integers("yz", INT8, &[], vec![yq.1 as i64]),
            floats("roi", &[8], vec![0., 0., 0.1, 0.2, 1., 1., 0.8, 0.9]),
            integers("sizes", INT64, &[4], vec![1, 3, out[0], out[1]]),
        ],
        input: vec![value("x", INT8, &X)],
        output: outputs,
        ..Default::default()
    };
    onnx::model(graph, 18)
}

/// Compiles and runs: the ops (with their output types) and output 0.
fn run(bytes: &[u8]) -> (Vec<(OpCode, DType)>, Vec<i8>) {
    let c = ember_compiler::compile(bytes, &Options::default()).unwrap();
    let blob = AlignedBlob::new(&c.blob);
    let m = Model::load(blob.bytes()).unwrap();
    let ops = (0..m.num_ops() as u32)
        .map(|i| {
            let op = m.op(i).unwrap();
            (op.opcode, m.tensor(op.output).unwrap().dtype)
        })
        .collect();
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    let x: Vec<i8> = (0..105).map(|i| ((i * 71 + 5) % 256 - 128) as i8).collect();
    it.input_mut(0).unwrap().copy_from(&x).unwrap();
    it.invoke().unwrap();
    (ops, it.output(0).unwrap().as_i8().unwrap().to_vec())
}

#[test]
fn int8_resize_is_one_int8_op_with_the_bytes_of_the_qdq_chain() {
    let modes: &[&[(&str, &str)]] = &[
        &[("mode", "linear")],
        &[
            ("mode", "linear"),
            ("coordinate_transformation_mode", "align_corners"),
        ],
        &[
            ("mode", "linear"),
            ("coordinate_transformation_mode", "asymmetric"),
        ],
        &[
            ("mode", "linear"),
            ("coordinate_transformation_mode", "pytorch_half_pixel"),
        ],
        &[
            ("mode", "linear"),
            ("coordinate_transformation_mode", "tf_crop_and_resize"),
        ],
        &[("mode", "cubic")],
        &[("mode", "linear"), ("antialias", "1")],
        &[("mode", "nearest")],
    ];
    let mut cases = 0;
    for attrs in modes {
        for out in [[10, 14], [3, 4], [7, 20]] {
            let nearest = attrs[0].1 == "nearest";
            // Nearest keeps the quantization; interpolation may change it.
            let yqs: &[(f32, i32)] = if nearest {
                &[(0.05, 3)]
            } else {
                &[(0.05, 3), (0.031, -9)]
            };
            for &yq in yqs {
                let (ops, fused) = run(&model(attrs, out, yq, false));
                assert_eq!(
                    ops,
                    [(OpCode::Resize, DType::I8)],
                    "{attrs:?} {out:?}: one int8 op"
                );
                let (ops, chain) = run(&model(attrs, out, yq, true));
                assert!(
                    ops.iter()
                        .any(|o| o.0 == OpCode::Resize && o.1 == DType::F32)
                        || nearest,
                    "{attrs:?}: the chain stays in f32: {ops:?}"
                );
                assert_eq!(fused, chain, "{attrs:?} {out:?} {yq:?}");
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 45);
}
