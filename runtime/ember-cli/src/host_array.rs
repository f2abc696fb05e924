//! Tensors outside the model — read from `.npy` files, handed over by
//! NumPy — and the one set of rules that carries them into graph inputs and
//! back out of graph outputs: which array dtypes an input takes, that the
//! shape matches, that float data are finite.

use anyhow::{bail, Context, Result};
use ember_runtime::kernels::half::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use ember_runtime::{DType, TensorInfo, TensorMut, TensorView};
use ndarray::{ArrayD, IxDyn};

/// An array on the host, in one of the element types graph inputs and
/// outputs are exchanged in.
#[derive(Clone, Debug, PartialEq)]
pub enum HostArray {
    /// float32 (also carries 16- and 8-bit float tensors, exactly).
    F32(ArrayD<f32>),
    /// int8.
    I8(ArrayD<i8>),
    /// uint8.
    U8(ArrayD<u8>),
    /// int16.
    I16(ArrayD<i16>),
    /// uint16.
    U16(ArrayD<u16>),
    /// int32.
    I32(ArrayD<i32>),
    /// int64 (accepted for int32 inputs when every value fits: ONNX token
    /// ids and masks are int64, Ember runs them as int32).
    I64(ArrayD<i64>),
}

/// Applies `$f` to the array inside a [`HostArray`], whatever its type.
macro_rules! each {
    ($a:expr, $x:ident => $f:expr) => {
        match $a {
            HostArray::F32($x) => $f,
            HostArray::I8($x) => $f,
            HostArray::U8($x) => $f,
            HostArray::I16($x) => $f,
            HostArray::U16($x) => $f,
            HostArray::I32($x) => $f,
            HostArray::I64($x) => $f,
        }
    };
}
pub(crate) use each;

impl HostArray {
    /// The element type's name, as NumPy spells it (`float32`, `int8`, …).
    pub fn dtype_name(&self) -> &'static str {
        match self {
            HostArray::F32(_) => "float32",
            HostArray::I8(_) => "int8",
            HostArray::U8(_) => "uint8",
            HostArray::I16(_) => "int16",
            HostArray::U16(_) => "uint16",
            HostArray::I32(_) => "int32",
            HostArray::I64(_) => "int64",
        }
    }

    /// The values as ndarray prints them (nested brackets).
    pub fn to_text(&self) -> String {
        each!(self, a => format!("{a}"))
    }

    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        each!(self, a => a.shape())
    }

    /// An array of dtype `dtype` (a NumPy name: `float32`, `int8`, `uint8`,
    /// `int16`, `uint16`, `int32`, `int64`) and shape `shape` from its
    /// little-endian bytes in C order.
    pub fn from_le_bytes(dtype: &str, shape: &[usize], bytes: &[u8]) -> Result<HostArray> {
        fn build<T, const N: usize>(
            shape: &[usize],
            bytes: &[u8],
            from: fn([u8; N]) -> T,
        ) -> Result<ArrayD<T>> {
            let n = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .context("the shape's element count overflows")?;
            if n.checked_mul(N) != Some(bytes.len()) {
                bail!(
                    "shape {shape:?} needs {n} elements of {N} bytes, the data holds {} bytes",
                    bytes.len()
                );
            }
            let v = bytes
                .chunks_exact(N)
                .map(|c| {
                    let mut b = [0; N];
                    b.copy_from_slice(c);
                    from(b)
                })
                .collect();
            Ok(ArrayD::from_shape_vec(IxDyn(shape), v)?)
        }
        Ok(match dtype {
            "float32" => HostArray::F32(build(shape, bytes, f32::from_le_bytes)?),
            "int8" => HostArray::I8(build(shape, bytes, i8::from_le_bytes)?),
            "uint8" => HostArray::U8(build(shape, bytes, u8::from_le_bytes)?),
            "int16" => HostArray::I16(build(shape, bytes, i16::from_le_bytes)?),
            "uint16" => HostArray::U16(build(shape, bytes, u16::from_le_bytes)?),
            "int32" => HostArray::I32(build(shape, bytes, i32::from_le_bytes)?),
            "int64" => HostArray::I64(build(shape, bytes, i64::from_le_bytes)?),
            other => bail!(
                "arrays of {other} are not taken (float32, int8, uint8, int16, uint16, int32, int64 are)"
            ),
        })
    }

    /// Elements `range` along `axis` (a copy; the caller checked both).
    pub fn slice_axis(&self, axis: usize, range: std::ops::Range<usize>) -> HostArray {
        let s = ndarray::Slice::from(range);
        macro_rules! cut {
            ($($v:ident),*) => {
                match self {
                    $(HostArray::$v(a) => HostArray::$v(a.slice_axis(ndarray::Axis(axis), s).to_owned()),)*
                }
            };
        }
        cut!(F32, I8, U8, I16, U16, I32, I64)
    }

    /// `parts` (one element type, one shape) stacked along a new first
    /// axis.
    pub fn stack(parts: &[HostArray]) -> Result<HostArray> {
        let first = parts.first().context("nothing to stack")?;
        macro_rules! stack {
            ($($v:ident),*) => {
                match first {
                    $(HostArray::$v(_) => {
                        let views = parts
                            .iter()
                            .map(|p| match p {
                                HostArray::$v(a) => Ok(a.view()),
                                other => bail!("cannot stack {} with {}", other.dtype_name(), first.dtype_name()),
                            })
                            .collect::<Result<Vec<_>>>()?;
                        HostArray::$v(ndarray::stack(ndarray::Axis(0), &views)?)
                    })*
                }
            };
        }
        Ok(stack!(F32, I8, U8, I16, U16, I32, I64))
    }

    /// The elements' little-endian bytes in C order.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        each!(self, a => a.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// A graph output as a host array: 16- and 8-bit floats widen to
    /// float32 (exactly).
    pub fn from_output(o: &TensorView<'_>) -> Result<HostArray> {
        let shape = IxDyn(o.info.dims());
        Ok(match o.info.dtype {
            DType::F32 => HostArray::F32(ArrayD::from_shape_vec(shape, o.as_f32()?.to_vec())?),
            DType::I8 => HostArray::I8(ArrayD::from_shape_vec(shape, o.as_i8()?.to_vec())?),
            DType::U8 => HostArray::U8(ArrayD::from_shape_vec(shape, o.as_u8()?.to_vec())?),
            DType::I32 => HostArray::I32(ArrayD::from_shape_vec(shape, o.as_i32()?.to_vec())?),
            DType::I16 => HostArray::I16(ArrayD::from_shape_vec(
                shape,
                halves(o).map(|v| v as i16).collect(),
            )?),
            DType::U16 => HostArray::U16(ArrayD::from_shape_vec(shape, halves(o).collect())?),
            _ => HostArray::F32(ArrayD::from_shape_vec(shape, widened(o))?),
        })
    }

    /// Copies the array into graph input `dst` (described by `info`):
    /// the shape must be the input's, the dtype the input's (int64 for an
    /// int32 input when the values fit; float32 for 16- and 8-bit float
    /// inputs, rounded to nearest), and float data finite unless
    /// `allow_nonfinite`.
    pub fn fill_input(
        &self,
        info: &TensorInfo<'_>,
        dst: &mut TensorMut<'_>,
        allow_nonfinite: bool,
    ) -> Result<()> {
        let want = info.dims();
        if self.shape() != want {
            bail!(
                "shape {:?} does not match the model input '{}' {want:?}",
                self.shape(),
                info.name
            );
        }
        check_dtype(info, self.dtype_name())?;
        let finite = |a: &ArrayD<f32>| -> Result<()> {
            let Some(at) = a
                .as_slice()
                .and_then(ember_runtime::kernels::first_non_finite)
                .filter(|_| !allow_nonfinite)
            else {
                return Ok(());
            };
            let mut index = vec![0; a.ndim()];
            let mut rest = at;
            for (d, &n) in a.shape().iter().enumerate().rev() {
                index[d] = rest % n;
                rest /= n;
            }
            bail!(
                "element {at} (index {index:?}) is {} (pass --allow-nonfinite to run it anyway)",
                a.as_slice().map_or(f32::NAN, |s| s[at])
            )
        };
        match (info.dtype, self) {
            (DType::F32, HostArray::F32(a)) => {
                finite(a)?;
                copy_le(dst, a.iter().map(|v| v.to_le_bytes()))
            }
            (DType::I8, HostArray::I8(a)) => copy_le(dst, a.iter().map(|v| v.to_le_bytes())),
            (DType::U8, HostArray::U8(a)) => copy_le(dst, a.iter().map(|v| [*v])),
            (DType::I16, HostArray::I16(a)) => copy_le(dst, a.iter().map(|v| v.to_le_bytes())),
            (DType::U16, HostArray::U16(a)) => copy_le(dst, a.iter().map(|v| v.to_le_bytes())),
            (DType::I32, HostArray::I32(a)) => copy_le(dst, a.iter().map(|v| v.to_le_bytes())),
            (DType::I32, HostArray::I64(a)) => {
                let v = a
                    .iter()
                    .map(|&v| {
                        i32::try_from(v).with_context(|| {
                            format!("value {v} of input '{}' does not fit in int32", info.name)
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                copy_le(dst, v.iter().map(|v| v.to_le_bytes()))
            }
            (DType::F16 | DType::BF16, HostArray::F32(a)) => {
                finite(a)?;
                let to = if info.dtype == DType::F16 {
                    f32_to_f16
                } else {
                    f32_to_bf16
                };
                copy_le(dst, a.iter().map(|&v| to(v).to_le_bytes()))
            }
            (d, HostArray::F32(a)) if d.f8().is_some() => {
                finite(a)?;
                let f = d.f8().context("an 8-bit float dtype")?;
                // Saturating, as ONNX's Cast does by default.
                copy_le(dst, a.iter().map(|&v| [f.from_f32(v, true)]))
            }
            _ => bail!("{} arrays cannot reach this input", self.dtype_name()),
        }
    }
}

/// The NumPy dtypes a graph input of `d` takes, the first the one it
/// gives back as an output.
pub fn host_dtypes(d: DType) -> &'static [&'static str] {
    match d {
        DType::I8 => &["int8"],
        DType::U8 => &["uint8"],
        DType::I16 => &["int16"],
        DType::U16 => &["uint16"],
        DType::I32 => &["int32", "int64"],
        // float32, and 16- and 8-bit floats (rounded to nearest).
        _ => &["float32"],
    }
}

/// `Err` naming the input and what it takes unless it takes arrays of
/// `dtype` (a NumPy name).
pub fn check_dtype(info: &TensorInfo<'_>, dtype: &str) -> Result<()> {
    let takes = host_dtypes(info.dtype);
    if !takes.contains(&dtype) {
        bail!(
            "input '{}' ({}) takes {} arrays, not {dtype}",
            info.name,
            info.dtype.name(),
            takes.join(" or ")
        );
    }
    Ok(())
}

/// Writes `N`-byte little-endian elements into a graph input.
fn copy_le<const N: usize>(
    dst: &mut TensorMut<'_>,
    vals: impl Iterator<Item = [u8; N]>,
) -> Result<()> {
    let bytes: Vec<u8> = vals.flatten().collect();
    if bytes.len() != dst.bytes.len() {
        bail!(
            "input '{}' holds {} bytes, the array {}",
            dst.info.name,
            dst.bytes.len(),
            bytes.len()
        );
    }
    dst.bytes.copy_from_slice(&bytes);
    Ok(())
}

/// The 2-byte elements of an output.
pub(crate) fn halves<'a>(o: &TensorView<'a>) -> impl Iterator<Item = u16> + 'a {
    o.bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// An output of 16- or 8-bit floats widened to f32 (exactly).
pub(crate) fn widened(o: &TensorView<'_>) -> Vec<f32> {
    if let Some(f) = o.info.dtype.f8() {
        return o.bytes.iter().map(|&b| f.to_f32(b)).collect();
    }
    let from = if o.info.dtype == DType::F16 {
        f16_to_f32
    } else {
        bf16_to_f32
    };
    halves(o).map(from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_bad_lengths_and_dtypes_are_refused() {
        let a = HostArray::from_le_bytes("int16", &[2, 2], &[1, 0, 2, 0, 255, 255, 4, 0]).unwrap();
        assert_eq!(
            a,
            HostArray::I16(ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1, 2, -1, 4]).unwrap())
        );
        assert_eq!(a.to_le_bytes(), [1, 0, 2, 0, 255, 255, 4, 0]);
        let e = HostArray::from_le_bytes("int16", &[3], &[0; 4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape [3] needs 3 elements of 2 bytes, the data holds 4 bytes"
        );
        let e = HostArray::from_le_bytes("float64", &[1], &[0; 8]).unwrap_err();
        assert!(
            e.to_string().starts_with("arrays of float64 are not taken"),
            "{e}"
        );
        let e = HostArray::from_le_bytes("int8", &[usize::MAX, 2], &[]).unwrap_err();
        assert_eq!(e.to_string(), "the shape's element count overflows");
    }
}
