//! `ConvTranspose` over a sweep of geometries (strides 1–3, kernels 1–4,
//! leading and trailing padding, output padding, channel counts), float
//! and int8 QDQ, with and without a following Relu, against a direct f64
//! evaluation of the ONNX definition. Checks which form the compiler chose:
//! int8 models must run entirely in int8 (a sub-pixel convolution, a
//! transpose, a slice), float ones take the sub-pixel convolution exactly
//! where the kernel is a multiple of the stride.

use ember_compiler::{aligned_arena, AlignedBlob, Options};
use ember_runtime::kernels::opt::selftest::Rng;
use ember_runtime::{Interpreter, Model, OpCode};
use ember_tests::onnx::{self, floats, integers, node, value, FLOAT, INT32, INT8};
use tract_onnx::pb;

/// One transposed convolution: `[1, c, h, w]` in, `m` filters of `k`,
/// strides `s`, leading/trailing pads, output padding, an optional Relu.
#[derive(Clone, Debug)]
struct Case {
    c: usize,
    m: usize,
    hw: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    pads: [usize; 4],
    out_pad: [usize; 2],
    relu: bool,
}

impl Case {
    fn out(&self) -> [usize; 2] {
        [0, 1].map(|i| {
            (self.s[i] * (self.hw[i] - 1) + self.out_pad[i] + self.k[i])
                .saturating_sub(self.pads[i] + self.pads[i + 2])
        })
    }

    /// A random case with a non-empty output.
    fn random(rng: &mut Rng) -> Case {
        loop {
            let cs = Case::any(rng);
            if cs.out().iter().all(|&o| o > 0) {
                return cs;
            }
        }
    }

    fn any(rng: &mut Rng) -> Case {
        let mut r = |lo: usize, hi: usize| rng.range(lo as i64, hi as i64) as usize;
        let s = [r(1, 3), r(1, 3)];
        let k = [r(1, 4), r(1, 4)];
        let pads = [
            r(0, k[0] - 1),
            r(0, k[1] - 1),
            r(0, k[0] - 1),
            r(0, k[1] - 1),
        ];
        Case {
            c: r(1, 3),
            m: r(1, 3),
            hw: [r(1, 5), r(1, 5)],
            k,
            s,
            pads,
            out_pad: [r(0, s[0] - 1), r(0, s[1] - 1)],
            relu: r(0, 1) == 1,
        }
    }
}

/// Quantization of the int8 models: input, per-channel filter, output.
const XQ: (f32, i32) = (0.05, 3);
const YQ: (f32, i32) = (0.04, -7);

fn w_scale(m: usize) -> f32 {
    0.01 + 0.005 * m as f32
}

/// The model: float (`wq` used as float weights ×0.01) or int8 QDQ.
fn model(cs: &Case, wq: &[i8], bq: &[i32], int8: bool) -> Vec<u8> {
    let [oh, ow] = cs.out().map(|v| v as i64);
    let (c, m) = (cs.c as i64, cs.m as i64);
    let xd = [1, c, cs.hw[0] as i64, cs.hw[1] as i64];
    let wd = [c, m, cs.k[0] as i64, cs.k[1] as i64];
    let yd = [1, m, oh, ow];
    let i64s = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
    let attrs = vec![
        onnx::ints("strides", &i64s(&cs.s)),
        onnx::ints("pads", &i64s(&cs.pads)),
        onnx::ints("output_padding", &i64s(&cs.out_pad)),
        onnx::ints("kernel_shape", &i64s(&cs.k)),
    ];
    let mut nodes = vec![];
    let mut inits = vec![];
    let conv_out = if cs.relu { "t" } else { "yf" };
    let ws: Vec<f32> = (0..cs.m).map(w_scale).collect();
    if int8 {
        let ints = |v: &[i32]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
        inits.extend([
            integers("wq", INT8, &wd, wq.iter().map(|&v| v as i64).collect()),
            floats("ws", &[m], ws.clone()),
            integers("wz", INT8, &[m], vec![0; cs.m]),
            integers("bq", INT32, &[m], ints(bq)),
            floats("bs", &[m], ws.iter().map(|w| XQ.0 * w).collect()),
            integers("bz", INT32, &[m], vec![0; cs.m]),
            floats("xs", &[], vec![XQ.0]),
            integers("xz", INT8, &[], vec![XQ.1 as i64]),
            floats("ys", &[], vec![YQ.0]),
            integers("yz", INT8, &[], vec![YQ.1 as i64]),
        ]);
        let axis = |a: i64| vec![onnx::int("axis", a)];
        nodes.push(node("DequantizeLinear", &["x", "xs", "xz"], "xf", vec![]));
        nodes.push(node("DequantizeLinear", &["wq", "ws", "wz"], "w", axis(1)));
        nodes.push(node("DequantizeLinear", &["bq", "bs", "bz"], "b", axis(0)));
        nodes.push(node("ConvTranspose", &["xf", "w", "b"], conv_out, attrs));
    } else {
        inits.extend([
            floats("w", &wd, wq.iter().map(|&v| v as f32 * 0.01).collect()),
            floats("b", &[m], bq.iter().map(|&v| v as f32 * 1e-4).collect()),
        ]);
        nodes.push(node("ConvTranspose", &["x", "w", "b"], conv_out, attrs));
    }
    if cs.relu {
        nodes.push(node("Relu", &["t"], "yf", vec![]));
    }
    let y = if int8 {
        nodes.push(node("QuantizeLinear", &["yf", "ys", "yz"], "y", vec![]));
        "y"
    } else {
        "yf"
    };
    let et = if int8 { INT8 } else { FLOAT };
    let graph = pb::GraphProto {
        name: "g".into(),
        node: nodes,
        initializer: inits,
        input: vec![value("x", et, &xd)],
        output: vec![value(y, et, &yd)],
        ..Default::default()
    };
    onnx::model(graph, 13)
}

/// The ONNX definition in f64: every input pixel scatters `x·w` to
/// `i·s + t − pad`; the bias everywhere; then the Relu.
fn reference(cs: &Case, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let [oh, ow] = cs.out();
    let mut y = vec![0f64; cs.m * oh * ow];
    for m in 0..cs.m {
        for v in &mut y[m * oh * ow..(m + 1) * oh * ow] {
            *v = b[m];
        }
    }
    let [h, wd] = cs.hw;
    let [kh, kw] = cs.k;
    for c in 0..cs.c {
        for i in 0..h {
            for j in 0..wd {
                let xv = x[(c * h + i) * wd + j];
                for m in 0..cs.m {
                    for ti in 0..kh {
                        for tj in 0..kw {
                            let r = (i * cs.s[0] + ti) as i64 - cs.pads[0] as i64;
                            let q = (j * cs.s[1] + tj) as i64 - cs.pads[1] as i64;
                            if r < 0 || q < 0 || r >= oh as i64 || q >= ow as i64 {
                                continue;
                            }
                            let wv = w[((c * cs.m + m) * kh + ti) * kw + tj];
                            y[(m * oh + r as usize) * ow + q as usize] += xv * wv;
                        }
                    }
                }
            }
        }
    }
    if cs.relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    y
}

/// Input and output of a model run.
enum Data {
    F32(Vec<f32>),
    I8(Vec<i8>),
}

/// Compiles and runs `bytes` on `x`; returns the opcodes and the output.
fn run(bytes: &[u8], x: &Data) -> (Vec<OpCode>, Data) {
    let c = ember_compiler::compile(bytes, &Options::default()).expect("compiles");
    let blob = AlignedBlob::new(&c.blob);
    let m = Model::load(blob.bytes()).expect("loads");
    let ops = (0..m.num_ops() as u32)
        .map(|i| m.op(i).expect("op").opcode)
        .collect();
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).expect("arena");
    let mut input = it.input_mut(0).unwrap();
    match x {
        Data::F32(v) => input.copy_from(v),
        Data::I8(v) => input.copy_from(v),
    }
    .expect("input");
    it.invoke().expect("runs");
    let y = it.output(0).unwrap();
    let y = match x {
        Data::F32(_) => Data::F32(y.as_f32().unwrap().to_vec()),
        Data::I8(_) => Data::I8(y.as_i8().unwrap().to_vec()),
    };
    (ops, y)
}

fn random_case_data(rng: &mut Rng, cs: &Case) -> (Vec<i8>, Vec<i8>, Vec<i32>) {
    let n = cs.c * cs.hw[0] * cs.hw[1];
    let x = (0..n).map(|_| rng.range(-128, 127) as i8).collect();
    let w = (0..cs.c * cs.m * cs.k[0] * cs.k[1])
        .map(|_| rng.range(-127, 127) as i8)
        .collect();
    let b = (0..cs.m).map(|_| rng.range(-3000, 3000) as i32).collect();
    (x, w, b)
}

#[test]
fn float_transposed_convolutions_match_the_definition() {
    let mut rng = Rng::new(11);
    let mut subpixel = 0;
    for case in 0..300 {
        let cs = Case::random(&mut rng);
        let (xq, wq, bq) = random_case_data(&mut rng, &cs);
        let x: Vec<f32> = xq.iter().map(|&v| v as f32 * 0.03).collect();
        let (ops, y) = run(&model(&cs, &wq, &bq, false), &Data::F32(x.clone()));
        let Data::F32(y) = y else { unreachable!() };
        let no_waste = (0..2).all(|i| cs.k[i].is_multiple_of(cs.s[i]));
        assert_eq!(
            ops.contains(&OpCode::Conv2d),
            no_waste,
            "case {case} {cs:?}: {ops:?}"
        );
        subpixel += no_waste as usize;
        let want = reference(
            &cs,
            &x.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &wq.iter()
                .map(|&v| (v as f32 * 0.01) as f64)
                .collect::<Vec<_>>(),
            &bq.iter()
                .map(|&v| (v as f32 * 1e-4) as f64)
                .collect::<Vec<_>>(),
        );
        assert_eq!(y.len(), want.len());
        for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "case {case} {cs:?} [{i}]: {g} vs {w}"
            );
        }
    }
    assert!(subpixel > 40, "{subpixel} sub-pixel cases");
}

#[test]
fn int8_transposed_convolutions_run_in_int8_within_one_step() {
    let mut rng = Rng::new(12);
    let (mut total, mut exact) = (0usize, 0usize);
    for case in 0..300 {
        let cs = Case::random(&mut rng);
        let (xq, wq, bq) = random_case_data(&mut rng, &cs);
        let (ops, y) = run(&model(&cs, &wq, &bq, true), &Data::I8(xq.clone()));
        let Data::I8(y) = y else { unreachable!() };
        assert!(
            ops.iter().all(|o| matches!(
                o,
                OpCode::Conv2d | OpCode::Transpose | OpCode::Slice | OpCode::Copy
            )) && ops.contains(&OpCode::Conv2d),
            "case {case} {cs:?}: {ops:?}"
        );
        let x: Vec<f64> = xq
            .iter()
            .map(|&v| (v as i32 - XQ.1) as f64 * XQ.0 as f64)
            .collect();
        let w: Vec<f64> = wq
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let m = (i / (cs.k[0] * cs.k[1])) % cs.m;
                v as f64 * w_scale(m) as f64
            })
            .collect();
        let b: Vec<f64> = bq
            .iter()
            .enumerate()
            .map(|(m, &v)| v as f64 * (XQ.0 * w_scale(m)) as f64)
            .collect();
        let want = reference(&cs, &x, &w, &b);
        for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
            let q = ((w / YQ.0 as f64).round_ties_even() + YQ.1 as f64).clamp(-128.0, 127.0);
            let d = (g as f64 - q).abs();
            assert!(d <= 1.0, "case {case} {cs:?} [{i}]: {g} vs {q}");
            total += 1;
            exact += (d == 0.0) as usize;
        }
    }
    assert!(exact * 100 >= total * 99, "{exact} of {total} exact");
}
