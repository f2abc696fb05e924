//! int8 QDQ activations run as 256-entry tables the compiler computes: each
//! of the 256 inputs must give exactly the float function of its
//! dequantized value, quantized once with the model's rounding (half to
//! even for onnxruntime models, half away from zero for TFLite ones), and
//! the function itself must be within one output step of f64 math.

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
