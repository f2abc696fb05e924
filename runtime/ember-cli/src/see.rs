//! `ember see MODEL IMAGE.png`: a picture in, label out, with the
//! preprocessing the model was trained with (the model zoo's entry, or
//! flags): centre crop to the model's aspect ratio, bilinear resize, the
//! model's normalisation and input quantization (`ember-vision`, the same
//! code the boards run).

use std::path::Path;

use anyhow::{bail, Result};
use ember_runtime::{DType, Interpreter, Model};
use ember_vision::{resize_bilinear_rgb888, ImageRef, Normalize, PixelFormat, QuantLut};

/// A vision model of the zoo: recognised by its input shape.
struct ZooEntry {
    /// Which model it is (documentation).
    #[allow(dead_code)]
    name: &'static str,
    /// NHWC input.
    dims: [usize; 4],
    labels: &'static [&'static str],
    norm: Normalize,
}

const ZOO: &[ZooEntry] = &[
    ZooEntry {
        name: "vww (MLPerf Tiny visual wake words)",
        dims: [1, 96, 96, 3],
        labels: &["notperson", "person"],
        norm: Normalize {
            pixel_scale: 1.0 / 255.0,
            pixel_offset: 0.0,
        },
    },
    ZooEntry {
        name: "ic (MLPerf Tiny image classification, CIFAR-10)",
        dims: [1, 32, 32, 3],
        labels: &[
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ],
        norm: Normalize {
            pixel_scale: 1.0,
            pixel_offset: 0.0,
        },
    },
];

/// What the user can override.
pub struct SeeOptions {
    /// Class labels, in output order.
    pub labels: Option<Vec<String>>,
    /// Pixel normalisation (`value = pixel · scale`).
    pub pixel_scale: Option<f32>,
}

/// Result of classifying one image.
pub struct Seen {
    /// Winning label.
    pub label: String,
    /// Its probability.
    pub score: f32,
}

/// An RGB888 image cropped to the aspect ratio of an NHWC input and resized
/// to it.
pub fn resize_to_model(rgb: &[u8], w: usize, h: usize, dims: [usize; 4]) -> Result<Vec<u8>> {
    let (mh, mw) = (dims[1], dims[2]);
    let img = ImageRef::new(rgb, w, h, PixelFormat::Rgb888).map_err(|e| anyhow::anyhow!("{e}"))?;
    let crop = img
        .center_crop_to_aspect(mw, mh)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut resized = vec![0u8; mw * mh * 3];
    resize_bilinear_rgb888(&crop, &mut resized, mw, mh).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(resized)
}

/// The pixel normalisation for an NHWC input of `dims`: `pixel_scale`
/// when given, else the zoo entry's for that shape.
pub fn normalization(dims: [usize; 4], pixel_scale: Option<f32>) -> Result<Normalize> {
    let zoo = ZOO.iter().find(|z| z.dims == dims);
    Ok(match (pixel_scale, zoo) {
        (Some(s), _) if !s.is_finite() => bail!("--pixel-scale {s} is not a finite number"),
        (Some(s), _) => Normalize {
            pixel_scale: s,
            pixel_offset: 0.0,
        },
        (None, Some(z)) => z.norm,
        (None, None) => bail!(
            "no zoo entry for an input of {dims:?}: give the pixel normalisation with --pixel-scale"
        ),
    })
}

/// A PNG decoded, centre-cropped and resized to an NHWC input of `dims`
/// (RGB888 bytes).
pub fn model_pixels(png_path: &Path, dims: [usize; 4]) -> Result<Vec<u8>> {
    ember_cli::limits::check_file(png_path)?;
    let (rgb, w, h) =
        ember_vision::png::decode_rgb888_within(png_path, ember_cli::limits::max_memory())?;
    resize_to_model(&rgb, w, h, dims)
}

/// Classifies a PNG with a vision model.
pub fn see(model: &Model<'_>, png_path: &Path, opts: &SeeOptions) -> Result<Seen> {
    let input = model.input_info(0)?;
    let d = input.dims();
    if d.len() != 4 || d[3] != 3 || d[0] != 1 {
        bail!(
            "no image front end for a model input of shape {d:?} (expected NHWC RGB [1, H, W, 3])"
        );
    }
    let dims = [d[0], d[1], d[2], d[3]];
    let zoo = ZOO.iter().find(|z| z.dims == dims);
    let norm = normalization(dims, opts.pixel_scale)?;
    let labels: Vec<String> = match (&opts.labels, zoo) {
        (Some(l), _) => l.clone(),
        (None, Some(z)) => z.labels.iter().map(|s| s.to_string()).collect(),
        (None, None) => Vec::new(),
    };
    let resized = model_pixels(png_path, dims)?;
    let mut arena = crate::arena_for(model)?;
    let mut it = Interpreter::new(model, arena.bytes_mut())?;
    match (input.dtype, input.quant) {
        (DType::I8, Some(q)) => {
            let mut x = vec![0i8; resized.len()];
            QuantLut::new(&norm, q.scale, q.zero_point)
                .apply(&resized, &mut x)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            it.input_mut(0)?.copy_from(&x)?;
        }
        (DType::F32, _) => {
            let x: Vec<f32> = resized
                .iter()
                .map(|&p| p as f32 * norm.pixel_scale + norm.pixel_offset)
                .collect();
            it.input_mut(0)?.copy_from(&x)?;
        }
        (dt, _) => bail!("unsupported model input type {}", dt.name()),
    }
    it.invoke()?;
    let out = it.output(0)?;
    let scores: Vec<f32> = match (out.info.dtype, out.info.quant) {
        (DType::F32, _) => out.as_f32()?.to_vec(),
        (DType::I8, Some(q)) => out
            .as_i8()?
            .iter()
            .map(|&v| (v as i32 - q.zero_point) as f32 * q.scale)
            .collect(),
        (dt, _) => bail!("unsupported model output type {}", dt.name()),
    };
    if !labels.is_empty() && labels.len() != scores.len() {
        bail!("{} labels for {} class scores", labels.len(), scores.len());
    }
    let best = (0..scores.len()).fold(0, |b, i| if scores[i] > scores[b] { i } else { b });
    Ok(Seen {
        label: labels
            .get(best)
            .cloned()
            .unwrap_or_else(|| format!("class {best}")),
        score: scores.get(best).copied().unwrap_or(0.0),
    })
}
