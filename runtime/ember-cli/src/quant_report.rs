//! What `ember quantize` (or `ember compile --quantize`) did, as a short
//! table for the terminal and as JSON for scripts (`--report`).

use ember_compiler::quantize::Report;
use serde_json::{json, Value};

/// A few lines: samples, method, the calibration SQNR, what was folded,
/// quantized and left in float.
pub fn summary(r: &Report) -> String {
    let weights: usize = r.weights.iter().map(|w| w.len).sum();
    let mut s = format!(
        "quantized on {} samples ({} ranges): {} activations, {} weight tensors ({} weights, int8 per channel), {} batch norms folded, biases {}; SQNR against the float model on the calibration samples {:.1} dB",
        r.samples,
        r.method.name(),
        r.tensors.len(),
        r.weights.len(),
        weights,
        r.folded,
        if r.bias_corrected {
            "corrected for the weights' rounding"
        } else {
            "as they are"
        },
        r.calibration_sqnr
    );
    if !r.float_nodes.is_empty() {
        s += &format!(
            "\n  left in float ({}): {}",
            r.float_nodes.len(),
            r.float_nodes.join(", ")
        );
    }
    s
}

/// The whole report as JSON.
pub fn json(r: &Report) -> Value {
    json!({
        "samples": r.samples,
        "method": r.method.name(),
        "calibration_sqnr_db": r.calibration_sqnr,
        "folded": r.folded,
        "bias_corrected": r.bias_corrected,
        "activations": r.tensors.iter().map(|t| json!({
            "name": t.name,
            "seen": [t.seen.0, t.seen.1],
            "range": [t.range.0, t.range.1],
            "scale": t.scale,
            "zero_point": t.zero_point,
        })).collect::<Vec<_>>(),
        "weights": r.weights.iter().map(|w| json!({
            "name": w.name,
            "channels": w.channels,
            "len": w.len,
        })).collect::<Vec<_>>(),
        "float_nodes": r.float_nodes,
    })
}
