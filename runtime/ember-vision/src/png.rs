//! PNG decoding for host tools (feature `png`): any PNG to tightly packed
//! RGB888, the format the preprocessing functions take.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The most bytes a decoded image may take (a 4K RGBA picture is 33 MB):
/// checked from the header before anything is allocated, so a small file
/// claiming a huge image, or a decompression bomb, is refused at once.
pub const MAX_DECODED_BYTES: usize = 256 << 20;

/// Decodes `path` to RGB888 (gray, alpha, palette and 16-bit images are
/// converted; alpha is dropped). Returns pixels, width and height.
pub fn decode_rgb888(path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut dec = ::png::Decoder::new_with_limits(
        std::io::BufReader::new(f),
        ::png::Limits {
            bytes: MAX_DECODED_BYTES,
        },
    );
    dec.set_transformations(::png::Transformations::EXPAND | ::png::Transformations::STRIP_16);
    let mut reader = dec
        .read_info()
        .map_err(|e| anyhow::anyhow!("{}: not a readable PNG: {e}", path.display()))?;
    let (w, h) = (reader.info().width, reader.info().height);
    let size = reader
        .output_buffer_size()
        .filter(|&n| n <= MAX_DECODED_BYTES)
        .with_context(|| {
            format!(
                "{}: a {w}×{h} image decodes to more than the {} MiB Ember decodes",
                path.display(),
                MAX_DECODED_BYTES >> 20
            )
        })?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
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
        ::png::ColorType::Indexed => bail!("{}: palette image not expanded", path.display()),
    };
    if rgb.len() != w * h * 3 {
        bail!(
            "{}: decoded {} bytes for {w}×{h}",
            path.display(),
            rgb.len()
        );
    }
    Ok((rgb, w, h))
}
