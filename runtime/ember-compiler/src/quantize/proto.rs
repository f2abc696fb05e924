//! Building and reading the ONNX pieces quantization writes: initializers
//! of the element types QDQ models use, nodes, and float constants read
//! back from a graph.

use std::collections::HashMap;

use ndarray::ArrayD;
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, TensorProto};

use crate::error::Result;
use crate::tensor::from_proto;

/// ONNX element type of float tensors.
pub(super) const FLOAT: i32 = 1;
/// ONNX element type of int8 tensors.
pub(super) const INT8: i32 = 3;
/// ONNX element type of int32 tensors.
pub(super) const INT32: i32 = 6;

fn raw(name: &str, data_type: i32, dims: &[usize], raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type,
        dims: dims.iter().map(|&d| d as i64).collect(),
        raw_data,
        ..Default::default()
    }
}

/// A float initializer.
pub(super) fn f32s(name: &str, dims: &[usize], v: &[f32]) -> TensorProto {
    raw(
        name,
        FLOAT,
        dims,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// An int8 initializer.
pub(super) fn i8s(name: &str, dims: &[usize], v: &[i8]) -> TensorProto {
    raw(name, INT8, dims, v.iter().map(|&x| x as u8).collect())
}

/// An int32 initializer.
pub(super) fn i32s(name: &str, dims: &[usize], v: &[i32]) -> TensorProto {
    raw(
        name,
        INT32,
        dims,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// Node `op_type` named `name`.
pub(super) fn node(
    op_type: &str,
    name: String,
    input: Vec<String>,
    output: Vec<String>,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op_type.into(),
        name,
        input,
        output,
        attribute,
        ..Default::default()
    }
}

/// An INT attribute.
pub(super) fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: 2,
        ..Default::default()
    }
}

/// The graph's initializers by name.
pub(super) fn initializers(g: &GraphProto) -> HashMap<&str, &TensorProto> {
    g.initializer.iter().map(|t| (t.name.as_str(), t)).collect()
}

/// The float value of initializer `name`, if it is one (an integer
/// initializer is not: it is not a weight to quantize).
pub(super) fn float_init(g: &GraphProto, name: &str) -> Result<Option<ArrayD<f32>>> {
    match g.initializer.iter().find(|t| t.name == name) {
        Some(t) if t.data_type == FLOAT => Ok(Some(from_proto(t)?.to_f32_array())),
        _ => Ok(None),
    }
}

/// The dims of initializer `name` if it is a float one, read from its
/// header (the data is not decoded).
pub(super) fn float_dims(g: &GraphProto, name: &str) -> Option<Vec<usize>> {
    g.initializer
        .iter()
        .find(|t| t.name == name && t.data_type == FLOAT)
        .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).collect())
}

/// Node `n`'s input `i`, if present and not empty.
pub(super) fn input(n: &NodeProto, i: usize) -> Option<&str> {
    n.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
}
