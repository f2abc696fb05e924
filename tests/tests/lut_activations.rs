//! int8 QDQ activations run as 256-entry tables the compiler computes: each
//! of the 256 inputs must give exactly the float function of its
//! dequantized value, quantized once with the model's rounding (half to
//! even for onnxruntime models, half away from zero for TFLite ones), and
//! the function itself must be within one output step of f64 math. After
//! an int8 convolution the table is fused into it, with the same bytes.

use ember_compiler::{aligned_arena, AlignedBlob, Options};
use ember_runtime::kernels::unary::{UnaryFn, UnaryOp};
use ember_runtime::{Interpreter, Kernel, Model, OpCode, Rounding};
use ember_tests::onnx::{self, floats, integers, node, value, INT32, INT8};
use tract_onnx::pb;

const IN: (f32, i8) = (0.05, 3);
const OUT: (f32, i8) = (1.0 / 128.0, -20);

/// `x (int8) → DequantizeLinear → op → QuantizeLinear → y (int8)`.
fn qdq_model(op: &str) -> Vec<u8> {
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![
            node("DequantizeLinear", &["x", "s_in", "z_in"], "xf", vec![]),
            node(op, &["xf"], "yf", vec![]),
            node("QuantizeLinear", &["yf", "s_out", "z_out"], "y", vec![]),
        ],
        initializer: quant_params(),
        input: vec![value("x", INT8, &[1, 256])],
        output: vec![value("y", INT8, &[1, 256])],
        ..Default::default()
    };
    onnx::model(graph, 14)
}

/// Scales and zero points of the input (`s_in`, `z_in`) and output
/// (`s_out`, `z_out`).
fn quant_params() -> Vec<pb::TensorProto> {
    vec![
        floats("s_in", &[], vec![IN.0]),
        integers("z_in", INT8, &[], vec![IN.1 as i64]),
        floats("s_out", &[], vec![OUT.0]),
        integers("z_out", INT8, &[], vec![OUT.1 as i64]),
    ]
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
    let ws: Vec<f32> = (0..co).map(|c| 0.004 + 0.001 * c as f32).collect();
    let mut outputs = vec![value("y", INT8, &[1, co, 6, 6])];
    if expose_mid {
        outputs.push(value("mid", INT8, &[1, co, 6, 6]));
    }
    let per_channel = vec![onnx::int("axis", 0)];
    let mut initializer = vec![
        integers(
            "wq",
            INT8,
            &[co, ci_g, 3, 3],
            (0..co * ci_g * 9)
                .map(|i| (i * 37 + 11) % 255 - 127)
                .collect(),
        ),
        floats("ws", &[co], ws.clone()),
        integers("wz", INT8, &[co], vec![0; co as usize]),
        integers("bq", INT32, &[co], (0..co).map(|c| (c - 3) * 150).collect()),
        floats("bs", &[co], ws.iter().map(|w| w * IN.0).collect()),
        integers("bz", INT32, &[co], vec![0; co as usize]),
        floats("s_mid", &[], vec![0.03]),
        integers("z_mid", INT8, &[], vec![5]),
    ];
    initializer.extend(quant_params());
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![
            node("DequantizeLinear", &["x", "s_in", "z_in"], "xf", vec![]),
            node(
                "DequantizeLinear",
                &["wq", "ws", "wz"],
                "w",
                per_channel.clone(),
            ),
            node("DequantizeLinear", &["bq", "bs", "bz"], "b", per_channel),
            node(
                "Conv",
                &["xf", "w", "b"],
                "c",
                vec![onnx::ints("pads", &[1, 1, 1, 1]), onnx::int("group", group)],
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
        initializer,
        input: vec![value("x", INT8, &[1, 4, 6, 6])],
        output: outputs,
        ..Default::default()
    };
    onnx::model(graph, 14)
}

/// Compiles for `target` and runs on a fixed input: the opcodes and the
/// first output. A fused table must be among the model's kernels (what a
/// firmware links).
fn run_model(bytes: &[u8], target: &str) -> (Vec<OpCode>, Vec<i8>) {
    let opts = Options {
        target: target.parse().unwrap(),
        ..Default::default()
    };
    let c = ember_compiler::compile(bytes, &opts).unwrap();
    let blob = AlignedBlob::new(&c.blob);
    let m = Model::load(blob.bytes()).unwrap();
    let fused = (0..m.num_ops() as u32).all(|i| m.op(i).unwrap().opcode != OpCode::Lut);
    assert!(!fused || m.kernels().unwrap().contains(Kernel::Lut8Opt));
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
