//! Calibration samples for `ember compile --quantize` and `ember quantize`:
//! an `.npy` whose first axis holds the samples, an `.npz` of such arrays
//! keyed by input name, or a folder of `.npy`, `.wav` and `.png` files,
//! each file run through the front end `ember listen` or `ember see` uses
//! for the model's input.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ember_audio::sww::{SWW_MELS, SWW_WINDOW_FRAMES};
use ember_audio::{KWS_COEFFS, KWS_FRAMES};
use ember_compiler::quantize::Calibration;
use ember_compiler::{AlignedBlob, Options};
use ember_runtime::Model;
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{NpzReader, ReadNpyExt};

/// An array as float32 from `read32`, or narrowed from float64 by
/// `read64`; other element types are refused.
fn float_array<E: std::fmt::Display>(
    read32: impl FnOnce() -> Result<ArrayD<f32>, E>,
    read64: impl FnOnce() -> Result<ArrayD<f64>, E>,
    what: &str,
) -> Result<ArrayD<f32>> {
    match read32() {
        Ok(a) => Ok(a),
        Err(e32) => match read64() {
            Ok(a) => Ok(a.mapv(|v| v as f32)),
            Err(_) => bail!("{what}: calibration samples must be float32 or float64 ({e32})"),
        },
    }
}

fn read_npy(p: &Path) -> Result<ArrayD<f32>> {
    ember_cli::limits::check_file(p)?;
    let open = || File::open(p).with_context(|| format!("cannot open {}", p.display()));
    let (f32_file, f64_file) = (open()?, open()?);
    float_array(
        || ArrayD::<f32>::read_npy(f32_file),
        || ArrayD::<f64>::read_npy(f64_file),
        &p.display().to_string(),
    )
}

fn read_npz(p: &Path) -> Result<Vec<(String, ArrayD<f32>)>> {
    ember_cli::limits::check_file(p)?;
    let open = || -> Result<NpzReader<File>> {
        let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
        NpzReader::new(f).with_context(|| format!("{} is not a readable .npz", p.display()))
    };
    let names = open()?
        .names()
        .with_context(|| format!("{} is not a readable .npz", p.display()))?;
    let mut out = Vec::new();
    for n in names {
        let key = n.strip_suffix(".npy").unwrap_or(&n).to_string();
        let (mut a, mut b) = (open()?, open()?);
        let a = float_array(
            || a.by_name(&n),
            || b.by_name(&n),
            &format!("{} [{key}]", p.display()),
        )?;
        out.push((key, a));
    }
    Ok(out)
}

/// Reads the calibration samples at `path` for the model `onnx` (compiled
/// with `shapes` to learn its input when `path` is a folder).
pub fn load(path: &Path, onnx: &Path, shapes: &HashMap<String, Vec<usize>>) -> Result<Calibration> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let inputs = if path.is_dir() {
        vec![(String::new(), folder(path, onnx, shapes)?)]
    } else {
        match ext.as_deref() {
            Some("npy") => vec![(String::new(), read_npy(path)?)],
            Some("npz") => read_npz(path)?,
            _ => bail!(
                "{}: calibration data is an .npy, an .npz or a folder of .npy/.wav/.png files",
                path.display()
            ),
        }
    };
    Calibration::new(inputs).map_err(anyhow::Error::from)
}

/// The samples of a folder, stacked along a new first axis.
fn folder(dir: &Path, onnx: &Path, shapes: &HashMap<String, Vec<usize>>) -> Result<ArrayD<f32>> {
    let c = ember_compiler::compile_file(
        onnx,
        &Options {
            input_shapes: shapes.clone(),
            max_memory: Some(ember_cli::limits::max_memory()),
            ..Default::default()
        },
    )
    .with_context(|| format!("compiling {} to learn its input", onnx.display()))?;
    let blob = AlignedBlob::new(&c.blob);
    let model = Model::load(blob.bytes())?;
    if model.num_inputs() != 1 {
        bail!(
            "the model has {} inputs: a folder calibrates a single-input model (give an .npz keyed by input name)",
            model.num_inputs()
        );
    }
    let dims = model.input_info(0)?.dims().to_vec();
    if dims.first() != Some(&1) {
        bail!("a folder calibrates a model whose input has a batch of 1; this one is {dims:?}");
    }
    let per: usize = dims.iter().product();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read the folder {}", dir.display()))?;
    // Folders and hidden files (editor and OS droppings) are not samples.
    files.retain(|f| {
        !f.is_dir()
            && !f
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
    });
    files.sort();
    let mut data: Vec<f32> = Vec::new();
    let mut n = 0;
    for f in &files {
        let samples =
            file_samples(f, &dims).with_context(|| format!("calibration file {}", f.display()))?;
        for s in samples {
            if s.len() != per {
                bail!(
                    "calibration file {}: {} values, the model's input {dims:?} takes {per}",
                    f.display(),
                    s.len()
                );
            }
            data.extend_from_slice(&s);
            n += 1;
        }
    }
    if n == 0 {
        bail!("no samples in {} (.npy, .wav or .png files)", dir.display());
    }
    let mut shape = vec![n];
    shape.extend_from_slice(&dims[1..]);
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), data)?)
}

/// The samples one file gives for a model input of `dims`.
fn file_samples(f: &Path, dims: &[usize]) -> Result<Vec<Vec<f32>>> {
    let ext = f
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("npy") => vec![read_npy(f)?.iter().copied().collect()],
        Some("wav") if dims == [1, KWS_FRAMES, KWS_COEFFS, 1] => {
            vec![crate::listen::kws_mfcc(f)?.iter().flatten().copied().collect()]
        }
        Some("wav") if dims == [1, SWW_WINDOW_FRAMES, 1, SWW_MELS] => {
            let frames = crate::listen::sww_frames(f)?;
            frames
                .windows(SWW_WINDOW_FRAMES)
                .map(|w| w.iter().flatten().copied().collect())
                .collect()
        }
        Some("wav") => bail!(
            "no audio front end for a model input of {dims:?} (keyword-spotting MFCC [1, 49, 10, 1] or wake-word log-mel [1, 30, 1, 40])"
        ),
        Some("png") => {
            let &[1, h, w, 3] = dims else {
                bail!("no image front end for a model input of {dims:?} (NHWC RGB [1, H, W, 3])");
            };
            let d = [1, h, w, 3];
            let norm = crate::see::normalization(d, None)?;
            let pixels = crate::see::model_pixels(f, d)?;
            vec![pixels
                .iter()
                .map(|&p| p as f32 * norm.pixel_scale + norm.pixel_offset)
                .collect()]
        }
        _ => bail!("not a .npy, .wav or .png file"),
    })
}
