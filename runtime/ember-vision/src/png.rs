//! PNG decoding for host tools (feature `png`): any PNG to tightly packed
//! RGB888, the format the preprocessing functions take.

use std::fmt::Display;
use std::io::{BufRead, Seek};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The most bytes a decoded image may take (a 4K RGBA picture is 33 MB):
/// checked from the header before anything is allocated, so a small file
/// claiming a huge image, or a decompression bomb, is refused at once.
pub const MAX_DECODED_BYTES: usize = 256 << 20;

/// Decodes `path` to RGB888 (gray, alpha, palette and 16-bit images are
/// converted; alpha is dropped). Returns pixels, width and height.
pub fn decode_rgb888(path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    decode_rgb888_within(path, MAX_DECODED_BYTES)
}

/// [`decode_rgb888`] with the decoded bytes limited to the smaller of
/// `max_bytes` and [`MAX_DECODED_BYTES`] (a caller's memory budget).
pub fn decode_rgb888_within(path: &Path, max_bytes: usize) -> Result<(Vec<u8>, usize, usize)> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    decode(
        std::io::BufReader::new(f),
        &path.display(),
        max_bytes.min(MAX_DECODED_BYTES),
    )
}

/// Decodes a PNG held in memory, as [`decode_rgb888`] decodes a file (same
/// conversions and the same [`MAX_DECODED_BYTES`] limit); errors name the
/// image "PNG data".
pub fn decode_rgb888_bytes(png: &[u8]) -> Result<(Vec<u8>, usize, usize)> {
    decode(std::io::Cursor::new(png), &"PNG data", MAX_DECODED_BYTES)
}

/// The decoder behind both entry points; `name` prefixes the errors.
fn decode<R: BufRead + Seek>(
    src: R,
    name: &dyn Display,
    max_bytes: usize,
) -> Result<(Vec<u8>, usize, usize)> {
    let mut dec = ::png::Decoder::new_with_limits(src, ::png::Limits { bytes: max_bytes });
    dec.set_transformations(::png::Transformations::EXPAND | ::png::Transformations::STRIP_16);
    let mut reader = dec
        .read_info()
        .map_err(|e| anyhow::anyhow!("{name}: not a readable PNG: {e}"))?;
    let (w, h) = (reader.info().width, reader.info().height);
    let size = reader
        .output_buffer_size()
        .filter(|&n| n <= max_bytes)
        .with_context(|| {
            let limit = if max_bytes.is_multiple_of(1 << 20) {
                format!("{} MiB", max_bytes >> 20)
            } else {
                format!("{} KiB", max_bytes >> 10)
            };
            format!("{name}: a {w}×{h} image decodes to more than the {limit} Ember decodes")
        })?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let px = &buf[..info.buffer_size()];
    let rgb: Vec<u8> = match info.color_type {
        ::png::ColorType::Rgb => px.to_vec(),
        ::png::ColorType::Rgba => px
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        ::png::ColorType::Grayscale => px.iter().flat_map(|&g| [g, g, g]).collect(),
        ::png::ColorType::GrayscaleAlpha => px.chunks_exact(2).flat_map(|p| [p[0]; 3]).collect(),
        ::png::ColorType::Indexed => bail!("{name}: palette image not expanded"),
    };
    if rgb.len() != w * h * 3 {
        bail!("{name}: decoded {} bytes for {w}×{h}", rgb.len());
    }
    Ok((rgb, w, h))
}
