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

/// `onnx` with its first `LSTM` rewritten the way onnxruntime's
/// `quantize_dynamic(per_channel=True)` rewrites one: W and R (float
/// initializers `[D, 4H, cols]`) quantized per row to int8 with zero point
/// `zero_point` (onnxruntime uses 0: scale `max|w| / 127`, round half to
/// even), stored transposed `[D, cols, 4H]`, scales and zero points
/// `[D, 4H]`, as `com.microsoft.DynamicQuantizeLSTM` (which has no
/// `layout`).
pub fn dynamic_quantize_lstm(onnx: &[u8], zero_point: i8) -> Vec<u8> {
    let mut m = pb::ModelProto::decode(onnx).expect("a model");
    let g = m.graph.as_mut().expect("a graph");
    let k = g
        .node
        .iter()
        .position(|n| n.op_type == "LSTM")
        .expect("an LSTM");
    let zp = i64::from(zero_point);
    let mut quantize = |name: &str| -> [String; 3] {
        let t = g
            .initializer
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} is not an initializer"));
        let w = match ember_compiler::tensor::from_proto(t) {
            Ok(ember_compiler::tensor::HostTensor::F32(w)) => w,
            other => panic!("{name}: {:?}", other.map(|t| t.dtype_name())),
        };
        let (nd, rows, cols) = (w.shape()[0], w.shape()[1], w.shape()[2]);
        let v: Vec<f32> = w.iter().copied().collect();
        let mut q = vec![0i64; nd * rows * cols];
        let mut scales = vec![];
        for r in 0..nd * rows {
            let row = &v[r * cols..(r + 1) * cols];
            let absmax = row.iter().fold(0f32, |a, &x| a.max(x.abs()));
            let s = absmax / (127 - zp.abs()) as f32;
            scales.push(s);
            let (d, rr) = (r / rows, r % rows);
            for (c, &x) in row.iter().enumerate() {
                q[(d * cols + c) * rows + rr] =
                    ((x / s).round_ties_even() as i64 + zp).clamp(-128, 127);
            }
        }
        let names = [
            format!("{name}_quantized"),
            format!("{name}_scale"),
            format!("{name}_zero_point"),
        ];
        let (nd, rows, cols) = (nd as i64, rows as i64, cols as i64);
        g.initializer
            .push(integers(&names[0], INT8, &[nd, cols, rows], q));
        g.initializer.push(floats(&names[1], &[nd, rows], scales));
        g.initializer.push(integers(
            &names[2],
            INT8,
            &[nd, rows],
            vec![zp; (nd * rows) as usize],
        ));
        names
    };
    let node = g.node[k].clone();
    let [wq, ws, wz] = quantize(&node.input[1]);
    let [rq, rs, rz] = quantize(&node.input[2]);
    let mut inputs = node.input.clone();
    inputs.resize(8, String::new());
    inputs[1] = wq;
    inputs[2] = rq;
    inputs.extend([ws, wz, rs, rz]);
    let n = &mut g.node[k];
    n.op_type = "DynamicQuantizeLSTM".into();
    n.domain = "com.microsoft".into();
    n.input = inputs;
    n.attribute.retain(|a| a.name != "layout");
    m.opset_import.push(pb::OperatorSetIdProto {
        domain: "com.microsoft".into(),
        version: 1,
    });
    m.encode_to_vec()
}
