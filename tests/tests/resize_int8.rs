//! int8 QDQ Resize: nearest moves the integers, interpolation (linear,
//! cubic, antialiased; up and down; every coordinate mode; crop-and-resize
//! extrapolation; another output quantization) runs as one int8 op that
//! gives the same bytes as the dequantize → f32 resize → quantize chain the
//! graph spells out (checked against that chain, which the compiler keeps
//! when the f32 result is also a graph output).

use ember_compiler::{aligned_arena, AlignedBlob, Options};
use ember_runtime::{DType, Interpreter, Model, OpCode};
use prost::Message;
use tract_onnx::pb;

const X: [i64; 4] = [1, 3, 5, 7];

fn io(name: &str, elem_type: i32, d: &[i64]) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape: Some(pb::TensorShapeProto {
                    dim: d
                        .iter()
                        .map(|&v| pb::tensor_shape_proto::Dimension {
                            value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)),
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

fn floats(name: &str, dims: Vec<i64>, v: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        data_type: 1,
        dims,
        float_data: v,
        ..Default::default()
    }
}

fn zero_point(name: &str, v: i32) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        data_type: 3,
        int32_data: vec![v],
        ..Default::default()
    }
}

/// `x → DQ → Resize(sizes) → Q → y`; with `keep_float` the Resize's f32
/// result is a second graph output.
fn model(attrs: &[(&str, &str)], out: [i64; 2], yq: (f32, i32), keep_float: bool) -> Vec<u8> {
    let y = [1, 3, out[0], out[1]];
    let mut attribute: Vec<pb::AttributeProto> = attrs
        .iter()
        .map(|(k, v)| pb::AttributeProto {
            name: (*k).into(),
            s: v.as_bytes().to_vec(),
            r#type: 3,
            ..Default::default()
        })
        .collect();
    if attrs.iter().any(|a| a.1 == "tf_crop_and_resize") {
        attribute.push(pb::AttributeProto {
            name: "extrapolation_value".into(),
            f: 0.37,
            r#type: 1,
            ..Default::default()
        });
    }
    if attrs.iter().any(|a| a.0 == "antialias") {
        attribute.retain(|a| a.name != "antialias");
        attribute.push(pb::AttributeProto {
            name: "antialias".into(),
            i: 1,
            r#type: 2,
            ..Default::default()
        });
    }
    let node = |op: &str, i: &[&str], o: &str, attribute: Vec<pb::AttributeProto>| pb::NodeProto {
        op_type: op.into(),
        name: format!("{op}_{o}"),
        input: i.iter().map(|s| s.to_string()).collect(),
        output: vec![o.into()],
        attribute,
        ..Default::default()
    };
    let mut outputs = vec![io("y", 3, &y)];
    if keep_float {
        outputs.push(io("r", 1, &y));
    }
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![
            node("DequantizeLinear", &["x", "xs", "xz"], "xf", vec![]),
            node("Resize", &["xf", "roi", "", "sizes"], "r", attribute),
            node("QuantizeLinear", &["r", "ys", "yz"], "y", vec![]),
        ],
        initializer: vec![
            floats("xs", vec![], vec![0.05]),
            zero_point("xz", 3),
            floats("ys", vec![], vec![yq.0]),
            zero_point("yz", yq.1),
            floats("roi", vec![8], vec![0., 0., 0.1, 0.2, 1., 1., 0.8, 0.9]),
            pb::TensorProto {
                name: "sizes".into(),
                data_type: 7,
                dims: vec![4],
                int64_data: vec![1, 3, out[0], out[1]],
                ..Default::default()
            },
        ],
        input: vec![io("x", 3, &X)],
        output: outputs,
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 18,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
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
        &[("mode", "linear"), ("coordinate_transformation_mode", "align_corners")],
        &[("mode", "linear"), ("coordinate_transformation_mode", "asymmetric")],
        &[("mode", "linear"), ("coordinate_transformation_mode", "pytorch_half_pixel")],
        &[("mode", "linear"), ("coordinate_transformation_mode", "tf_crop_and_resize")],
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
                    ops.iter().any(|o| o.0 == OpCode::Resize && o.1 == DType::F32) || nearest,
                    "{attrs:?}: the chain stays in f32: {ops:?}"
                );
                assert_eq!(fused, chain, "{attrs:?} {out:?} {yq:?}");
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 45);
}
