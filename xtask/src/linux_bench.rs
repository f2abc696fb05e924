//! `cargo xtask bench --board linux-aarch64 [--vs tract] [--cpu …]`: Ember
//! and tract on aarch64 Linux under `qemu-aarch64`, counted the same way.
//!
//! Both engines run inside one small program (`xtask/linux-bench`), which
//! loads the model, runs a warm-up inference and then one inference
//! between two marker system calls. A QEMU TCG plugin the project builds
//! (`xtask/qemu-plugin/insn_count.c`; Debian's QEMU ships none) counts the
//! guest instructions between the markers. Model loading, Ember's
//! validation and tract's graph optimization stay outside the count.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use ember_runtime::Model;
use serde_json::json;

use crate::firmware::{self, ZOO};
use crate::{cargo, root, run, shared, step};

/// The board name this module answers to.
pub const BOARD: &str = "linux-aarch64";

/// CPU settings measured by default: no dot product, and everything but
/// SVE (so tract runs its NEON kernels, not its SVE ones).
pub const DEFAULT_CPUS: &[&str] = &["cortex-a53", "max,sve=off"];

/// The Ember compile target matching a QEMU CPU setting.
fn compile_target(cpu: &str) -> &'static str {
    if cpu.starts_with("cortex-a53")
        || cpu.starts_with("cortex-a57")
        || cpu.starts_with("cortex-a72")
    {
        "cortex-a53"
    } else {
        "cortex-a76"
    }
}

/// A model to measure: its ONNX file, input bytes and reference output.
struct Case {
    name: String,
    onnx: PathBuf,
    input: Vec<u8>,
    /// Expected output bytes (int8 golden) or values (float reference).
    golden: Golden,
    /// Input shapes fixed at compile time (transformers), in input order.
    shapes: Vec<(String, Vec<usize>)>,
}

enum Golden {
    Int8(Vec<u8>),
    F32(Vec<f32>),
    /// The first rows (embeddings, frames) of the first output, compared by
    /// cosine: `width` values per row.
    Rows {
        want: Vec<f32>,
        width: usize,
    },
    None,
}

/// Sequence length the MiniLM benchmarks are compiled for.
const MINILM_SEQ: usize = 128;

/// The transformer models of `../shared/models/transformers`.
pub const TRANSFORMERS: &[&str] = &["minilm-int8", "minilm-qdq", "whisper-f32", "whisper-int8"];

fn transformer_npz<T: ndarray_npy::ReadableElement>(
    file: &str,
    key: &str,
) -> Result<ndarray::ArrayD<T>> {
    let p = shared().join("models/transformers").join(file);
    let f = std::fs::File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut z =
        ndarray_npy::NpzReader::new(f).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    z.by_name(&format!("{key}.npy"))
        .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", p.display()))
}

/// MiniLM on the first test sentence padded to [`MINILM_SEQ`] tokens
/// (reference: sentence-transformers' embedding), the Whisper encoder on
/// the spoken "turn on the lights" (reference: onnxruntime's first 200
/// frames).
fn transformer_case(model: &str) -> Result<Case> {
    match model {
        "minilm-int8" | "minilm-qdq" => {
            let file = if model == "minilm-int8" {
                "all-MiniLM-L6-v2_int8_dynamic.onnx"
            } else {
                "all-MiniLM-L6-v2_int8_qdq.onnx"
            };
            let vectors = "minilm/minilm_testvectors.npz";
            let mut input = Vec::new();
            let mut shapes = Vec::new();
            for key in ["input_ids", "attention_mask", "token_type_ids"] {
                let a = transformer_npz::<i64>(vectors, key)?;
                let row: Vec<i64> = a.index_axis(ndarray::Axis(0), 0).iter().copied().collect();
                let mut padded = vec![0i32; MINILM_SEQ];
                for (d, &v) in padded.iter_mut().zip(&row) {
                    *d = v as i32;
                }
                input.extend(padded.iter().flat_map(|v| v.to_le_bytes()));
                shapes.push((key.to_string(), vec![1, MINILM_SEQ]));
            }
            let want = transformer_npz::<f32>(vectors, "sentence_embedding_reference")?;
            Ok(Case {
                name: model.to_string(),
                onnx: shared().join("models/transformers/minilm").join(file),
                input,
                golden: Golden::Rows {
                    want: want
                        .index_axis(ndarray::Axis(0), 0)
                        .iter()
                        .copied()
                        .collect(),
                    width: 384,
                },
                shapes,
            })
        }
        _ => {
            let (file, kind) = if model == "whisper-f32" {
                ("whisper-tiny.en_encoder_float32.onnx", "float")
            } else {
                ("whisper-tiny.en_encoder_int8_dynamic.onnx", "int8")
            };
            let vectors = "whisper-tiny-en-encoder/whisper_encoder_testvectors.npz";
            let clip = "espeak_turn_on_the_lights";
            let x = transformer_npz::<f32>(vectors, &format!("{clip}__input_features"))?;
            let want = transformer_npz::<f32>(
                vectors,
                &format!("{clip}__{kind}_onnx_last_hidden_state_first200"),
            )?;
            Ok(Case {
                name: model.to_string(),
                onnx: shared()
                    .join("models/transformers/whisper-tiny-en-encoder")
                    .join(file),
                input: x.iter().flat_map(|v| v.to_le_bytes()).collect(),
                golden: Golden::Rows {
                    want: want.iter().copied().collect(),
                    width: 384,
                },
                shapes: vec![("input_features".into(), vec![1, 80, 3000])],
            })
        }
    }
}

/// `kws` … `sww`: the int8 QDQ model on the zoo's first test vector,
/// golden `int8_tflite_ref_out`; `kws-f32` …: the float model on the float
/// vector, reference `float_onnx_out`; a path: an `.onnx` on zeros.
fn case(model: &str) -> Result<Case> {
    if TRANSFORMERS.contains(&model) {
        return transformer_case(model);
    }
    if ZOO.contains(&model) {
        return Ok(Case {
            name: model.to_string(),
            onnx: shared().join(format!("models/mlperf-tiny/{model}/{model}_int8_qdq.onnx")),
            input: firmware::zoo_input(model, 0)?,
            golden: Golden::Int8(firmware::zoo_golden(model, 0)?),
            shapes: vec![],
        });
    }
    if let Some(base) = model.strip_suffix("-f32").filter(|b| ZOO.contains(b)) {
        let input = firmware::zoo_input_f32(base, 0)?;
        return Ok(Case {
            name: model.to_string(),
            onnx: shared().join(format!("models/mlperf-tiny/{base}/{base}_float32.onnx")),
            input: input.iter().flat_map(|v| v.to_le_bytes()).collect(),
            golden: Golden::F32(firmware::zoo_float_reference(base, 0)?),
            shapes: vec![],
        });
    }
    let onnx = PathBuf::from(model);
    if !onnx.exists() {
        bail!(
            "model '{model}' not found: give a zoo name ({}), one with -f32 for the float model, a transformer ({}), or an .onnx",
            ZOO.join(", "),
            TRANSFORMERS.join(", ")
        );
    }
    Ok(Case {
        name: onnx
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "model".into()),
        onnx,
        input: Vec::new(),
        golden: Golden::None,
        shapes: vec![],
    })
}

/// One engine's run: instructions, output bytes, per-op laps.
struct EngineRun {
    instructions: u64,
    output: Vec<u8>,
    laps: Vec<(u32, u64)>,
}

/// Builds the plugin (host C compiler) into `dir`.
fn build_plugin(dir: &Path) -> Result<PathBuf> {
    let src = root().join("xtask/qemu-plugin/insn_count.c");
    let so = dir.join("libinsn_count.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    run(Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&so)
        .arg(&src))
    .context("cannot build the QEMU counting plugin (needs a host C compiler)")?;
    Ok(so)
}

/// Runs the bench program under `qemu-aarch64 -cpu cpu` with the plugin.
#[allow(clippy::too_many_arguments)]
fn run_engine(
    exe: &Path,
    plugin: &Path,
    cpu: &str,
    engine: &str,
    model: &Path,
    input: &Path,
    shapes: &str,
    dir: &Path,
) -> Result<EngineRun> {
    let log = dir.join(format!("{engine}.log"));
    let out = dir.join(format!("{engine}.out"));
    let _ = std::fs::remove_file(&log);
    let o = Command::new("qemu-aarch64")
        .args([
            "-L",
            "/usr/aarch64-linux-gnu",
            "-cpu",
            cpu,
            "-d",
            "plugin",
            "-D",
        ])
        .arg(&log)
        .arg("-plugin")
        .arg(plugin)
        .arg(exe)
        .arg(engine)
        .arg(model)
        .arg(input)
        .arg(&out)
        .env("EMBER_BENCH_SHAPES", shapes)
        .output()
        .context("cannot start qemu-aarch64 (cargo xtask setup installs qemu-user)")?;
    if !o.status.success() {
        bail!(
            "{engine} failed under qemu-aarch64 -cpu {cpu}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    let text = std::fs::read_to_string(&log)
        .with_context(|| format!("no plugin log {}", log.display()))?;
    let mut instructions = None;
    let mut laps = Vec::new();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["region", n] if instructions.is_none() => instructions = n.parse().ok(),
            ["lap", i, n] => {
                if let (Ok(i), Ok(n)) = (i.parse(), n.parse()) {
                    laps.push((i, n));
                }
            }
            _ => {}
        }
    }
    Ok(EngineRun {
        instructions: instructions.context("the plugin reported no measured region")?,
        output: std::fs::read(&out).with_context(|| format!("no output {}", out.display()))?,
        laps,
    })
}

/// Median (and fastest) microseconds per inference on this machine, one
/// thread, over up to 50 runs after the warm-up: Ember, and tract when asked.
fn host_wall(
    exe: &Path,
    blob: &Path,
    onnx: &Path,
    input: &Path,
    shapes: &str,
    dir: &Path,
    vs_tract: bool,
) -> Result<serde_json::Value> {
    let time = |engine: &str, model: &Path| -> Result<(f64, f64)> {
        let o = Command::new(exe)
            .arg(engine)
            .arg(model)
            .arg(input)
            .arg(dir.join(format!("{engine}.host.out")))
            .env("EMBER_WALL_RUNS", "50")
            .env("EMBER_BENCH_SHAPES", shapes)
            .output()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        if !o.status.success() {
            bail!(
                "{engine} failed on the host: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&o.stderr);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("wall_us "))
            .context("no wall_us line")?;
        let mut v = line
            .split_whitespace()
            .filter_map(|x| x.parse::<f64>().ok());
        Ok((v.next().unwrap_or(0.0), v.next().unwrap_or(0.0)))
    };
    let (em, emin) = time("ember", blob)?;
    let mut j = json!({"ember": {"median": em, "min": emin}});
    if vs_tract {
        let (tm, tmin) = time("tract", onnx)?;
        j["tract"] = json!({"median": tm, "min": tmin});
    }
    // onnxruntime through its Python package, when one is installed
    // (`EMBER_PYTHON`, default python3): same file, same raw input.
    let python = std::env::var("EMBER_PYTHON").unwrap_or_else(|_| "python3".into());
    let ort = Command::new(&python)
        .arg(root().join("xtask/linux-bench/ort_wall.py"))
        .arg(onnx)
        .arg(input)
        .env("EMBER_BENCH_SHAPES", shapes)
        .output();
    j["onnxruntime"] = match ort {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stderr);
            let mut v = text
                .lines()
                .find_map(|l| l.strip_prefix("wall_us "))
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|x| x.parse::<f64>().ok());
            json!({"median": v.next(), "min": v.next()})
        }
        _ => {
            json!({"error": format!("{python} cannot import onnxruntime (pip install onnxruntime, or set EMBER_PYTHON)")})
        }
    };
    Ok(j)
}

/// How far `got` is from the golden output: (bytes or values that differ,
/// largest absolute difference).
fn compare(golden: &Golden, got: &[u8]) -> Option<(usize, f64)> {
    match golden {
        Golden::Int8(g) if g.len() == got.len() => Some((
            g.iter().zip(got).filter(|(a, b)| a != b).count(),
            g.iter()
                .zip(got)
                .map(|(&a, &b)| ((a as i8) as f64 - (b as i8) as f64).abs())
                .fold(0.0, f64::max),
        )),
        Golden::Rows { want, width } if want.len() * 4 <= got.len() && *width > 0 => {
            let v: Vec<f32> = got[..want.len() * 4]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let cos = |a: &[f32], b: &[f32]| {
                let d: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
                let n = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
                d / (n(a) * n(b)).max(1e-30)
            };
            let worst = v
                .chunks_exact(*width)
                .zip(want.chunks_exact(*width))
                .map(|(a, b)| cos(a, b))
                .fold(1f64, f64::min);
            // Rows further than cosine 0.99 from the reference, and the
            // worst row's distance (1 − cosine).
            Some((
                v.chunks_exact(*width)
                    .zip(want.chunks_exact(*width))
                    .filter(|(a, b)| cos(a, b) < 0.99)
                    .count(),
                1.0 - worst,
            ))
        }
        Golden::F32(g) if g.len() * 4 == got.len() => {
            let v = got
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            let d: Vec<f64> = g
                .iter()
                .zip(v)
                .map(|(&a, b)| (a as f64 - b as f64).abs())
                .collect();
            Some((
                d.iter().filter(|&&x| x > 1e-4).count(),
                d.iter().copied().fold(0.0, f64::max),
            ))
        }
        _ => None,
    }
}

/// Measures `models` on each of `cpus`, with tract beside Ember when
/// `vs_tract` (and both timed natively on this machine with `wall`);
/// prints Markdown or JSON.
pub fn bench(
    models: &[String],
    cpus: &[String],
    vs_tract: bool,
    wall: bool,
    json: bool,
    out: Option<&Path>,
) -> Result<()> {
    crate::setup::setup()?;
    let dir = root().join("target/linux-bench");
    std::fs::create_dir_all(&dir)?;
    step("build the QEMU instruction-counting plugin");
    let plugin = build_plugin(&dir)?;
    step("build ember-linux-bench (Ember + tract) for aarch64-unknown-linux-gnu");
    run(cargo().args([
        "build",
        "--release",
        "--target",
        "aarch64-unknown-linux-gnu",
        "-p",
        "ember-linux-bench",
    ]))?;
    let exe = root().join("target/aarch64-unknown-linux-gnu/release/ember-linux-bench");
    let host_exe = root().join("target/release/ember-linux-bench");
    if wall {
        step("build ember-linux-bench for this machine (host wall-clock)");
        run(cargo().args(["build", "--release", "-p", "ember-linux-bench"]))?;
    }
    let mut rows = Vec::new();
    for m in models {
        let c = case(m)?;
        for cpu in cpus {
            let target = compile_target(cpu);
            step(&format!(
                "{} on qemu-aarch64 -cpu {cpu} (Ember --target {target})",
                c.name
            ));
            let opts = ember_compiler::Options {
                target: target.parse().map_err(anyhow::Error::msg)?,
                input_shapes: c.shapes.iter().cloned().collect(),
                ..Default::default()
            };
            let shapes = c
                .shapes
                .iter()
                .map(|(_, d)| {
                    d.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join("x")
                })
                .collect::<Vec<_>>()
                .join(";");
            let blob = ember_compiler::compile_file(&c.onnx, &opts)
                .with_context(|| format!("cannot compile {}", c.onnx.display()))?
                .blob;
            let aligned = ember_compiler::AlignedBlob::new(&blob);
            let model = Model::load(aligned.bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let input = if c.input.is_empty() {
                let n: usize = (0..model.num_inputs())
                    .filter_map(|i| model.input_info(i).ok().map(|t| t.size))
                    .sum();
                vec![0u8; n]
            } else {
                c.input.clone()
            };
            let blob_path = dir.join(format!("{}.ember", c.name));
            let input_path = dir.join(format!("{}.in", c.name));
            std::fs::write(&blob_path, &blob)?;
            std::fs::write(&input_path, &input)?;
            let e = run_engine(
                &exe,
                &plugin,
                cpu,
                "ember",
                &blob_path,
                &input_path,
                &shapes,
                &dir,
            )?;
            let t = if vs_tract {
                Some(run_engine(
                    &exe,
                    &plugin,
                    cpu,
                    "tract",
                    &c.onnx,
                    &input_path,
                    &shapes,
                    &dir,
                ))
            } else {
                None
            };
            let macs = model.total_macs();
            let layers: Vec<_> = e
                .laps
                .iter()
                .map(|&(i, n)| {
                    let op = model.op(i).ok();
                    json!({
                        "index": i,
                        "op": op.as_ref().map(|o| format!("{:?}", o.opcode)),
                        "name": op.as_ref().map(|o| o.name.to_string()),
                        "instructions": n,
                        "macs": model.op_macs(i),
                    })
                })
                .collect();
            let ember_cmp = compare(&c.golden, &e.output);
            let tract_json = match &t {
                None => serde_json::Value::Null,
                Some(Ok(t)) => {
                    let cmp = compare(&c.golden, &t.output);
                    json!({
                        "output_worst_row_cosine": match c.golden {
                            Golden::Rows { .. } => cmp.map(|c| 1.0 - c.1),
                            _ => None,
                        },
                        "instructions": t.instructions,
                        "macs_per_instruction": macs as f64 / t.instructions.max(1) as f64,
                        "ember_over_tract": e.instructions as f64 / t.instructions.max(1) as f64,
                        "output_differs_from_reference": cmp.map(|c| c.0),
                        "output_max_abs_diff": cmp.map(|c| c.1),
                    })
                }
                Some(Err(err)) => json!({"error": format!("{err:#}")}),
            };
            let host = if wall {
                host_wall(
                    &host_exe,
                    &blob_path,
                    &c.onnx,
                    &input_path,
                    &shapes,
                    &dir,
                    vs_tract,
                )?
            } else {
                serde_json::Value::Null
            };
            rows.push(json!({
                "host_wall_us": host,
                "model": c.name,
                "board": BOARD,
                "cpu": cpu,
                "target": target,
                "instructions": e.instructions,
                "macs": macs,
                "macs_per_instruction": macs as f64 / e.instructions.max(1) as f64,
                "arena_bytes": model.arena_bytes(),
                "blob_bytes": blob.len(),
                "output_differs_from_reference": ember_cmp.map(|c| c.0),
                "output_worst_row_cosine": match c.golden {
                    Golden::Rows { .. } => ember_cmp.map(|c| 1.0 - c.1),
                    _ => None,
                },
                "output_max_abs_diff": ember_cmp.map(|c| c.1),
                "tract": tract_json,
                "layers": layers,
            }));
        }
    }
    let md = markdown(&rows);
    if let Some(o) = out {
        std::fs::write(o, &md).with_context(|| format!("cannot write {}", o.display()))?;
    }
    if json {
        let v = if rows.len() == 1 {
            rows[0].clone()
        } else {
            serde_json::Value::Array(rows.clone())
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{md}");
    }
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| {
            r["output_differs_from_reference"].as_u64().unwrap_or(0) > 0
                && r["model"].as_str().is_some_and(|m| ZOO.contains(&m))
        })
        .map(|r| format!("{} ({})", r["model"], r["cpu"]))
        .collect();
    if !bad.is_empty() {
        bail!(
            "Ember's int8 output differs from int8_tflite_ref_out: {}",
            bad.join(", ")
        );
    }
    Ok(())
}

/// The summary table and each model's per-layer profile.
fn markdown(rows: &[serde_json::Value]) -> String {
    let mut s = String::from(
        "| model | -cpu | Ember instructions | MACs/instr | tract instructions | Ember ÷ tract | Ember output vs reference | tract output vs reference |\n|---|---|---:|---:|---:|---:|---|---|\n",
    );
    let diff = |v: &serde_json::Value| match (
        v["output_differs_from_reference"].as_u64(),
        v["output_max_abs_diff"].as_f64(),
    ) {
        _ if v["output_worst_row_cosine"].is_f64() => format!(
            "cosine ≥ {:.4}",
            v["output_worst_row_cosine"].as_f64().unwrap_or(0.0)
        ),
        (Some(0), _) => "equal".to_string(),
        (Some(n), Some(d)) => format!("{n} differ (max {d:.3})"),
        _ => "—".to_string(),
    };
    for r in rows {
        let t = &r["tract"];
        s += &format!(
            "| {} | {} | {} | {:.3} | {} | {} | {} | {} |\n",
            r["model"].as_str().unwrap_or(""),
            r["cpu"].as_str().unwrap_or(""),
            r["instructions"],
            r["macs_per_instruction"].as_f64().unwrap_or(0.0),
            t.get("instructions")
                .map(|v| v.to_string())
                .unwrap_or_else(|| {
                    t.get("error")
                        .and_then(|e| e.as_str())
                        .map(|e| format!("failed: {e}"))
                        .unwrap_or("—".into())
                }),
            t.get("ember_over_tract")
                .and_then(|v| v.as_f64())
                .map(|v| format!("{v:.3}"))
                .unwrap_or("—".into()),
            diff(r),
            if t.get("instructions").is_some() {
                diff(t)
            } else {
                "—".into()
            },
        );
    }
    if rows.iter().any(|r| !r["host_wall_us"].is_null()) {
        s += "\nHost wall-clock (this machine, one thread, median of up to 50 runs after a warm-up, at most about 20 s per engine):\n\n| model | Ember µs | tract µs | onnxruntime µs | Ember ÷ tract |\n|---|---:|---:|---:|---:|\n";
        let mut seen = std::collections::HashSet::new();
        for r in rows {
            let h = &r["host_wall_us"];
            let name = r["model"].as_str().unwrap_or("");
            if h.is_null() || !seen.insert(name.to_string()) {
                continue;
            }
            let e = h["ember"]["median"].as_f64().unwrap_or(0.0);
            let t = h["tract"]["median"].as_f64();
            s += &format!(
                "| {name} | {e:.1} | {} | {} | {} |\n",
                t.map(|t| format!("{t:.1}")).unwrap_or("—".into()),
                h["onnxruntime"]["median"]
                    .as_f64()
                    .map(|t| format!("{t:.1}"))
                    .unwrap_or("—".into()),
                t.map(|t| format!("{:.2}", e / t.max(1e-9)))
                    .unwrap_or("—".into())
            );
        }
    }
    for r in rows {
        s += &format!(
            "\n{} on qemu-aarch64 -cpu {}: per-layer instructions\n\n| # | op | instructions | MACs | MACs/instr |\n|---:|---|---:|---:|---:|\n",
            r["model"].as_str().unwrap_or(""),
            r["cpu"].as_str().unwrap_or("")
        );
        for l in r["layers"].as_array().into_iter().flatten() {
            let n = l["instructions"].as_u64().unwrap_or(0);
            let m = l["macs"].as_u64().unwrap_or(0);
            s += &format!(
                "| {} | {} | {} | {} | {:.3} |\n",
                l["index"],
                l["op"].as_str().unwrap_or(""),
                n,
                m,
                m as f64 / n.max(1) as f64
            );
        }
    }
    s
}
