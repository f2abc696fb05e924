//! Reading node attributes, and the error for a form of an operator Ember
//! does not support.

use tract_onnx::pb::{AttributeProto, NodeProto};

use crate::error::{malformed, CompileError, Result};

pub(crate) fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub(crate) fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map(|a| a.i).unwrap_or(default)
}

pub(crate) fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map(|a| a.f).unwrap_or(default)
}

pub(super) fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

pub(super) fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).to_string())
}

pub(super) fn unsupported(node: &NodeProto, what: impl Into<String>) -> CompileError {
    CompileError::Unsupported {
        op_type: node.op_type.clone(),
        node: node.name.clone(),
        what: what.into(),
    }
}

pub(super) fn axis_of(node: &NodeProto, a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if v < 0 || v >= r {
        return Err(malformed(format!(
            "node '{}': axis {a} out of range for rank {rank}",
            node.name
        )));
    }
    Ok(v as usize)
}

/// A node the compiler writes while lowering `parent` (an operator expanded
/// into simpler ones): `op` of `inputs` into `output`, named after both.
pub(super) fn step(parent: &NodeProto, op: &str, inputs: &[String], output: &str) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: format!("{}.{output}", parent.name),
        input: inputs.to_vec(),
        output: vec![output.to_string()],
        ..Default::default()
    }
}

/// `step` of a reduction over `axes` (as an attribute).
pub(super) fn reduce_step(
    parent: &NodeProto,
    op: &str,
    input: &str,
    output: &str,
    axes: Vec<i64>,
) -> NodeProto {
    let mut n = step(parent, op, &[input.to_string()], output);
    n.attribute.push(tract_onnx::pb::AttributeProto {
        name: "axes".into(),
        ints: axes,
        r#type: 7, // INTS
        ..Default::default()
    });
    n
}
