//! A small streaming recurrent network, written as ONNX by the tests of
//! state kept between invokes (the library's and the CLI's).

use crate::onnx::{self as ox, FLOAT};
use tract_onnx::pb;

/// Features per frame.
pub const FEATURES: usize = 8;
/// LSTM hidden size.
pub const HIDDEN: usize = 12;
/// Logits per frame.
pub const CLASSES: usize = 3;

/// Deterministic values in [-scale, scale].
pub fn data(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(977);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A streaming keyword-style network over `t` frames: LSTM (state in
/// `h_in`, `c_in`, out `h_out`, `c_out`), then a dense layer per frame:
/// `x [t, 1, F]` → `logits [t, 1, K]`. `names`: the state inputs and
/// outputs, in the order h_in, c_in, h_out, c_out.
pub fn lstm_model(t: i64, names: [&str; 4]) -> Vec<u8> {
    let [h_in, c_in, h_out, c_out] = names;
    let (f, h, k) = (FEATURES as i64, HIDDEN as i64, CLASSES as i64);
    let inits = vec![
        ox::floats("W", &[1, 4 * h, f], data((4 * h * f) as usize, 1, 0.5)),
        ox::floats("R", &[1, 4 * h, h], data((4 * h * h) as usize, 2, 0.5)),
        ox::floats("B", &[1, 8 * h], data((8 * h) as usize, 3, 0.2)),
        ox::floats("Wd", &[h, k], data((h * k) as usize, 4, 0.7)),
        ox::floats("bd", &[k], data(k as usize, 5, 0.1)),
        ox::integers("shape", ox::INT64, &[3], vec![t, 1, h]),
    ];
    let lstm = pb::NodeProto {
        op_type: "LSTM".into(),
        name: "lstm".into(),
        input: ["x", "W", "R", "B", "", h_in, c_in]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        output: ["Y", h_out, c_out].iter().map(|s| s.to_string()).collect(),
        attribute: vec![ox::int("hidden_size", h)],
        ..Default::default()
    };
    let nodes = vec![
        lstm,
        ox::node("Reshape", &["Y", "shape"], "y3", vec![]),
        ox::node("MatMul", &["y3", "Wd"], "mm", vec![]),
        ox::node("Add", &["mm", "bd"], "logits", vec![]),
    ];
    let state = [1, 1, h];
    ox::model(
        pb::GraphProto {
            name: "g".into(),
            node: nodes,
            input: vec![
                ox::value("x", FLOAT, &[t, 1, f]),
                ox::value(h_in, FLOAT, &state),
                ox::value(c_in, FLOAT, &state),
            ],
            output: vec![
                ox::value("logits", FLOAT, &[t, 1, k]),
                ox::value(h_out, FLOAT, &state),
                ox::value(c_out, FLOAT, &state),
            ],
            initializer: inits,
            ..Default::default()
        },
        14,
    )
}
