//! `.npy` / `.npz` input and output for the CLI.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ember_runtime::{DType, TensorInfo, TensorMut, TensorView};
use ndarray::ArrayD;
use ndarray_npy::{NpzWriter, ReadNpyExt, WriteNpyExt};

use crate::host_array::{each, halves, widened, HostArray};

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
/// float data are finite unless `allow_nonfinite`
/// ([`HostArray::fill_input`]'s rules).
pub fn read_into(
    p: &Path,
    info: &TensorInfo<'_>,
    dst: &mut TensorMut<'_>,
    allow_nonfinite: bool,
) -> Result<()> {
    read_for(p, info)?.fill_input(info, dst, allow_nonfinite)
}

/// Reads an `.npy` of an element type graph input `info` takes, whatever
/// its shape (a recording to stream through the input, say).
pub fn read_for(p: &Path, info: &TensorInfo<'_>) -> Result<HostArray> {
    check_size(p)?;
    let wrong = |e: anyhow::Error| {
        e.context(format!(
            "expected a {} array for input '{}'",
            info.dtype.name(),
            info.name
        ))
    };
    let a = match info.dtype {
        DType::I8 => HostArray::I8(read(p).map_err(wrong)?),
        DType::U8 => HostArray::U8(read(p).map_err(wrong)?),
        DType::I16 => HostArray::I16(read(p).map_err(wrong)?),
        DType::U16 => HostArray::U16(read(p).map_err(wrong)?),
        // ONNX int64 inputs (token ids, masks) run as int32: int64 arrays
        // whose values fit are taken too.
        DType::I32 => match read(p) {
            Ok(a) => HostArray::I32(a),
            Err(e) => HostArray::I64(read(p).map_err(|_| wrong(e))?),
        },
        DType::F32 => HostArray::F32(read(p).map_err(wrong)?),
        // 16- and 8-bit float inputs are read from float32 files.
        _ => HostArray::F32(read(p).map_err(|e| {
            wrong(e).context("16- and 8-bit float inputs are read from float32 .npy files")
        })?),
    };
    Ok(a)
}

/// Saves outputs: one → `.npy`, several → `.npz` keyed by output name.
pub fn write_outputs(p: &Path, outs: &[TensorView<'_>]) -> Result<()> {
    let arrays = outs
        .iter()
        .map(|o| Ok((o.info.name.to_string(), HostArray::from_output(o)?)))
        .collect::<Result<Vec<_>>>()?;
    write_arrays(p, &arrays)
}

/// Saves named arrays: one → `.npy`, several → `.npz` keyed by name.
pub fn write_arrays(p: &Path, outs: &[(String, HostArray)]) -> Result<()> {
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
        each!(&outs[0].1, a => a.write_npy(w))
            .with_context(|| format!("cannot write {}", p.display()))?;
        return Ok(());
    }
    let mut npz = NpzWriter::new(w);
    for (name, a) in outs {
        each!(a, a => npz.add_array(name.as_str(), a))
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
