//! What `ember quantize` (or `ember compile --quantize`) did, as a short
//! table for the terminal and as JSON for scripts (`--report`).

use ember_compiler::quantize::Report;
use serde_json::{json, Value};

/// A table of the quantized activations: range, scale, zero point and
/// SQNR against the float model on the calibration samples, in graph
/// order.
pub fn table(r: &Report) -> String {
    let w = r
        .tensors
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 60);
    let mut s = format!(
        "{:<w$}  {:>21}  {:>10}  {:>4}  {:>8}\n",
        "tensor", "range", "scale", "zero", "SQNR dB"
    );
    for t in &r.tensors {
        // Long names keep their end (the layer), behind an ellipsis.
        let chars: Vec<char> = t.name.chars().collect();
        let name: String = if chars.len() > w {
            std::iter::once('…')
                .chain(chars[chars.len() - (w - 1)..].iter().copied())
                .collect()
        } else {
            t.name.clone()
        };
        s += &format!(
            "{name:<w$}  {:>21}  {:>10.3e}  {:>4}  {:>8.1}\n",
            format!("[{:.3}, {:.3}]", t.range.0, t.range.1),
            t.scale,
            t.zero_point,
            t.sqnr
        );
    }
    s
}

/// A few lines: samples, method, the calibration SQNR and top-1
/// agreement, what was folded, quantized and left in float.
pub fn summary(r: &Report) -> String {
    let weights: usize = r.weights.iter().map(|w| w.len).sum();
    let mut s = format!(
        "quantized on {} samples ({} ranges): {} activations, {} weight tensors ({} int8 weights), {} batch norms folded, biases {}; against the float model on the calibration samples: SQNR {:.1} dB, top-1 agreement {:.2}",
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
        r.calibration_sqnr,
        r.top1_agreement
    );
    if !r.float_nodes.is_empty() {
        s += &format!(
            "\n  left in float ({}): {}",
            r.float_nodes.len(),
            r.float_nodes.join(", ")
        );
    }
    if let Some(m) = &r.mixed {
        s += &format!(
            "\n  mixed precision for {:.1} dB: all int8 gives {:.1} dB",
            m.target, m.int8_sqnr
        );
        if m.float.is_empty() {
            s += ", so every layer stays int8";
        }
        for f in &m.float {
            s += &format!(
                "\n    + float {} ({} MACs): {:.1} dB",
                f.nodes.join(", "),
                f.macs,
                f.sqnr
            );
        }
        if m.float.last().is_some_and(|f| f.sqnr < m.target) {
            s += "\n  the target was not reached: nothing more can be left in float";
        }
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
        "top1_agreement": r.top1_agreement,
        "activations": r.tensors.iter().map(|t| json!({
            "name": t.name,
            "seen": [t.seen.0, t.seen.1],
            "range": [t.range.0, t.range.1],
            "scale": t.scale,
            "zero_point": t.zero_point,
            "sqnr_db": t.sqnr,
        })).collect::<Vec<_>>(),
        "weights": r.weights.iter().map(|w| json!({
            "name": w.name,
            "channels": w.channels,
            "len": w.len,
        })).collect::<Vec<_>>(),
        "float_nodes": r.float_nodes,
        "mixed": r.mixed.as_ref().map(|m| json!({
            "sqnr_target_db": m.target,
            "int8_sqnr_db": m.int8_sqnr,
            "float": m.float.iter().map(|f| json!({
                "tensors": f.tensors,
                "nodes": f.nodes,
                "macs": f.macs,
                "alone_sqnr_db": f.alone_sqnr,
                "sqnr_db": f.sqnr,
            })).collect::<Vec<_>>(),
        })),
    })
}
