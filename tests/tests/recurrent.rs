//! LSTM, GRU and RNN against a plain loop-by-loop reading of the ONNX
//! definitions, over the forms the ONNX node tests leave out: reverse and
//! bidirectional directions, `layout` 1, clip, peepholes, `input_forget`,
//! `linear_before_reset`, sequence lengths, activations with alpha and
//! beta, and initial states fed at run time (a stream's state).

use ember_compiler::{aligned_arena, AlignedBlob, CompileError, Options};
use ember_runtime::{Interpreter, Model};
use ember_tests::onnx::{self as ox, FLOAT};
use ember_tests::streaming::data;
use tract_onnx::pb;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Cell {
    Lstm,
    Gru,
    Rnn,
}

#[derive(Clone, Debug)]
struct Case {
    cell: Cell,
    direction: &'static str,
    layout: i64,
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    clip: Option<f32>,
    lens: Option<Vec<i64>>,
    initial_h: bool,
    initial_c: bool,
    peepholes: bool,
    input_forget: bool,
    linear_before_reset: bool,
    /// Activations (all directions) with their alpha and beta.
    acts: Option<Vec<(&'static str, f32, f32)>>,
}

impl Case {
    fn new(cell: Cell) -> Case {
        Case {
            cell,
            direction: "forward",
            layout: 0,
            seq: 4,
            batch: 2,
            input: 3,
            hidden: 5,
            clip: None,
            lens: None,
            initial_h: false,
            initial_c: false,
            peepholes: false,
            input_forget: false,
            linear_before_reset: false,
            acts: None,
        }
    }
    fn dirs(&self) -> usize {
        if self.direction == "bidirectional" {
            2
        } else {
            1
        }
    }
    fn gates(&self) -> usize {
        match self.cell {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn => 1,
        }
    }
    fn op(&self) -> &'static str {
        match self.cell {
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
            Cell::Rnn => "RNN",
        }
    }
}

fn act(name: &str, x: f32, a: f32, b: f32) -> f32 {
    match name {
        "Sigmoid" => 1.0 / (1.0 + (-x).exp()),
        "Tanh" => x.tanh(),
        "Relu" => x.max(0.0),
        "HardSigmoid" => (a * x + b).clamp(0.0, 1.0),
        "LeakyRelu" => {
            if x >= 0.0 {
                x
            } else {
                a * x
            }
        }
        "Affine" => a * x + b,
        "ScaledTanh" => a * (b * x).tanh(),
        other => panic!("no reference for {other}"),
    }
}

struct Weights {
    x: Vec<f32>,
    w: Vec<f32>,
    r: Vec<f32>,
    b: Vec<f32>,
    p: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
}

fn weights(c: &Case) -> Weights {
    let (d, g, h) = (c.dirs(), c.gates(), c.hidden);
    Weights {
        x: data(c.seq * c.batch * c.input, 1, 1.0),
        w: data(d * g * h * c.input, 2, 0.6),
        r: data(d * g * h * h, 3, 0.6),
        b: data(d * 2 * g * h, 4, 0.3),
        p: data(d * 3 * h, 5, 0.5),
        h0: data(d * c.batch * h, 6, 0.5),
        c0: data(d * c.batch * h, 7, 0.5),
    }
}

/// The outputs Y `[T, D, B, H]`, Y_h and Y_c `[D, B, H]` (layout 0 order),
/// by the ONNX equations, one multiply-add at a time.
fn reference(c: &Case, wt: &Weights) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (nd, g, hs, is, bs, ts) = (c.dirs(), c.gates(), c.hidden, c.input, c.batch, c.seq);
    let per_dir = match c.cell {
        Cell::Lstm => 3,
        Cell::Gru => 2,
        Cell::Rnn => 1,
    };
    let acts: Vec<(&str, f32, f32)> = c.acts.clone().unwrap_or_else(|| {
        let one: &[(&str, f32, f32)] = match c.cell {
            Cell::Lstm => &[
                ("Sigmoid", 0.0, 0.0),
                ("Tanh", 0.0, 0.0),
                ("Tanh", 0.0, 0.0),
            ],
            Cell::Gru => &[("Sigmoid", 0.0, 0.0), ("Tanh", 0.0, 0.0)],
            Cell::Rnn => &[("Tanh", 0.0, 0.0)],
        };
        (0..nd).flat_map(|_| one.iter().copied()).collect()
    });
    // X[t][b][i] whatever the layout.
    let x = |t: usize, b: usize, i: usize| {
        if c.layout == 0 {
            wt.x[(t * bs + b) * is + i]
        } else {
            wt.x[(b * ts + t) * is + i]
        }
    };
    let state0 = |v: &Vec<f32>, d: usize, b: usize, j: usize| {
        if c.layout == 0 {
            v[(d * bs + b) * hs + j]
        } else {
            v[(b * nd + d) * hs + j]
        }
    };
    let clip = |v: f32| c.clip.map_or(v, |k| v.clamp(-k, k));
    let mut y = vec![0.0; ts * nd * bs * hs];
    let mut yh = vec![0.0; nd * bs * hs];
    let mut yc = vec![0.0; nd * bs * hs];
    for d in 0..nd {
        let reverse = c.direction == "reverse" || d == 1;
        let a = &acts[d * per_dir..(d + 1) * per_dir];
        let f = |k: usize, v: f32| act(a[k].0, v, a[k].1, a[k].2);
        let w = |row: usize, i: usize| wt.w[(d * g * hs + row) * is + i];
        let r = |row: usize, m: usize| wt.r[(d * g * hs + row) * hs + m];
        let wb = |row: usize| wt.b[d * 2 * g * hs + row];
        let rb = |row: usize| wt.b[d * 2 * g * hs + g * hs + row];
        for b in 0..bs {
            let len = c.lens.as_ref().map_or(ts, |l| l[b] as usize);
            let mut h: Vec<f32> = (0..hs)
                .map(|j| {
                    if c.initial_h {
                        state0(&wt.h0, d, b, j)
                    } else {
                        0.0
                    }
                })
                .collect();
            let mut cs: Vec<f32> = (0..hs)
                .map(|j| {
                    if c.initial_c {
                        state0(&wt.c0, d, b, j)
                    } else {
                        0.0
                    }
                })
                .collect();
            let steps: Vec<usize> = if reverse {
                (0..len).rev().collect()
            } else {
                (0..len).collect()
            };
            for t in steps {
                let xpart =
                    |row: usize| (0..is).map(|i| x(t, b, i) * w(row, i)).sum::<f32>() + wb(row);
                let hpart = |row: usize, h: &[f32]| {
                    (0..hs).map(|m| h[m] * r(row, m)).sum::<f32>() + rb(row)
                };
                let mut hn = vec![0.0; hs];
                match c.cell {
                    Cell::Rnn => {
                        for (j, v) in hn.iter_mut().enumerate() {
                            *v = f(0, clip(xpart(j) + hpart(j, &h)));
                        }
                    }
                    Cell::Lstm => {
                        let p = |k: usize, j: usize| {
                            if c.peepholes {
                                wt.p[d * 3 * hs + k * hs + j]
                            } else {
                                0.0
                            }
                        };
                        let mut cn = vec![0.0; hs];
                        for j in 0..hs {
                            let pre = |k: usize| xpart(k * hs + j) + hpart(k * hs + j, &h);
                            let i_g = f(0, clip(pre(0) + p(0, j) * cs[j]));
                            let f_g = if c.input_forget {
                                1.0 - i_g
                            } else {
                                f(0, clip(pre(2) + p(2, j) * cs[j]))
                            };
                            let c_g = f(1, clip(pre(3)));
                            cn[j] = f_g * cs[j] + i_g * c_g;
                            let o_g = f(0, clip(pre(1) + p(1, j) * cn[j]));
                            hn[j] = o_g * f(2, cn[j]);
                        }
                        cs = cn;
                    }
                    Cell::Gru => {
                        let z: Vec<f32> = (0..hs)
                            .map(|j| f(0, clip(xpart(j) + hpart(j, &h))))
                            .collect();
                        let rr: Vec<f32> = (0..hs)
                            .map(|j| f(0, clip(xpart(hs + j) + hpart(hs + j, &h))))
                            .collect();
                        for j in 0..hs {
                            let row = 2 * hs + j;
                            let cand = if c.linear_before_reset {
                                xpart(row) + rr[j] * hpart(row, &h)
                            } else {
                                let rh: Vec<f32> = (0..hs).map(|m| rr[m] * h[m]).collect();
                                xpart(row) + hpart(row, &rh)
                            };
                            let cand = f(1, clip(cand));
                            hn[j] = (1.0 - z[j]) * cand + z[j] * h[j];
                        }
                    }
                }
                h = hn;
                for j in 0..hs {
                    y[((t * nd + d) * bs + b) * hs + j] = h[j];
                }
            }
            for j in 0..hs {
                yh[(d * bs + b) * hs + j] = h[j];
                yc[(d * bs + b) * hs + j] = cs[j];
            }
        }
    }
    (y, yh, yc)
}

/// The model: X (and the initial states when asked) as graph inputs, the
/// weights as initializers, all outputs.
fn model(c: &Case, wt: &Weights, w_as_input: bool) -> Vec<u8> {
    let (nd, g, h) = (c.dirs() as i64, c.gates() as i64, c.hidden as i64);
    let (t, b, i) = (c.seq as i64, c.batch as i64, c.input as i64);
    let xd = if c.layout == 0 { [t, b, i] } else { [b, t, i] };
    let sd = if c.layout == 0 {
        [nd, b, h]
    } else {
        [b, nd, h]
    };
    let yd = if c.layout == 0 {
        vec![t, nd, b, h]
    } else {
        vec![b, t, nd, h]
    };
    let mut inputs = vec![ox::value("X", FLOAT, &xd)];
    let mut inits = vec![
        ox::floats("R", &[nd, g * h, h], wt.r.clone()),
        ox::floats("B", &[nd, 2 * g * h], wt.b.clone()),
    ];
    if w_as_input {
        inputs.push(ox::value("W", FLOAT, &[nd, g * h, i]));
    } else {
        inits.push(ox::floats("W", &[nd, g * h, i], wt.w.clone()));
    }
    let mut node_in = vec!["X", "W", "R", "B", "", "", "", ""];
    if let Some(l) = &c.lens {
        inits.push(ox::integers("lens", ox::INT32, &[b], l.clone()));
        node_in[4] = "lens";
    }
    if c.initial_h {
        inputs.push(ox::value("h0", FLOAT, &sd));
        node_in[5] = "h0";
    }
    if c.initial_c {
        inputs.push(ox::value("c0", FLOAT, &sd));
        node_in[6] = "c0";
    }
    if c.peepholes {
        inits.push(ox::floats("P", &[nd, 3 * h], wt.p.clone()));
        node_in[7] = "P";
    }
    while node_in.last() == Some(&"") {
        node_in.pop();
    }
    let mut attrs = vec![
        ox::int("hidden_size", h),
        ox::string("direction", c.direction),
        ox::int("layout", c.layout),
    ];
    if let Some(k) = c.clip {
        attrs.push(ox::float("clip", k));
    }
    if c.input_forget {
        attrs.push(ox::int("input_forget", 1));
    }
    if c.linear_before_reset {
        attrs.push(ox::int("linear_before_reset", 1));
    }
    if let Some(a) = &c.acts {
        attrs.push(pb::AttributeProto {
            name: "activations".into(),
            strings: a.iter().map(|x| x.0.as_bytes().to_vec()).collect(),
            r#type: 8, // STRINGS
            ..Default::default()
        });
        let takes = |n: &str| match n {
            "LeakyRelu" => (true, false),
            "Affine" | "ScaledTanh" | "HardSigmoid" => (true, true),
            _ => (false, false),
        };
        let floats = |v: Vec<f32>, name: &str| pb::AttributeProto {
            name: name.into(),
            floats: v,
            r#type: 6, // FLOATS
            ..Default::default()
        };
        attrs.push(floats(
            a.iter().filter(|x| takes(x.0).0).map(|x| x.1).collect(),
            "activation_alpha",
        ));
        attrs.push(floats(
            a.iter().filter(|x| takes(x.0).1).map(|x| x.2).collect(),
            "activation_beta",
        ));
    }
    let mut outs = vec!["Y", "Y_h"];
    let mut out_vals = vec![ox::value("Y", FLOAT, &yd), ox::value("Y_h", FLOAT, &sd)];
    if c.cell == Cell::Lstm {
        outs.push("Y_c");
        out_vals.push(ox::value("Y_c", FLOAT, &sd));
    }
    let node = pb::NodeProto {
        op_type: c.op().into(),
        name: "rnn".into(),
        input: node_in.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    };
    ox::model(
        pb::GraphProto {
            name: "g".into(),
            node: vec![node],
            input: inputs,
            output: out_vals,
            initializer: inits,
            ..Default::default()
        },
        14,
    )
}

/// Layout-0 `[T, D, B, H]` / `[D, B, H]` data in the case's layout.
fn to_layout(c: &Case, v: &[f32], with_time: bool) -> Vec<f32> {
    if c.layout == 0 {
        return v.to_vec();
    }
    let (nd, b, h) = (c.dirs(), c.batch, c.hidden);
    let t = if with_time { c.seq } else { 1 };
    let mut out = vec![0.0; v.len()];
    for ti in 0..t {
        for d in 0..nd {
            for bi in 0..b {
                for j in 0..h {
                    let src = ((ti * nd + d) * b + bi) * h + j;
                    let dst = ((bi * t + ti) * nd + d) * h + j;
                    out[dst] = v[src];
                }
            }
        }
    }
    out
}

fn check(c: Case) {
    let wt = weights(&c);
    check_model(&c, &wt, &model(&c, &wt, false), 1e-5);
}

/// Runs `onnx` (the case's model, or a rewrite of it) and compares every
/// output with the reference within `tol` (plus 1e-4 relative).
fn check_model(c: &Case, wt: &Weights, onnx: &[u8], tol: f32) -> usize {
    let blob =
        ember_compiler::compile(onnx, &Options::default()).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let size = blob.blob.len();
    let blob = AlignedBlob::new(&blob.blob);
    let m = Model::load(blob.bytes()).unwrap();
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    it.input_mut(0).unwrap().copy_from(&wt.x).unwrap();
    let mut k = 1;
    if c.initial_h {
        it.input_mut(k).unwrap().copy_from(&wt.h0).unwrap();
        k += 1;
    }
    if c.initial_c {
        it.input_mut(k).unwrap().copy_from(&wt.c0).unwrap();
    }
    it.invoke().unwrap();
    let (y, yh, yc) = reference(c, wt);
    let mut want = vec![to_layout(c, &y, true), to_layout(c, &yh, false)];
    if c.cell == Cell::Lstm {
        want.push(to_layout(c, &yc, false));
    }
    assert_eq!(m.num_outputs(), want.len());
    for (o, w) in want.iter().enumerate() {
        let got = it.output(o).unwrap().as_f32().unwrap().to_vec();
        assert_eq!(got.len(), w.len(), "{c:?} output {o}");
        for (n, (a, b)) in got.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= tol + 1e-4 * b.abs(),
                "{:?} {} output {o} element {n}: {a}, reference {b}",
                c.cell,
                c.direction
            );
        }
    }
    size
}

/// onnxruntime's `DynamicQuantizeLSTM` (int8 weights per row, zero point
/// 0): the products run on int8 weights with the activations quantized
/// at run time, so the outputs follow the float reference within the
/// quantization error (weights to 1/254 of each row's range, activations
/// to 1/255 of the tensor's), and the weights take a quarter of the bytes.
/// A transposed or misordered weight would be off by tenths.
#[test]
fn dynamic_quantize_lstm_runs_int8_weights() {
    for c in [
        Case {
            input: 24,
            hidden: 16,
            seq: 5,
            ..Case::new(Cell::Lstm)
        },
        Case {
            direction: "bidirectional",
            input: 24,
            hidden: 16,
            initial_h: true,
            initial_c: true,
            peepholes: true,
            lens: Some(vec![4, 2]),
            ..Case::new(Cell::Lstm)
        },
    ] {
        let wt = weights(&c);
        let float = model(&c, &wt, false);
        let float_size = check_model(&c, &wt, &float, 1e-5);
        let q = ox::dynamic_quantize_lstm(&float, 0);
        let q_size = check_model(&c, &wt, &q, 3e-2);
        // 3 bytes saved per weight, less 12 bytes of scale, sum and bias
        // per row of each product.
        let n = c.dirs() * 4 * c.hidden * (c.input + c.hidden);
        let rows = c.dirs() * 4 * c.hidden;
        assert!(
            q_size + 3 * n <= float_size + 12 * rows + 512,
            "int8 blob {q_size} B, float {float_size} B"
        );
        // A non-zero zero point is not what the int8 kernels take: the
        // weights are dequantized and run in float, still right.
        check_model(&c, &wt, &ox::dynamic_quantize_lstm(&float, 5), 2e-2);
    }
}

#[test]
fn lstm_in_every_form() {
    check(Case::new(Cell::Lstm));
    check(Case {
        direction: "bidirectional",
        clip: Some(0.7),
        lens: Some(vec![4, 2]),
        initial_h: true,
        initial_c: true,
        peepholes: true,
        ..Case::new(Cell::Lstm)
    });
    check(Case {
        direction: "reverse",
        layout: 1,
        input_forget: true,
        initial_h: true,
        batch: 3,
        acts: Some(vec![
            ("HardSigmoid", 0.3, 0.4),
            ("Tanh", 0.0, 0.0),
            ("Relu", 0.0, 0.0),
        ]),
        ..Case::new(Cell::Lstm)
    });
    // A stream's step: one frame, the state fed back by the caller.
    check(Case {
        seq: 1,
        batch: 1,
        initial_h: true,
        initial_c: true,
        ..Case::new(Cell::Lstm)
    });
}

#[test]
fn gru_in_every_form() {
    check(Case::new(Cell::Gru));
    check(Case {
        direction: "bidirectional",
        lens: Some(vec![1, 3]),
        clip: Some(0.5),
        ..Case::new(Cell::Gru)
    });
    check(Case {
        linear_before_reset: true,
        layout: 1,
        initial_h: true,
        acts: Some(vec![("Sigmoid", 0.0, 0.0), ("LeakyRelu", 0.2, 0.0)]),
        ..Case::new(Cell::Gru)
    });
    check(Case {
        direction: "reverse",
        linear_before_reset: true,
        seq: 11,
        ..Case::new(Cell::Gru)
    });
}

#[test]
fn rnn_in_every_form() {
    check(Case::new(Cell::Rnn));
    check(Case {
        direction: "reverse",
        clip: Some(0.4),
        lens: Some(vec![3, 0]),
        acts: Some(vec![("Relu", 0.0, 0.0)]),
        ..Case::new(Cell::Rnn)
    });
    check(Case {
        direction: "bidirectional",
        layout: 1,
        initial_h: true,
        acts: Some(vec![("Affine", 0.8, 0.1), ("ScaledTanh", 1.5, 0.7)]),
        ..Case::new(Cell::Rnn)
    });
}

#[test]
fn what_cannot_be_unrolled_is_refused_by_name() {
    let c = Case::new(Cell::Lstm);
    let wt = weights(&c);
    match ember_compiler::compile(&model(&c, &wt, true), &Options::default()) {
        Err(CompileError::Unsupported { what, .. }) => assert_eq!(what, "W must be constant"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    let bad = Case {
        acts: Some(vec![
            ("Sigmoid", 0.0, 0.0),
            ("Swish", 0.0, 0.0),
            ("Tanh", 0.0, 0.0),
        ]),
        ..Case::new(Cell::Lstm)
    };
    let e = ember_compiler::compile(&model(&bad, &wt, false), &Options::default()).unwrap_err();
    assert!(e.to_string().contains("activation 'Swish'"), "{e}");
}
