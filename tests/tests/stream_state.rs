//! State kept between invokes: a streaming LSTM run a frame at a time
//! with its state bound (`--state`) equals the same network run over the
//! whole sequence at once; `reset_state` starts over; a quantized state
//! resets to its zero point; bad bindings are compile errors that name the
//! problem; a blob whose state records lie is refused at load.

use ember_compiler::state::StateSpec;
use ember_compiler::{aligned_arena, AlignedBlob, CompileError, Options};
use ember_runtime::format::{crc32, HEADER_BYTES};
use ember_runtime::{Interpreter, Model};
use ember_tests::onnx::{self as ox, INT8};
use tract_onnx::pb;

use ember_tests::streaming::{data, lstm_model, CLASSES, FEATURES, HIDDEN};

const NAMES: [&str; 4] = ["h_in", "c_in", "h_out", "c_out"];

fn compile(onnx: &[u8], state: &[&str]) -> Result<AlignedBlob, CompileError> {
    let mut opts = Options::default();
    for s in state {
        opts.state.add(s).map_err(CompileError::BadState)?;
    }
    ember_compiler::compile(onnx, &opts).map(|c| AlignedBlob::new(&c.blob))
}

#[test]
fn frame_by_frame_with_state_equals_the_whole_sequence() {
    const FRAMES: usize = 1000;
    let x = data(FRAMES * FEATURES, 9, 1.0);
    // The whole sequence at once, from a zero state.
    let whole = compile(&lstm_model(FRAMES as i64, NAMES), &[]).unwrap();
    let m = Model::load(whole.bytes()).unwrap();
    assert_eq!(m.num_state(), 0);
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    it.input_mut(0).unwrap().copy_from(&x).unwrap();
    it.input_mut(1).unwrap().copy_from(&[0f32; HIDDEN]).unwrap();
    it.input_mut(2).unwrap().copy_from(&[0f32; HIDDEN]).unwrap();
    it.invoke().unwrap();
    let want = it.output(0).unwrap().as_f32().unwrap().to_vec();
    let want_h = it.output(1).unwrap().as_f32().unwrap().to_vec();
    assert_eq!(want.len(), FRAMES * CLASSES);

    // One frame per invoke, the state kept by the runtime.
    let stream = compile(&lstm_model(1, NAMES), &["h_out=h_in", "c_out=c_in"]).unwrap();
    let m = Model::load(stream.bytes()).unwrap();
    assert_eq!((m.num_inputs(), m.num_state()), (1, 2));
    let (s, n) = m.state_info(0).unwrap();
    assert_eq!((s.name, n.name), ("h_in", "h_out"));
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    let mut worst = 0f32;
    let mut first_frames = vec![];
    for f in 0..FRAMES {
        let frame = &x[f * FEATURES..(f + 1) * FEATURES];
        it.input_mut(0).unwrap().copy_from(frame).unwrap();
        it.invoke().unwrap();
        let got = it.output(0).unwrap().as_f32().unwrap().to_vec();
        if f < 5 {
            first_frames.push(got.clone());
        }
        for (a, b) in got.iter().zip(&want[f * CLASSES..(f + 1) * CLASSES]) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(
        worst <= 1e-5,
        "max abs difference {worst} over {FRAMES} frames"
    );
    let h = it.output(1).unwrap().as_f32().unwrap().to_vec();
    for (a, b) in h.iter().zip(&want_h) {
        assert!((a - b).abs() <= 1e-5, "final h {a} vs {b}");
    }

    // Reset: the next frames are the first frames again, bit for bit.
    it.reset_state().unwrap();
    for (f, first) in first_frames.iter().enumerate() {
        let frame = &x[f * FEATURES..(f + 1) * FEATURES];
        it.input_mut(0).unwrap().copy_from(frame).unwrap();
        it.invoke().unwrap();
        assert_eq!(&it.output(0).unwrap().as_f32().unwrap().to_vec(), first);
    }
}

#[test]
fn auto_binding_finds_the_usual_export_names() {
    for names in [
        ["h_in", "c_in", "h_out", "c_out"],
        ["h0", "c0", "hn", "cn"],
        ["prev_h", "prev_c", "next_h", "next_c"],
    ] {
        let blob = compile(&lstm_model(1, names), &["auto"]).unwrap();
        let m = Model::load(blob.bytes()).unwrap();
        assert_eq!(m.num_state(), 2, "{names:?}");
        let (s, n) = m.state_info(0).unwrap();
        assert_eq!((s.name, n.name), (names[0], names[2]));
        let (s, n) = m.state_info(1).unwrap();
        assert_eq!((s.name, n.name), (names[1], names[3]));
        assert_eq!(m.input_info(0).unwrap().name, "x");
    }
}

#[test]
fn bad_bindings_are_compile_errors_naming_the_problem() {
    let onnx = lstm_model(1, NAMES);
    let err = |state: &[&str]| compile(&onnx, state).unwrap_err().to_string();
    assert_eq!(
        err(&["h_ou=h_in"]),
        "bad state binding: --state h_ou=h_in: the model has no output named h_ou \
         (its outputs: logits, h_out, c_out)"
    );
    assert_eq!(
        err(&["h_out=h"]),
        "bad state binding: --state h_out=h: the model has no input named h \
         (its inputs: x, h_in, c_in)"
    );
    assert_eq!(
        err(&["logits=h_in"]),
        "bad state binding: --state logits=h_in: the output is f32 [1, 1, 3] but the input \
         is f32 [1, 1, 12]; a state pair must agree in type and shape"
    );
    assert_eq!(
        err(&["h_out=h_in", "c_out=h_in"]),
        "bad state binding: --state c_out=h_in: input h_in is already fed by h_out"
    );
    assert_eq!(
        err(&["h_out=x"]),
        "bad state binding: --state h_out=x: the output is f32 [1, 1, 12] but the input is \
         f32 [1, 1, 8]; a state pair must agree in type and shape"
    );
    let mut spec = StateSpec::default();
    assert_eq!(
        spec.add("h_out").unwrap_err(),
        "--state h_out: expected OUTPUT=INPUT (the output that feeds the input on the next \
         frame) or auto"
    );
    let plain = lstm_model(1, ["a", "b", "y1", "y2"]);
    assert_eq!(
        compile(&plain, &["auto"]).unwrap_err().to_string(),
        "bad state binding: --state auto: no output is named like the next value of an input \
         (inputs: x, a, b; outputs: logits, y1, y2); bind them with --state OUTPUT=INPUT"
    );
}

/// `x (int8) + s (int8)` through QDQ, the sum the next state and the
/// output: an int8 accumulator whose state has zero point 5.
fn int8_accumulator() -> Vec<u8> {
    let q = |name: &str| {
        [
            ox::floats(&format!("{name}_s"), &[], vec![0.25]),
            ox::integers(&format!("{name}_z"), INT8, &[], vec![5]),
        ]
    };
    let mut inits = vec![];
    for n in ["x", "s", "y"] {
        inits.extend(q(n));
    }
    let nodes = vec![
        ox::node("DequantizeLinear", &["x", "x_s", "x_z"], "xf", vec![]),
        ox::node("DequantizeLinear", &["s", "s_s", "s_z"], "sf", vec![]),
        ox::node("Add", &["xf", "sf"], "yf", vec![]),
        ox::node("QuantizeLinear", &["yf", "y_s", "y_z"], "s_out", vec![]),
    ];
    ox::model(
        pb::GraphProto {
            name: "acc".into(),
            node: nodes,
            input: vec![ox::value("x", INT8, &[1, 4]), ox::value("s", INT8, &[1, 4])],
            output: vec![ox::value("s_out", INT8, &[1, 4])],
            initializer: inits,
            ..Default::default()
        },
        13,
    )
}

#[test]
fn a_quantized_state_starts_at_its_zero_point_and_accumulates_exactly() {
    let blob = compile(&int8_accumulator(), &["s_out=s"]).unwrap();
    let m = Model::load(blob.bytes()).unwrap();
    let (s, _) = m.state_info(0).unwrap();
    assert_eq!(s.quant.map(|q| q.zero_point), Some(5));
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
    // x = +1.0 each frame (q = 5 + 4): the state counts up in steps of 1.0
    // from 0.0 (q = 5), exactly, until it saturates at 127.
    let mut want = 5i32;
    for _ in 0..40 {
        it.input_mut(0).unwrap().copy_from(&[9i8; 4]).unwrap();
        it.invoke().unwrap();
        want = (want + 4).min(127);
        assert_eq!(it.output(0).unwrap().as_i8().unwrap(), &[want as i8; 4]);
    }
    it.reset_state().unwrap();
    it.input_mut(0).unwrap().copy_from(&[5i8; 4]).unwrap();
    it.invoke().unwrap();
    assert_eq!(it.output(0).unwrap().as_i8().unwrap(), &[5i8; 4]);
}

/// Rewrites the `k`-th u32 of state record `i`, then the checksum.
fn patch_state(blob: &[u8], i: usize, k: usize, v: u32) -> AlignedBlob {
    let mut b = blob.to_vec();
    let off = u32::from_le_bytes(b[100..104].try_into().unwrap()) as usize;
    let at = off + ember_runtime::format::STATE_RECORD_BYTES * i + 4 * k;
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let crc = crc32(&b[16..]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    AlignedBlob::new(&b)
}

#[test]
fn state_records_that_lie_are_refused_at_load() {
    let blob = compile(&lstm_model(1, NAMES), &["h_out=h_in", "c_out=c_in"]).unwrap();
    let m = Model::load(blob.bytes()).unwrap();
    const { assert!(HEADER_BYTES >= 112) };
    let x = m.input_info(0).unwrap().index;
    let (h_in, h_out) = m.state_info(0).unwrap();
    let (c_in, c_out) = m.state_info(1).unwrap();
    let logits = m.output_info(0).unwrap().index;

    let cases = [
        // The graph input as state.
        (0, 0, x, "state is also a graph input"),
        // One state in two pairs.
        (1, 0, h_in.index, "state listed in two state pairs"),
        // A next state of another shape.
        (
            0,
            1,
            logits,
            "next state differs from the state in dtype, shape or quantization",
        ),
        // Bytes copied from past the end of the next state.
        (
            0,
            2,
            4,
            "next state differs from the state in dtype, shape or quantization",
        ),
        // The state as its own next state.
        (0, 1, h_in.index, "next state is the state itself"),
        // A tensor some op writes, as state.
        (
            0,
            0,
            c_out.index,
            "state's recorded lifetime is not the whole invoke",
        ),
        (0, 0, u32::MAX, "index out of range"),
    ];
    let _ = (h_out, c_in);
    for (i, k, v, why) in cases {
        let bad = patch_state(blob.bytes(), i, k, v);
        let e = Model::load(bad.bytes()).unwrap_err().to_string();
        assert!(e.contains(why), "record {i}.{k} = {v}: {e}");
    }
    // A next state that dies before the invoke ends: the accumulator's
    // input, of the state's type, shape and quantization.
    let acc = compile(&int8_accumulator(), &["s_out=s"]).unwrap();
    let x = Model::load(acc.bytes())
        .unwrap()
        .input_info(0)
        .unwrap()
        .index;
    let e = Model::load(patch_state(acc.bytes(), 0, 1, x).bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("next state is never written, or its recorded lifetime ends"),
        "{e}"
    );
    // More pairs than the section holds.
    let mut b = blob.bytes().to_vec();
    b[96..100].copy_from_slice(&1_000_000u32.to_le_bytes());
    let crc = crc32(&b[16..]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    let e = Model::load(AlignedBlob::new(&b).bytes())
        .unwrap_err()
        .to_string();
    assert_eq!(e, "bad blob section: state pairs");
}
