//! Small builders for ONNX models written by tests: value infos, nodes,
//! attributes, initializers and the model around a graph.

use prost::Message;
use tract_onnx::pb;

/// ONNX element types the tests use.
pub const FLOAT: i32 = 1;
/// int8.
pub const INT8: i32 = 3;
/// int32.
pub const INT32: i32 = 6;
/// int64.
pub const INT64: i32 = 7;

/// A graph input or output of `elem_type` and fixed `dims`.
pub fn value(name: &str, elem_type: i32, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Node `op` of `inputs` into `output` (named `{op}_{output}`).
pub fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: format!("{op}_{output}"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

/// An INTS attribute.
pub fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: 7,
        ..Default::default()
    }
}

/// An INT attribute.
pub fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2,
        ..Default::default()
    }
}

/// A FLOAT attribute.
pub fn float(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        f: v,
        r#type: 1,
        ..Default::default()
    }
}

/// A STRING attribute.
pub fn string(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        s: v.as_bytes().to_vec(),
        r#type: 3,
        ..Default::default()
    }
}

/// A float initializer.
pub fn floats(name: &str, dims: &[i64], v: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        data_type: FLOAT,
        dims: dims.to_vec(),
        float_data: v,
        ..Default::default()
    }
}

/// An integer initializer of `data_type` (int8, int32: stored as int32
/// data; int64 as int64 data).
pub fn integers(name: &str, data_type: i32, dims: &[i64], v: Vec<i64>) -> pb::TensorProto {
    let mut t = pb::TensorProto {
        name: name.into(),
        data_type,
        dims: dims.to_vec(),
        ..Default::default()
    };
    if data_type == INT64 {
        t.int64_data = v;
    } else {
        t.int32_data = v.iter().map(|&x| x as i32).collect();
    }
    t
}

/// The serialized model of `graph` at default-domain `opset`.
pub fn model(graph: pb::GraphProto, opset: i64) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}
