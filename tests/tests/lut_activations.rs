//! int8 QDQ activations run as 256-entry tables the compiler computes: each
//! of the 256 inputs must give exactly the float function of its
//! dequantized value, quantized once with the model's rounding (half to
//! even for onnxruntime models, half away from zero for TFLite ones), and
//! the function itself must be within one output step of f64 math. After
//! an int8 convolution the table is fused into it, with the same bytes.

use ember_compiler::{aligned_arena, AlignedBlob, Options};
use ember_runtime::kernels::unary::{UnaryFn, UnaryOp};
use ember_runtime::{Interpreter, Model, OpCode, Rounding};
use prost::Message;
use tract_onnx::pb;

const IN: (f32, i8) = (0.05, 3);
const OUT: (f32, i8) = (1.0 / 128.0, -20);

fn scalar(name: &str, v: f32) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        data_type: 1,
        float_data: vec![v],
        ..Default::default()
    }
}

fn zero_point(name: &str, v: i8) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        data_type: 3,
        int32_data: vec![v as i32],
        ..Default::default()
    }
}

/// `x (int8) → DequantizeLinear → op → QuantizeLinear → y (int8)`.
fn qdq_model(op: &str) -> Vec<u8> {
    let node = |op: &str, i: &[&str], o: &str| pb::NodeProto {
        op_type: op.into(),
        name: format!("{op}_node"),
        input: i.iter().map(|s| s.to_string()).collect(),
        output: vec![o.into()],
        ..Default::default()
    };
    let io = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 3,
                shape: Some(pb::TensorShapeProto {
                    dim: [1, 256]
                        .iter()
                        .map(|&d| pb::tensor_shape_proto::Dimension {
                            value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![
            node("DequantizeLinear", &["x", "s_in", "z_in"], "xf"),
            node(op, &["xf"], "yf"),
            node("QuantizeLinear", &["yf", "s_out", "z_out"], "y"),
        ],
        initializer: vec![
            scalar("s_in", IN.0),
            zero_point("z_in", IN.1),
            scalar("s_out", OUT.0),
            zero_point("z_out", OUT.1),
        ],
        input: vec![io("x")],
        output: vec![io("y")],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 14,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

fn run(op: &str, rounding: Rounding) -> Vec<i8> {
    let opts = Options {
        rounding: Some(rounding),
        ..Default::default()
    };
    let c = ember_compiler::compile(&qdq_model(op), &opts).unwrap_or_else(|e| panic!("{op}: {e}"));
    let blob = AlignedBlob::new(&c.blob);
    let m = Model::load(blob.bytes()).unwrap();
    let ops: Vec<OpCode> = (0..m.num_ops() as u32)
        .map(|i| m.op(i).unwrap().opcode)
        .collect();
    assert_eq!(
        ops,
        [OpCode::Lut],
        "{op}: one table lookup, nothing in float"
    );
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    let x: Vec<i8> = (-128..=127).collect();
    it.input_mut(0).unwrap().copy_from(&x).unwrap();
    it.invoke().unwrap();
    it.output(0).unwrap().as_i8().unwrap().to_vec()
}

/// An operator, its runtime function, and the same in f64.
type Case = (&'static str, UnaryOp, fn(f64) -> f64);

#[test]
fn int8_tables_round_the_float_function_once() {
    let cases: [Case; 4] = [
        ("Sigmoid", UnaryOp::Sigmoid, |x| 1.0 / (1.0 + (-x).exp())),
        ("Tanh", UnaryOp::Tanh, f64::tanh),
        ("HardSwish", UnaryOp::HardSwish, |x| {
            x * (x + 3.0).clamp(0.0, 6.0) / 6.0
        }),
        ("Exp", UnaryOp::Exp, f64::exp),
    ];
    for (op, u, exact) in cases {
        for rounding in [Rounding::OnnxFloat, Rounding::TfliteFixedPoint] {
            let got = run(op, rounding);
            let f = UnaryFn::of(u);
            for (k, q) in (-128..=127i32).enumerate() {
                let x = (q - IN.1 as i32) as f32 * IN.0;
                let v = f.at(x) / OUT.0;
                let r = match rounding {
                    Rounding::OnnxFloat => v.round_ties_even(),
                    _ => v.round(),
                };
                let want = (r as i32 + OUT.1 as i32).clamp(-128, 127) as i8;
                assert_eq!(got[k], want, "{op} {rounding:?} at q = {q}");
                let ideal = exact(x as f64) / OUT.0 as f64 + OUT.1 as f64;
                let ideal = ideal.clamp(-128.0, 127.0);
                assert!(
                    (got[k] as f64 - ideal).abs() <= 1.0,
                    "{op} at q = {q}: {} vs {ideal}",
                    got[k]
                );
            }
        }
    }
}

/// `x → DQ → Conv (int8 filter, per channel) → Q → DQ → op → Q → y` on
/// `[1, 4, 6, 6]`, a regular convolution (8 filters) or a depthwise one;
/// with `expose_mid` the convolution's own output is a graph output too,
/// which keeps the table a separate op.
fn conv_then(op: &str, depthwise: bool, expose_mid: bool) -> Vec<u8> {
    let (co, ci_g, group) = if depthwise { (4, 1, 4) } else { (8, 4, 1) };
    let dims = |d: &[i64]| {
        Some(pb::TensorShapeProto {
            dim: d
                .iter()
                .map(|&v| pb::tensor_shape_proto::Dimension {
                    value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)),
                    ..Default::default()
                })
                .collect(),
        })
    };
    let io = |name: &str, d: &[i64]| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 3,
                shape: dims(d),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = |op: &str, i: &[&str], o: &str, attribute: Vec<pb::AttributeProto>| pb::NodeProto {
        op_type: op.into(),
        name: format!("{op}_{o}"),
        input: i.iter().map(|s| s.to_string()).collect(),
        output: vec![o.into()],
        attribute,
        ..Default::default()
    };
    let ints = |name: &str, v: Vec<i64>| pb::AttributeProto {
        name: name.into(),
        ints: v,
        r#type: 7,
        ..Default::default()
    };
    let int = |name: &str, v: i64| pb::AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2,
        ..Default::default()
    };
    let w = pb::TensorProto {
        name: "wq".into(),
        data_type: 3,
        dims: vec![co, ci_g, 3, 3],
        int32_data: (0..co * ci_g * 9)
            .map(|i| ((i * 37 + 11) % 255 - 127) as i32)
            .collect(),
        ..Default::default()
    };
    let per_channel = |name: &str, data_type: i32, v: Vec<f32>, z: bool| pb::TensorProto {
        name: name.into(),
        data_type,
        dims: vec![co],
        float_data: if z { vec![] } else { v.clone() },
        int32_data: if z { vec![0; co as usize] } else { vec![] },
        ..Default::default()
    };
    let ws: Vec<f32> = (0..co).map(|c| 0.004 + 0.001 * c as f32).collect();
    let bias = pb::TensorProto {
        name: "bq".into(),
        data_type: 6,
        dims: vec![co],
        int32_data: (0..co).map(|c| (c as i32 - 3) * 150).collect(),
        ..Default::default()
    };
    let mut outputs = vec![io("y", &[1, co, 6, 6])];
    if expose_mid {
        outputs.push(io("mid", &[1, co, 6, 6]));
    }
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![
            node("DequantizeLinear", &["x", "s_in", "z_in"], "xf", vec![]),
            node(
                "DequantizeLinear",
                &["wq", "ws", "wz"],
                "w",
                vec![int("axis", 0)],
            ),
            node(
                "DequantizeLinear",
                &["bq", "bs", "bz"],
                "b",
                vec![int("axis", 0)],
            ),
            node(
                "Conv",
                &["xf", "w", "b"],
                "c",
                vec![ints("pads", vec![1, 1, 1, 1]), int("group", group)],
            ),
            node("QuantizeLinear", &["c", "s_mid", "z_mid"], "mid", vec![]),
            node(
                "DequantizeLinear",
                &["mid", "s_mid", "z_mid"],
                "midf",
                vec![],
            ),
            node(op, &["midf"], "yf", vec![]),
            node("QuantizeLinear", &["yf", "s_out", "z_out"], "y", vec![]),
        ],
        initializer: vec![
            w,
            per_channel("ws", 1, ws.clone(), false),
            per_channel("wz", 3, vec![], true),
            bias,
            per_channel("bs", 1, ws.iter().map(|w| w * IN.0).collect(), false),
            per_channel("bz", 6, vec![], true),
            scalar("s_in", IN.0),
            zero_point("z_in", IN.1),
            scalar("s_mid", 0.03),
            zero_point("z_mid", 5),
            scalar("s_out", OUT.0),
            zero_point("z_out", OUT.1),
        ],
        input: vec![io("x", &[1, 4, 6, 6])],
        output: outputs,
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 14,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Compiles for `target` and runs on a fixed input: the opcodes and the
/// first output.
fn run_model(bytes: &[u8], target: &str) -> (Vec<OpCode>, Vec<i8>) {
    let opts = Options {
        target: target.parse().unwrap(),
        ..Default::default()
    };
    let c = ember_compiler::compile(bytes, &opts).unwrap();
    let blob = AlignedBlob::new(&c.blob);
    let m = Model::load(blob.bytes()).unwrap();
    let ops = (0..m.num_ops() as u32)
        .map(|i| m.op(i).unwrap().opcode)
        .collect();
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    let x: Vec<i8> = (0..144).map(|i| ((i * 53 + 7) % 256 - 128) as i8).collect();
    it.input_mut(0).unwrap().copy_from(&x).unwrap();
    it.invoke().unwrap();
    (ops, it.output(0).unwrap().as_i8().unwrap().to_vec())
}

#[test]
fn tables_fuse_into_int8_convolutions_with_the_same_bytes() {
    for op in ["Sigmoid", "HardSwish", "Tanh"] {
        for depthwise in [false, true] {
            let (_, separate) = run_model(&conv_then(op, depthwise, true), "reference");
            for target in ["reference", "generic", "cortex-m55", "cortex-a53"] {
                let (ops, fused) = run_model(&conv_then(op, depthwise, false), target);
                assert!(
                    !ops.contains(&OpCode::Lut)
                        && ops
                            .iter()
                            .any(|o| matches!(o, OpCode::Conv2d | OpCode::DepthwiseConv2d)),
                    "{op} {target}: {ops:?}"
                );
                assert_eq!(fused, separate, "{op} depthwise={depthwise} {target}");
            }
            let (ops, _) = run_model(&conv_then(op, depthwise, true), "generic");
            assert!(
                ops.contains(&OpCode::Lut),
                "a read intermediate stays: {ops:?}"
            );
        }
    }
}
