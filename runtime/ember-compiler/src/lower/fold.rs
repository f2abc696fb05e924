//! Compile-time evaluation of constants: broadcasting, element-wise
//! arithmetic and conversions of host tensors, and their bytes when a
//! runtime op reads them.

use ember_runtime::kernels::half::{f32_to_bf16, f32_to_f16};
use ember_runtime::DType;
use ndarray::{ArrayD, IxDyn};

use crate::tensor::HostTensor;

pub(super) fn scalar_of(c: &HostTensor) -> Option<f64> {
    (c.len() == 1).then(|| c.to_f64()[0])
}

/// numpy broadcast of two shapes.
pub(super) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let get = |s: &[usize], i: usize| {
        if i < r - s.len() {
            1
        } else {
            s[i - (r - s.len())]
        }
    };
    (0..r)
        .map(|i| {
            let (x, y) = (get(a, i), get(b, i));
            if x == y || y == 1 {
                Some(x)
            } else if x == 1 {
                Some(y)
            } else {
                None
            }
        })
        .collect()
}

pub(super) fn f64_array(c: &HostTensor) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(c.shape()), c.to_f64()).expect("shape matches data")
}

/// `c`'s values broadcast to `shape`, as f64.
pub(super) fn broadcast_to(c: &HostTensor, shape: &[usize]) -> Option<ArrayD<f64>> {
    let a = f64_array(c);
    a.broadcast(IxDyn(shape)).map(|v| v.to_owned())
}

/// A host tensor of dtype `like` from f64 values.
pub(super) fn like_dtype(like: &HostTensor, a: ArrayD<f64>) -> HostTensor {
    match like {
        HostTensor::F32(_) => HostTensor::F32(a.mapv(|v| v as f32)),
        HostTensor::I8(_) => HostTensor::I8(a.mapv(|v| v as i8)),
        HostTensor::U8(_) => HostTensor::U8(a.mapv(|v| v as u8)),
        HostTensor::I32(_) => HostTensor::I32(a.mapv(|v| v as i32)),
        HostTensor::I64(_) => HostTensor::I64(a.mapv(|v| v as i64)),
    }
}

pub(super) fn bools(a: ArrayD<f64>) -> HostTensor {
    HostTensor::U8(a.mapv(|v| (v != 0.0) as u8))
}

/// Runtime dtype of a constant fed to a runtime op (int64 becomes int32,
/// like graph inputs).
pub(super) fn runtime_dtype(c: &HostTensor) -> DType {
    match c {
        HostTensor::F32(_) => DType::F32,
        HostTensor::I8(_) => DType::I8,
        HostTensor::U8(_) => DType::U8,
        HostTensor::I32(_) | HostTensor::I64(_) => DType::I32,
    }
}

pub(super) fn const_bytes(c: &HostTensor, dtype: DType) -> Vec<u8> {
    let v = c.to_f64();
    match dtype {
        DType::F32 => v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect(),
        DType::I32 => v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
        DType::I16 => v.iter().flat_map(|&x| (x as i16).to_le_bytes()).collect(),
        DType::U16 => v.iter().flat_map(|&x| (x as u16).to_le_bytes()).collect(),
        DType::F16 => v
            .iter()
            .flat_map(|&x| f32_to_f16(x as f32).to_le_bytes())
            .collect(),
        DType::BF16 => v
            .iter()
            .flat_map(|&x| f32_to_bf16(x as f32).to_le_bytes())
            .collect(),
        DType::I8 => v.iter().map(|&x| x as i8 as u8).collect(),
        d => match d.f8() {
            Some(f) => v.iter().map(|&x| f.from_f32(x as f32, true)).collect(),
            None => v.iter().map(|&x| x as u8).collect(), // u8
        },
    }
}

pub(super) fn fold_binary(op: &str, a: &HostTensor, b: &HostTensor) -> Option<HostTensor> {
    let x = ArrayD::from_shape_vec(IxDyn(a.shape()), a.to_f64()).ok()?;
    let y = ArrayD::from_shape_vec(IxDyn(b.shape()), b.to_f64()).ok()?;
    let int = !matches!(a, HostTensor::F32(_));
    let zip = |f: fn(f64, f64) -> f64| -> Option<ArrayD<f64>> {
        let (xs, ys) = (x.shape(), y.shape());
        let rank = xs.len().max(ys.len());
        let dim = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
        let shape: Vec<usize> = (0..rank).map(|i| dim(xs, i).max(dim(ys, i))).collect();
        let xb = x.broadcast(IxDyn(&shape))?;
        let yb = y.broadcast(IxDyn(&shape))?;
        Some(
            ndarray::Zip::from(&xb)
                .and(&yb)
                .map_collect(|&p, &q| f(p, q)),
        )
    };
    let r = match op {
        "Add" => &x + &y,
        "Sub" => &x - &y,
        "Mul" => &x * &y,
        "Div" if int => zip(|p, q| (p / q).trunc())?,
        "Div" => &x / &y,
        "Pow" => zip(f64::powf)?,
        "Max" => zip(|p, q| {
            if p.is_nan() || q.is_nan() {
                f64::NAN
            } else {
                p.max(q)
            }
        })?,
        "Min" => zip(|p, q| {
            if p.is_nan() || q.is_nan() {
                f64::NAN
            } else {
                p.min(q)
            }
        })?,
        "Fmod" => zip(|p, q| p % q)?,
        "PRelu" => zip(|p, q| if p < 0.0 { p * q } else { p })?,
        "Mod" if int => zip(|p, q| p - q * (p / q).floor())?,
        "Mod" => zip(|p, q| p % q)?,
        _ => return None,
    };
    let like = if op == "Pow" || a.shape().len() >= b.shape().len() {
        a
    } else {
        b
    };
    like.map_layout(|_| Ok(r.clone())).ok()
}

impl HostTensor {
    pub(super) fn to_i64_tensor(&self) -> HostTensor {
        HostTensor::I64(
            ArrayD::from_shape_vec(IxDyn(self.shape()), self.to_i64()).expect("same element count"),
        )
    }
}
