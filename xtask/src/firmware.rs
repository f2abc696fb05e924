//! Preparing a firmware image: the model (compiled from `.onnx` or read from
//! `.ember`), its input and expected output as raw bytes, and the build of
//! `boards/app` for a board.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use ember_runtime::{DType, Interpreter, Model, TensorInfo};
use ndarray::ArrayD;
use ndarray_npy::{NpzReader, ReadNpyExt, ReadableElement};

use crate::boards::Board;
use crate::{cargo, root, shared, step};

/// The MLPerf Tiny models in the shared data, addressable by name.
pub const ZOO: &[&str] = &["kws", "vww", "ic", "ad", "sww"];
/// The wake-word model compiled with `--stream`: one log-mel frame per
/// invoke (its input row `r` is frame `r` of the sww test vectors, from a
/// reset state).
pub const SWW_STREAM: &str = "sww-stream";

/// A model with one input and its expected output, ready to embed.
#[derive(Clone)]
pub struct Prepared {
    /// Short name (zoo name or file stem).
    pub name: String,
    /// The compiled blob.
    pub blob: Vec<u8>,
    /// All inputs' bytes, in input order.
    pub input: Vec<u8>,
    /// All outputs' expected bytes, in output order.
    pub expect: Vec<u8>,
    /// Where the expected output came from.
    pub expect_source: String,
}

/// Resolves `model` (a zoo name, an `.onnx` or an `.ember`) to a blob.
pub fn load_blob(model: &str, board: &Board) -> Result<(String, Vec<u8>)> {
    if model == SWW_STREAM {
        return Ok((model.into(), crate::stream_check::sww_stream_blob(board)?));
    }
    let path = if ZOO.contains(&model) {
        shared().join(format!("models/mlperf-tiny/{model}/{model}_int8_qdq.onnx"))
    } else {
        PathBuf::from(model)
    };
    let name = if ZOO.contains(&model) {
        model.to_string()
    } else {
        path.file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "model".into())
    };
    if !path.exists() {
        bail!(
            "model '{model}' not found: give a zoo name ({}), an .onnx or a compiled .ember file (looked at {})",
            ZOO.join(", "),
            path.display()
        );
    }
    let blob = match path.extension().and_then(|e| e.to_str()) {
        Some("onnx") => {
            eprintln!(
                "    compiling {} for {} ({})",
                path.display(),
                board.name,
                board.compile_target
            );
            let target = board.compile_target.parse().map_err(anyhow::Error::msg)?;
            let opts = ember_compiler::Options {
                target,
                ..Default::default()
            };
            ember_compiler::compile_file(&path, &opts)
                .with_context(|| format!("cannot compile {}", path.display()))?
                .blob
        }
        _ => std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    };
    // Validate here so a bad blob is reported before any cross build.
    let aligned = ember_compiler::AlignedBlob::new(&blob);
    Model::load(aligned.bytes())
        .map_err(|e| anyhow::anyhow!("{}: not a valid Ember model: {e}", path.display()))?;
    Ok((name, blob))
}

/// Everything `build`/`run` need: blob, input bytes, expected bytes.
pub fn prepare(
    model: &str,
    board: &Board,
    input: Option<&Path>,
    expect: Option<&Path>,
    row: usize,
) -> Result<Prepared> {
    let input_arg_absent = input.is_none();
    let (name, blob) = load_blob(model, board)?;
    let aligned = ember_compiler::AlignedBlob::new(&blob);
    let m = Model::load(aligned.bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;

    let input = match input {
        Some(p) => {
            if m.num_inputs() != 1 {
                bail!(
                    "--input gives one array but the model has {} inputs",
                    m.num_inputs()
                );
            }
            let info = m.input_info(0).map_err(|e| anyhow::anyhow!("{e}"))?;
            npy_as_tensor(p, &info, true)?
        }
        None if ZOO.contains(&model) => zoo_input(model, row)?,
        None if model == SWW_STREAM => {
            let frames = crate::stream_check::sww_frames()?;
            frames
                .get(row * 40..(row + 1) * 40)
                .with_context(|| format!("--row {row}: sww has {} frames", frames.len() / 40))?
                .to_vec()
        }
        None => {
            eprintln!("    no --input: the model runs on zeros");
            let mut v = Vec::new();
            for i in 0..m.num_inputs() {
                let info = m.input_info(i).map_err(|e| anyhow::anyhow!("{e}"))?;
                v.resize(v.len() + info.size, 0);
            }
            v
        }
    };

    let reference = host_reference(&m, &input)?;
    let (expect, expect_source) = match expect {
        Some(p) => {
            if m.num_outputs() != 1 {
                bail!(
                    "--expect gives one array but the model has {} outputs",
                    m.num_outputs()
                );
            }
            let info = m.output_info(0).map_err(|e| anyhow::anyhow!("{e}"))?;
            (npy_as_tensor(p, &info, false)?, p.display().to_string())
        }
        None => (reference.clone(), "the host reference kernels".to_string()),
    };
    let default_input = input_arg_absent;
    if ZOO.contains(&model) && default_input {
        if let Ok(golden) = zoo_golden(model, row) {
            let same = golden == reference;
            eprintln!(
                "    host reference {} int8_tflite_ref_out[{row}]",
                if same { "==" } else { "!=" }
            );
        }
    }
    Ok(Prepared {
        name,
        blob,
        input,
        expect,
        expect_source,
    })
}

/// Runs the model on the host with the reference kernels.
pub fn host_reference(m: &Model<'_>, input: &[u8]) -> Result<Vec<u8>> {
    let mut arena = ember_compiler::aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(m, arena.bytes_mut()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut off = 0;
    for i in 0..m.num_inputs() {
        let t = it.input_mut(i).map_err(|e| anyhow::anyhow!("{e}"))?;
        let n = t.bytes.len();
        let src = input
            .get(off..off + n)
            .context("input shorter than the model's inputs")?;
        t.bytes.copy_from_slice(src);
        off += n;
    }
    it.invoke()
        .map_err(|e| anyhow::anyhow!("host reference run failed: {e}"))?;
    let mut out = Vec::new();
    for i in 0..m.num_outputs() {
        out.extend_from_slice(it.output(i).map_err(|e| anyhow::anyhow!("{e}"))?.bytes);
    }
    Ok(out)
}

fn npz<T: ReadableElement>(model: &str, key: &str) -> Result<ArrayD<T>> {
    let p = shared().join(format!("vectors/{model}_testvectors.npz"));
    let f = File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut z = NpzReader::new(f).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    z.by_name(key)
        .or_else(|_| z.by_name(&format!("{key}.npy")))
        .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", p.display()))
}

fn row_of(a: &ArrayD<i8>, row: usize, what: &str) -> Result<Vec<u8>> {
    let n = a.shape()[0];
    if row >= n {
        bail!("--row {row}: {what} has {n} rows");
    }
    let per = a.len() / n;
    Ok(a.iter()
        .skip(row * per)
        .take(per)
        .map(|&v| v as u8)
        .collect())
}

/// Row `row` of a zoo model's int8 reference input (for sww, the window of
/// 30 feature frames starting at frame `row`).
pub fn zoo_input(model: &str, row: usize) -> Result<Vec<u8>> {
    match model {
        "kws" => row_of(&npz::<i8>(model, "mfcc_int8")?, row, "mfcc_int8"),
        "sww" => {
            let frames = npz::<i8>(model, "lfbe_int8")?;
            let per = frames.len() / frames.shape()[0];
            let n = frames.shape()[0].saturating_sub(29);
            if row >= n {
                bail!("--row {row}: sww has {n} windows");
            }
            Ok(frames
                .iter()
                .skip(row * per)
                .take(30 * per)
                .map(|&v| v as u8)
                .collect())
        }
        _ => row_of(&npz::<i8>(model, "input_int8")?, row, "input_int8"),
    }
}

/// The float model's input for zoo model `model`, row `row` of its
/// float test vector (for sww, the 30-frame window starting at frame
/// `row`).
pub fn zoo_input_f32(model: &str, row: usize) -> Result<Vec<f32>> {
    let (key, frames) = match model {
        "kws" => ("mfcc_float", 1),
        "sww" => ("lfbe_float", 30),
        _ => ("input_float", 1),
    };
    let a = npz::<f32>(model, key)?;
    let n = a.shape().first().copied().unwrap_or(0);
    if row + frames > n {
        bail!("--row {row}: {key} has {n} rows");
    }
    let per = a.len() / n.max(1);
    Ok(a.iter()
        .skip(row * per)
        .take(frames * per)
        .copied()
        .collect())
}

/// Row `row` of `float_onnx_out` (onnxruntime on the float model).
pub fn zoo_float_reference(model: &str, row: usize) -> Result<Vec<f32>> {
    let a = npz::<f32>(model, "float_onnx_out")?;
    let n = a.shape().first().copied().unwrap_or(0);
    if row >= n {
        bail!("--row {row}: float_onnx_out has {n} rows");
    }
    let per = a.len() / n.max(1);
    Ok(a.iter().skip(row * per).take(per).copied().collect())
}

/// Row `row` of `int8_tflite_ref_out`.
pub fn zoo_golden(model: &str, row: usize) -> Result<Vec<u8>> {
    row_of(
        &npz::<i8>(model, "int8_tflite_ref_out")?,
        row,
        "int8_tflite_ref_out",
    )
}

/// Reads an `.npy` as the raw bytes of a tensor. The element type must
/// match; a float array for a quantized int8/uint8 input is quantized with
/// the input's scale and zero point when `quantize` is set.
pub fn npy_as_tensor(p: &Path, info: &TensorInfo<'_>, quantize: bool) -> Result<Vec<u8>> {
    fn read<T: ReadableElement>(p: &Path) -> Result<ArrayD<T>> {
        let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
        ArrayD::<T>::read_npy(f).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
    }
    let want = info.numel();
    let check = |n: usize| -> Result<()> {
        if n != want {
            bail!(
                "{} has {n} elements; tensor '{}' {:?} has {want}",
                p.display(),
                info.name,
                info.dims()
            );
        }
        Ok(())
    };
    let bytes: Vec<u8> = match info.dtype {
        DType::I8 | DType::U8 => {
            let signed = info.dtype == DType::I8;
            if signed {
                if let Ok(a) = read::<i8>(p) {
                    check(a.len())?;
                    return Ok(a.iter().map(|&v| v as u8).collect());
                }
            } else if let Ok(a) = read::<u8>(p) {
                check(a.len())?;
                return Ok(a.iter().copied().collect());
            }
            let a = read::<f32>(p).map_err(|_| {
                anyhow::anyhow!(
                    "{}: expected a {} array for '{}'{}",
                    p.display(),
                    info.dtype.name(),
                    info.name,
                    if quantize {
                        " (or float32 to quantize)"
                    } else {
                        ""
                    }
                )
            })?;
            if !quantize || info.quant.is_none() {
                bail!(
                    "{}: float32 array given for {} tensor '{}'",
                    p.display(),
                    info.dtype.name(),
                    info.name
                );
            }
            check(a.len())?;
            let q = info.quant.context("quantized input without parameters")?;
            let (lo, hi) = if signed {
                (-128.0, 127.0)
            } else {
                (0.0, 255.0)
            };
            a.iter()
                .map(|&x| {
                    let v = ((x / q.scale).round() + q.zero_point as f32).clamp(lo, hi);
                    if signed {
                        v as i8 as u8
                    } else {
                        v as u8
                    }
                })
                .collect()
        }
        DType::F32 => {
            let a = read::<f32>(p)?;
            check(a.len())?;
            a.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        DType::I32 => {
            let a = read::<i32>(p)?;
            check(a.len())?;
            a.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        DType::I16 => {
            let a = read::<i16>(p)?;
            check(a.len())?;
            a.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        DType::U16 => {
            let a = read::<u16>(p)?;
            check(a.len())?;
            a.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        // 16-bit floats from float32 arrays, as the CLI reads them.
        DType::F16 | DType::BF16 => {
            let a = read::<f32>(p)?;
            check(a.len())?;
            let to = if info.dtype == DType::F16 {
                ember_runtime::kernels::half::f32_to_f16
            } else {
                ember_runtime::kernels::half::f32_to_bf16
            };
            a.iter().flat_map(|&v| to(v).to_le_bytes()).collect()
        }
        // 8-bit floats from float32 arrays (saturating), as the CLI reads
        // them.
        d => {
            let a = read::<f32>(p)?;
            check(a.len())?;
            let f = d.f8().context("an 8-bit float dtype")?;
            a.iter().map(|&v| f.from_f32(v, true)).collect()
        }
    };
    Ok(bytes)
}

/// What is embedded besides the model: sensor data for the voice and
/// vision apps, the signing key the firmware trusts.
#[derive(Default)]
pub struct Sensors {
    /// Audio clip (`ember-kws`).
    pub wav: Option<PathBuf>,
    /// Camera frame, RGB888 with width and height (`ember-see`).
    pub frame: Option<(PathBuf, usize, usize)>,
    /// Class labels.
    pub labels: Vec<String>,
    /// Pixel normalisation.
    pub pixel_scale: Option<f32>,
    /// The Ed25519 public key (hex) the firmware checks the blob with.
    pub model_pubkey: Option<String>,
    /// Give `ember-sign-check` a RAM copy of the blob to tamper with.
    pub sign_sweep: bool,
    /// Give `ember-ota` its two slots.
    pub ota: bool,
}

/// Builds the inference app (`ember-app`) for `board` with `p` embedded;
/// returns the ELF path.
pub fn build(board: &Board, p: &Prepared) -> Result<PathBuf> {
    build_bin(board, p, "ember-app", &Sensors::default())
}

/// Builds firmware binary `bin` of `boards/app` for `board` with `p` and the
/// sensor data embedded; returns the ELF path.
pub fn build_bin(board: &Board, p: &Prepared, bin: &str, sensors: &Sensors) -> Result<PathBuf> {
    let dir = root().join(format!("target/fw/{}/{}", board.name, p.name));
    std::fs::create_dir_all(&dir)?;
    let model = dir.join(format!("{}.ember", p.name));
    let input = dir.join("input.bin");
    let expect = dir.join("expect.bin");
    std::fs::write(&model, &p.blob)?;
    std::fs::write(&input, &p.input)?;
    std::fs::write(&expect, &p.expect)?;

    step(&format!(
        "build firmware {bin}: {} on {} ({}, {})",
        p.name, board.name, board.target, board.cpu
    ));
    let target_dir = root().join(format!("target/boards/{}", board.name));
    let mut cmd = cargo();
    cmd.current_dir(root().join("boards"))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "ember-app",
            "--bin",
            bin,
        ])
        .args(["--target", board.target, "--features", board.name])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", board.rustflags())
        .env("EMBER_MODEL", &model)
        .env("EMBER_INPUT", &input)
        .env("EMBER_EXPECT", &expect)
        .env("EMBER_WAV", sensors.wav.clone().unwrap_or_default())
        .env(
            "EMBER_FRAME",
            sensors
                .frame
                .as_ref()
                .map(|f| f.0.clone())
                .unwrap_or_default(),
        )
        .env(
            "EMBER_FRAME_WIDTH",
            sensors.frame.as_ref().map(|f| f.1).unwrap_or(0).to_string(),
        )
        .env(
            "EMBER_FRAME_HEIGHT",
            sensors.frame.as_ref().map(|f| f.2).unwrap_or(0).to_string(),
        )
        .env("EMBER_LABELS", sensors.labels.join(","))
        .env(
            "EMBER_MODEL_PUBKEY",
            sensors.model_pubkey.clone().unwrap_or_default(),
        )
        .env(
            "EMBER_SIGN_SWEEP",
            if sensors.sign_sweep { "1" } else { "0" },
        )
        .env("EMBER_OTA", if sensors.ota { "1" } else { "0" })
        .env(
            "EMBER_PIXEL_SCALE",
            format!("{:?}", sensors.pixel_scale.unwrap_or(1.0)),
        )
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let spin = crate::progress::spinner(&format!("building {bin} for {}", board.name));
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    drop(spin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        eprint!("{stderr}");
        if let Some(msg) = stderr.lines().find_map(|l| {
            l.trim().strip_prefix("error: ").filter(|m| {
                m.contains("does not fit")
                    || m.contains("is not set")
                    || m.contains("not a compiled")
            })
        }) {
            bail!("{msg}");
        }
        if let Some(over) = stderr
            .lines()
            .find(|l| l.contains("will not fit in region") || l.contains("overflowed by"))
        {
            bail!(
                "{} + code does not fit {}: {}",
                p.name,
                board.name,
                over.trim().trim_start_matches("rust-lld: error: ")
            );
        }
        bail!("firmware build failed for {} on {}", p.name, board.name);
    }
    eprint!("{stderr}");
    let built = target_dir.join(format!("{}/release/{bin}", board.target));
    let elf = dir.join(format!("{bin}-{}-{}.elf", p.name, board.name));
    std::fs::copy(&built, &elf)
        .with_context(|| format!("cannot copy {} to {}", built.display(), elf.display()))?;
    eprintln!("    firmware: {}", elf.display());
    Ok(elf)
}

/// Class labels of a zoo model (from its vectors' index).
pub fn zoo_labels(model: &str) -> Result<Vec<String>> {
    let p = shared().join(format!("vectors/{model}_testvectors.json"));
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?,
    )?;
    Ok(v["labels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// Row names of a zoo model's vectors (clip or image of each row).
pub fn zoo_names(model: &str) -> Result<Vec<String>> {
    let p = shared().join(format!("vectors/{model}_testvectors.json"));
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?,
    )?;
    Ok(v["names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// Sensor data for `ember-see`: the PNG decoded to RGB888 in the firmware
/// folder, the zoo model's labels and pixel normalisation.
pub fn vision_sensors(model: &str, png: &Path) -> Result<Sensors> {
    let (rgb, w, h) = ember_vision::png::decode_rgb888(png)?;
    let stem = png
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "frame".into());
    let dir = root().join("target/fw/frames");
    std::fs::create_dir_all(&dir)?;
    let raw = dir.join(format!("{stem}.rgb"));
    std::fs::write(&raw, rgb)?;
    let pixel_scale = match model {
        "vww" => Some(1.0 / 255.0),
        "ic" => Some(1.0),
        _ => None,
    };
    Ok(Sensors {
        frame: Some((raw, w, h)),
        labels: zoo_labels(model).unwrap_or_default(),
        pixel_scale,
        ..Sensors::default()
    })
}
