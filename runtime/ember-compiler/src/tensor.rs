//! Host-side constant tensors (initializers and folded values).

use crate::error::{malformed, Result};
use ember_runtime::kernels::half::{bf16_to_f32, f16_to_f32, F8};
use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::TensorProto;

/// A constant tensor known at compile time.
#[derive(Clone, Debug, PartialEq)]
pub enum HostTensor {
    /// f32 data.
    F32(ArrayD<f32>),
    /// i8 data.
    I8(ArrayD<i8>),
    /// u8 data.
    U8(ArrayD<u8>),
    /// i32 data.
    I32(ArrayD<i32>),
    /// i64 data (shapes, indices).
    I64(ArrayD<i64>),
}

impl HostTensor {
    /// Shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            HostTensor::F32(a) => a.shape(),
            HostTensor::I8(a) => a.shape(),
            HostTensor::U8(a) => a.shape(),
            HostTensor::I32(a) => a.shape(),
            HostTensor::I64(a) => a.shape(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values converted to f64 (row-major).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            HostTensor::F32(a) => a.iter().map(|&v| v as f64).collect(),
            HostTensor::I8(a) => a.iter().map(|&v| v as f64).collect(),
            HostTensor::U8(a) => a.iter().map(|&v| v as f64).collect(),
            HostTensor::I32(a) => a.iter().map(|&v| v as f64).collect(),
            HostTensor::I64(a) => a.iter().map(|&v| v as f64).collect(),
        }
    }

    /// Values converted to i64 (row-major), for shapes and axes.
    pub fn to_i64(&self) -> Vec<i64> {
        match self {
            HostTensor::I64(a) => a.iter().copied().collect(),
            HostTensor::F32(a) => a.iter().map(|&v| v as i64).collect(),
            other => other.to_f64().into_iter().map(|v| v as i64).collect(),
        }
    }

    /// Values as f32 (row-major), with the same shape.
    pub fn to_f32_array(&self) -> ArrayD<f32> {
        match self {
            HostTensor::F32(a) => a.clone(),
            other => {
                let v: Vec<f32> = other.to_f64().into_iter().map(|v| v as f32).collect();
                ArrayD::from_shape_vec(IxDyn(other.shape()), v).expect("same element count")
            }
        }
    }

    /// Short dtype name.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            HostTensor::F32(_) => "f32",
            HostTensor::I8(_) => "i8",
            HostTensor::U8(_) => "u8",
            HostTensor::I32(_) => "i32",
            HostTensor::I64(_) => "i64",
        }
    }

    /// Applies `f` to reshape / permute whatever the dtype.
    pub fn map_layout(&self, f: impl Fn(ArrayD<f64>) -> Result<ArrayD<f64>>) -> Result<HostTensor> {
        let a = ArrayD::from_shape_vec(IxDyn(self.shape()), self.to_f64())
            .map_err(|e| malformed(e.to_string()))?;
        let b = f(a)?;
        let b = b.as_standard_layout().to_owned();
        Ok(match self {
            HostTensor::F32(_) => HostTensor::F32(b.mapv(|v| v as f32)),
            HostTensor::I8(_) => HostTensor::I8(b.mapv(|v| v as i8)),
            HostTensor::U8(_) => HostTensor::U8(b.mapv(|v| v as u8)),
            HostTensor::I32(_) => HostTensor::I32(b.mapv(|v| v as i32)),
            HostTensor::I64(_) => HostTensor::I64(b.mapv(|v| v as i64)),
        })
    }
}

fn arr<T>(dims: &[usize], v: Vec<T>, name: &str) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(dims), v).map_err(|_| {
        malformed(format!(
            "tensor '{name}': data length does not match its dims"
        ))
    })
}

fn from_raw<T, const N: usize>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
        .collect()
}

/// The ONNX name of a `TensorProto.DataType` value.
pub fn onnx_type_name(t: i32) -> &'static str {
    match t {
        1 => "float",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "double",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        17 => "float8e4m3fn",
        18 => "float8e4m3fnuz",
        19 => "float8e5m2",
        20 => "float8e5m2fnuz",
        21 => "uint4",
        22 => "int4",
        23 => "float4e2m1",
        24 => "float8e8m0",
        25 => "uint2",
        26 => "int2",
        _ => "unknown",
    }
}

/// Decodes an ONNX TensorProto (inline data only).
pub fn from_proto(t: &TensorProto) -> Result<HostTensor> {
    let name = &t.name;
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| malformed(format!("tensor '{name}': negative dim {d}")))
        })
        .collect::<Result<_>>()?;
    if !t.external_data.is_empty() || t.data_location == Some(1) {
        return Err(malformed(format!(
            "tensor '{name}' uses external data files, which Ember does not read yet; \
             re-save the model with all tensors inline"
        )));
    }
    let raw = &t.raw_data;
    let has_raw = !raw.is_empty();
    Ok(match t.data_type {
        1 => HostTensor::F32(arr(
            &dims,
            if has_raw {
                from_raw(raw, f32::from_le_bytes)
            } else {
                t.float_data.clone()
            },
            name,
        )?),
        2 => HostTensor::U8(arr(
            &dims,
            if has_raw {
                raw.clone()
            } else {
                t.int32_data.iter().map(|&v| v as u8).collect()
            },
            name,
        )?),
        3 => HostTensor::I8(arr(
            &dims,
            if has_raw {
                raw.iter().map(|&v| v as i8).collect()
            } else {
                t.int32_data.iter().map(|&v| v as i8).collect()
            },
            name,
        )?),
        6 => HostTensor::I32(arr(
            &dims,
            if has_raw {
                from_raw(raw, i32::from_le_bytes)
            } else {
                t.int32_data.clone()
            },
            name,
        )?),
        7 => HostTensor::I64(arr(
            &dims,
            if has_raw {
                from_raw(raw, i64::from_le_bytes)
            } else {
                t.int64_data.clone()
            },
            name,
        )?),
        9 => HostTensor::I64(arr(
            &dims,
            if has_raw {
                raw.iter().map(|&v| v as i64).collect()
            } else {
                t.int32_data.iter().map(|&v| v as i64).collect()
            },
            name,
        )?),
        11 => HostTensor::F32(arr(
            &dims,
            if has_raw {
                from_raw(raw, f64::from_le_bytes)
                    .into_iter()
                    .map(|v| v as f32)
                    .collect()
            } else {
                t.double_data.iter().map(|&v| v as f32).collect()
            },
            name,
        )?),
        // 8-bit floats: raw bytes, or one per int32_data entry.
        17..=20 => {
            let f = match t.data_type {
                17 => F8::E4M3Fn,
                18 => F8::E4M3FnUz,
                19 => F8::E5M2,
                _ => F8::E5M2FnUz,
            };
            let bytes: Vec<u8> = if has_raw {
                raw.clone()
            } else {
                t.int32_data.iter().map(|&v| v as u8).collect()
            };
            HostTensor::F32(arr(
                &dims,
                bytes.into_iter().map(|b| f.to_f32(b)).collect(),
                name,
            )?)
        }
        // 16-bit types: raw little-endian, or one element per int32_data
        // entry (the float ones as their bits). Folded as f32 / i32.
        10 | 16 | 4 | 5 => {
            let bits: Vec<u16> = if has_raw {
                from_raw(raw, u16::from_le_bytes)
            } else {
                t.int32_data.iter().map(|&v| v as u16).collect()
            };
            match t.data_type {
                10 => HostTensor::F32(arr(
                    &dims,
                    bits.into_iter().map(f16_to_f32).collect(),
                    name,
                )?),
                16 => HostTensor::F32(arr(
                    &dims,
                    bits.into_iter().map(bf16_to_f32).collect(),
                    name,
                )?),
                4 => HostTensor::I32(arr(
                    &dims,
                    bits.into_iter().map(|v| v as i32).collect(),
                    name,
                )?),
                _ => HostTensor::I32(arr(
                    &dims,
                    bits.into_iter().map(|v| v as i16 as i32).collect(),
                    name,
                )?),
            }
        }
        other => {
            // A valid model with a type Ember has no form of: unsupported,
            // not malformed.
            return Err(crate::error::CompileError::Unsupported {
                op_type: "tensor".into(),
                node: name.clone(),
                what: format!(
                    "ONNX data type {other} ({}) (float, double, float16, bfloat16, float8, int8, \
                     uint8, int16, uint16, int32, int64 and bool are supported)",
                    onnx_type_name(other)
                ),
            });
        }
    })
}
