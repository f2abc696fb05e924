//! `.npy` / `.npz` input and output for the CLI.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ember_runtime::kernels::half::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use ember_runtime::{DType, TensorInfo, TensorMut, TensorView};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{NpzWriter, ReadNpyExt, WriteNpyExt};

fn read<T: ndarray_npy::ReadableElement>(p: &Path) -> Result<ArrayD<T>> {
    let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    ArrayD::<T>::read_npy(f).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Refuses an `.npy` whose header promises more data than the file holds,
/// before anything is allocated (the reader sizes its buffer from the
/// header: a 500-byte file claiming a million by a million elements would
/// abort on allocation). Headers it cannot parse are left to the reader's
/// own error.
fn check_size(p: &Path) -> Result<()> {
    use std::io::Read;
    crate::limits::check_file(p)?;
    let f = &File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut head = [0u8; 4096];
    let mut r = f;
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    // Back to the start for the reader (`&File` seeks the shared handle).
    std::io::Seek::rewind(&mut r)?;
    let head = &head[..n];
    if head.len() < 10 || &head[..6] != b"\x93NUMPY" {
        return Ok(());
    }
    let (len, at): (usize, usize) = match head[6] {
        1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10),
        _ if head.len() >= 12 => (
            u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize,
            12,
        ),
        _ => return Ok(()),
    };
    // The reader allocates the header's stated length before reading it: a
    // 28-byte file claiming a 3.6 GB header aborted on allocation.
    let file_len = f.metadata()?.len();
    if (at + len) as u64 > file_len {
        bail!("the header says it is {len} bytes long, but the file holds {file_len} bytes");
    }
    let Some(dict) = head.get(at..at.saturating_add(len)) else {
        return Ok(());
    };
    let dict = String::from_utf8_lossy(dict);
    let field = |key: &str| -> Option<String> {
        let rest = &dict[dict.find(key)? + key.len()..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        Some(rest.to_string())
    };
    let (Some(descr), Some(shape)) = (field("'descr'"), field("'shape'")) else {
        return Ok(());
    };
    let item: Option<u64> = descr
        .split('\'')
        .nth(1)
        .map(|d| d.trim_start_matches(['<', '>', '|', '=']))
        .and_then(|d| d.get(1..))
        .and_then(|d| d.parse().ok());
    let dims: Option<Vec<u64>> = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| d.trim_end_matches('L').parse().ok())
                .collect()
        })
        .and_then(|v: Vec<Option<u64>>| v.into_iter().collect());
    let (Some(item), Some(dims)) = (item, dims) else {
        return Ok(());
    };
    let data = f.metadata()?.len().saturating_sub((at + len) as u64);
    let need = dims.iter().try_fold(item, |a, &d| a.checked_mul(d));
    match need {
        Some(need) if need <= data => Ok(()),
        _ => bail!(
            "the header says shape {dims:?} of {item}-byte elements ({}), but the file holds {data} bytes of data",
            need.map_or("more than 2^64 bytes".to_string(), |b| format!("{b} bytes"))
        ),
    }
}

/// Reads an `.npy` into a graph input, checking dtype and shape, and that
/// float data are finite unless `allow_nonfinite`.
pub fn read_into(
    p: &Path,
    info: &TensorInfo<'_>,
    dst: &mut TensorMut<'_>,
    allow_nonfinite: bool,
) -> Result<()> {
    check_size(p)?;
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
    let want = info.dims().to_vec();
    let check = |shape: &[usize]| -> Result<()> {
        if shape != want.as_slice() {
            bail!(
                "shape {shape:?} does not match the model input '{}' {want:?}",
                info.name
            );
        }
        Ok(())
    };
    let wrong = |e: anyhow::Error| {
        e.context(format!(
            "expected a {} array for input '{}'",
            info.dtype.name(),
            info.name
        ))
    };
    match info.dtype {
        DType::F32 => {
            let a = read::<f32>(p).map_err(wrong)?;
            check(a.shape())?;
            finite(&a)?;
            dst.copy_from(&a.iter().copied().collect::<Vec<_>>())?;
        }
        DType::I8 => {
            let a = read::<i8>(p).map_err(wrong)?;
            check(a.shape())?;
            dst.copy_from(&a.iter().copied().collect::<Vec<_>>())?;
        }
        DType::U8 => {
            let a = read::<u8>(p).map_err(wrong)?;
            check(a.shape())?;
            dst.copy_from(&a.iter().copied().collect::<Vec<_>>())?;
        }
        DType::I32 => {
            // ONNX int64 inputs (token ids, masks) run as int32: accept
            // int64 arrays whose values fit.
            let v: Vec<i32> = match read::<i32>(p) {
                Ok(a) => {
                    check(a.shape())?;
                    a.iter().copied().collect()
                }
                Err(e) => {
                    let a = read::<i64>(p).map_err(|_| wrong(e))?;
                    check(a.shape())?;
                    a.iter()
                        .map(|&v| {
                            i32::try_from(v).with_context(|| {
                                format!("value {v} of input '{}' does not fit in int32", info.name)
                            })
                        })
                        .collect::<Result<_>>()?
                }
            };
            dst.copy_from(&v)?;
        }
        DType::I16 => {
            let a = read::<i16>(p).map_err(wrong)?;
            check(a.shape())?;
            copy_le(dst, a.iter().map(|v| v.to_le_bytes()))?;
        }
        DType::U16 => {
            let a = read::<u16>(p).map_err(wrong)?;
            check(a.shape())?;
            copy_le(dst, a.iter().map(|v| v.to_le_bytes()))?;
        }
        // Half-precision inputs take float32 arrays, rounded to nearest.
        DType::F16 | DType::BF16 => {
            let a = read::<f32>(p).map_err(|e| {
                wrong(e).context("16-bit float inputs are read from float32 .npy files")
            })?;
            check(a.shape())?;
            finite(&a)?;
            let to = if info.dtype == DType::F16 {
                f32_to_f16
            } else {
                f32_to_bf16
            };
            copy_le(dst, a.iter().map(|&v| to(v).to_le_bytes()))?;
        }
        // 8-bit floats too (saturating, as ONNX's Cast does by default).
        d => {
            let a = read::<f32>(p).map_err(|e| {
                wrong(e).context("8-bit float inputs are read from float32 .npy files")
            })?;
            check(a.shape())?;
            finite(&a)?;
            let f = d.f8().context("an 8-bit float dtype")?;
            copy_le(dst, a.iter().map(|&v| [f.from_f32(v, true)]))?;
        }
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

enum Out {
    F32(ArrayD<f32>),
    I8(ArrayD<i8>),
    U8(ArrayD<u8>),
    I16(ArrayD<i16>),
    U16(ArrayD<u16>),
    I32(ArrayD<i32>),
}

/// The 2-byte elements of an output.
fn halves<'a>(o: &TensorView<'a>) -> impl Iterator<Item = u16> + 'a {
    o.bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// An output of 16- or 8-bit floats widened to f32 (exactly).
fn widened(o: &TensorView<'_>) -> Vec<f32> {
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

fn to_array(o: &TensorView<'_>) -> Result<Out> {
    let shape = IxDyn(o.info.dims());
    Ok(match o.info.dtype {
        DType::F32 => Out::F32(ArrayD::from_shape_vec(shape, o.as_f32()?.to_vec())?),
        DType::I8 => Out::I8(ArrayD::from_shape_vec(shape, o.as_i8()?.to_vec())?),
        DType::U8 => Out::U8(ArrayD::from_shape_vec(shape, o.as_u8()?.to_vec())?),
        DType::I32 => Out::I32(ArrayD::from_shape_vec(shape, o.as_i32()?.to_vec())?),
        DType::I16 => Out::I16(ArrayD::from_shape_vec(
            shape,
            halves(o).map(|v| v as i16).collect(),
        )?),
        DType::U16 => Out::U16(ArrayD::from_shape_vec(shape, halves(o).collect())?),
        // Written as float32: every 16- and 8-bit float is exact in it.
        _ => Out::F32(ArrayD::from_shape_vec(shape, widened(o))?),
    })
}

/// Saves outputs: one → `.npy`, several → `.npz` keyed by output name.
pub fn write_outputs(p: &Path, outs: &[TensorView<'_>]) -> Result<()> {
    // The extension decides the format: `.npz` always holds an archive
    // keyed by output name (one output included); anything else is one
    // `.npy`, which only a single output fits.
    let npz = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    if !npz && outs.len() != 1 {
        bail!(
            "the model has {} outputs: write them to an .npz, not {}",
            outs.len(),
            p.display()
        );
    }
    let f = File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
    let w = BufWriter::new(f);
    if !npz {
        match to_array(&outs[0])? {
            Out::F32(a) => a.write_npy(w),
            Out::I8(a) => a.write_npy(w),
            Out::U8(a) => a.write_npy(w),
            Out::I16(a) => a.write_npy(w),
            Out::U16(a) => a.write_npy(w),
            Out::I32(a) => a.write_npy(w),
        }
        .with_context(|| format!("cannot write {}", p.display()))?;
        return Ok(());
    }
    let mut npz = NpzWriter::new(w);
    for o in outs {
        let name = o.info.name;
        match to_array(o)? {
            Out::F32(a) => npz.add_array(name, &a),
            Out::I8(a) => npz.add_array(name, &a),
            Out::U8(a) => npz.add_array(name, &a),
            Out::I16(a) => npz.add_array(name, &a),
            Out::U16(a) => npz.add_array(name, &a),
            Out::I32(a) => npz.add_array(name, &a),
        }
        .with_context(|| format!("cannot write {}", p.display()))?;
    }
    npz.finish()
        .with_context(|| format!("cannot write {}", p.display()))?;
    Ok(())
}

/// One output as text: name, dtype, shape, values (dequantized too when quantized).
pub fn format_output(o: &TensorView<'_>) -> Result<String> {
    let vals: Vec<String> = match o.info.dtype {
        DType::F32 => o.as_f32()?.iter().map(|v| format!("{v}")).collect(),
        DType::I8 => o.as_i8()?.iter().map(|v| v.to_string()).collect(),
        DType::U8 => o.as_u8()?.iter().map(|v| v.to_string()).collect(),
        DType::I32 => o.as_i32()?.iter().map(|v| v.to_string()).collect(),
        DType::I16 => halves(o).map(|v| (v as i16).to_string()).collect(),
        DType::U16 => halves(o).map(|v| v.to_string()).collect(),
        _ => widened(o).iter().map(|v| format!("{v}")).collect(),
    };
    let shown = if vals.len() > 64 {
        format!("{} … ({} values)", vals[..64].join(" "), vals.len())
    } else {
        vals.join(" ")
    };
    let mut s = format!(
        "{} {} {:?}: [{}]",
        o.info.name,
        o.info.dtype.name(),
        o.info.dims(),
        shown
    );
    if let (Some(q), true) = (o.info.quant, o.info.numel() <= 64) {
        let real: Vec<String> = match o.info.dtype {
            DType::I8 => o
                .as_i8()?
                .iter()
                .map(|&v| format!("{:.4}", (v as i32 - q.zero_point) as f32 * q.scale))
                .collect(),
            DType::U8 => o
                .as_u8()?
                .iter()
                .map(|&v| format!("{:.4}", (v as i32 - q.zero_point) as f32 * q.scale))
                .collect(),
            _ => vec![],
        };
        if !real.is_empty() {
            s.push_str(&format!("\n  dequantized: [{}]", real.join(" ")));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `npy` fuzz target: a format-3 header claiming
    /// 0xd9767b40 bytes in a 28-byte file made the reader allocate 3.6 GB.
    #[test]
    fn header_longer_than_the_file_is_refused_before_allocating() {
        let bytes = b"\x93NUMPY\x03\x00\x40\x7b\x76\xd9\x9b\xff\xff\xff\x2b\x27\x3a\x20\x27\x00\x00\xa3\xf9\x51\xc0";
        let p = std::env::temp_dir().join(format!("ember-npy-header-{}.npy", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        let e = check_size(&p).unwrap_err();
        std::fs::remove_file(&p).ok();
        assert_eq!(
            e.to_string(),
            "the header says it is 3648420672 bytes long, but the file holds 27 bytes"
        );
    }
}
