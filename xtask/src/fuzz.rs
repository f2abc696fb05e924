//! `cargo xtask fuzz [TARGET] [--seconds N]`: the libFuzzer targets in
//! `fuzz/`, each run for a bounded time with corpora seeded from the shared
//! models, audio and images. Installs the nightly toolchain and
//! `cargo-fuzz` when they are missing; fails on any finding, naming the
//! target and the input libFuzzer saved.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ember_compiler::Options;
use ndarray::ArrayD;
use ndarray_npy::{NpzReader, ReadableElement, WriteNpyExt};

use crate::{root, run, shared, step};

/// The fuzz targets, in the order they run, with the inputs each runs in
/// `cargo xtask test` (about 30 s each here; fewer than a run from the same
/// seeds that found nothing).
pub(crate) const TARGETS: &[(&str, u64)] = &[
    ("load_blob", 8_000),
    ("compile_onnx", 5_000),
    ("npy", 40_000),
    ("wav", 2_000),
    ("png", 50_000),
    ("invoke_random", 900),
];

/// The time cap per target in `cargo xtask test`, whose run is a fixed
/// number of inputs (twice the 30 s they take here). The cold build of the
/// fuzz crate before it took 566 s on two cores here.
pub(crate) const SUITE_SECONDS: u64 = 60;

/// libFuzzer's memory limit: `compile_onnx` gives the compiler a 256 MiB
/// budget (folding, constants) and the other targets check sizes against
/// theirs, so a test case above this is a finding.
const RSS_LIMIT_MB: u32 = 2048;

/// libFuzzer's per-input time limit, in seconds.
const TIMEOUT_S: u32 = 20;

/// What one bounded run did.
struct Outcome {
    target: &'static str,
    runs: u64,
    exec_per_s: u64,
    corpus: usize,
    seconds: f64,
}

/// Runs `target` (every target when `None`) for `seconds` each.
///
/// The suite's run (`suite`) is fixed instead: each target runs the number
/// of inputs in [`TARGETS`] from the shared data's seeds alone (not the
/// ONNX node tests), with the fixed seed, so CI replays exactly a run that
/// passed here; `seconds` is then only a time cap.
pub(crate) fn fuzz(target: Option<&str>, seconds: u64, suite: bool) -> Result<()> {
    let targets: Vec<(&'static str, u64)> = match target {
        None => TARGETS.to_vec(),
        Some(t) => vec![*TARGETS.iter().find(|k| k.0 == t).with_context(|| {
            let names: Vec<&str> = TARGETS.iter().map(|k| k.0).collect();
            format!("no fuzz target {t:?} (targets: {})", names.join(", "))
        })?],
    };
    setup_fuzz()?;
    step("fuzz: seeding the corpora from the shared data");
    for (t, _) in &targets {
        let n = seed(t, suite)?;
        eprintln!("    {t:<14} {n} seed files");
    }
    step("fuzz: building the targets (cargo +nightly fuzz build)");
    let t0 = Instant::now();
    run(nightly_cargo()
        .args(["fuzz", "build"])
        .current_dir(fuzz_dir()))?;
    eprintln!("    built in {:.0} s", t0.elapsed().as_secs_f64());
    let mut done = Vec::new();
    for (t, suite_runs) in targets {
        step(&format!("fuzz: {t} for {seconds} s"));
        done.push(run_target(t, seconds, suite.then_some(suite_runs))?);
    }
    eprintln!();
    for o in &done {
        eprintln!(
            "    fuzz {:<14} {:>10} runs in {:>4.0} s ({:>6} exec/s), corpus {:>5} inputs, no finding",
            o.target, o.runs, o.seconds, o.exec_per_s, o.corpus
        );
    }
    Ok(())
}

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

/// `cargo +nightly`, outside the stable toolchain `cargo xtask` runs on.
fn nightly_cargo() -> Command {
    let mut c = Command::new("cargo");
    c.arg("+nightly");
    // Set by the stable cargo that runs xtask; they would pin the child
    // to stable.
    for v in ["RUSTUP_TOOLCHAIN", "CARGO", "RUSTC", "RUSTDOC"] {
        c.env_remove(v);
    }
    c
}

/// Installs the nightly toolchain (minimal profile) and `cargo-fuzz` when
/// they are missing.
pub(crate) fn setup_fuzz() -> Result<()> {
    let toolchains = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .context("cannot run rustup")?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        step("setup: the nightly toolchain (libFuzzer needs its sanitizer flags)");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let has_fuzz = nightly_cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_fuzz {
        step("setup: cargo-fuzz");
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Runs one target for `seconds` in one process; fails on a finding.
fn run_target(target: &'static str, seconds: u64, runs: Option<u64>) -> Result<Outcome> {
    let corpus = fuzz_dir().join("corpus").join(target);
    let log_path = fuzz_dir().join("artifacts").join(format!("{target}.log"));
    std::fs::create_dir_all(log_path.parent().context("log folder")?)?;
    let log = File::create(&log_path)?;
    let mut c = nightly_cargo();
    c.args(["fuzz", "run", target])
        .arg(&corpus)
        .args([
            "--".to_string(),
            format!("-max_total_time={seconds}"),
            format!("-runs={}", runs.map_or(-1, |r| r as i64)),
            // One fixed sequence of inputs from the same seeds: a run that
            // passed here passes in CI, and a finding is reproducible.
            "-seed=1".to_string(),
            format!("-rss_limit_mb={RSS_LIMIT_MB}"),
            format!("-timeout={TIMEOUT_S}"),
            "-print_final_stats=1".to_string(),
        ])
        .current_dir(fuzz_dir())
        .env("EMBER_SHARED", shared())
        .stdout(log.try_clone()?)
        .stderr(log);
    eprintln!("    $ {c:?} (output in {})", log_path.display());
    let t0 = Instant::now();
    let st = c.status().with_context(|| format!("cannot start {c:?}"))?;
    let secs = t0.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !st.success() {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        eprintln!("{}", tail.join("\n"));
        let artifact = text
            .lines()
            .rev()
            .find_map(|l| l.split("Test unit written to ").nth(1))
            .map(|a| fuzz_dir().join(a.trim()).display().to_string())
            .unwrap_or_else(|| format!("none saved; see {}", log_path.display()));
        bail!("fuzz target {target} failed ({st}): artifact {artifact}");
    }
    let stat = |key: &str| -> u64 {
        text.lines()
            .rev()
            .filter_map(|l| l.strip_prefix(key))
            .find_map(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let o = Outcome {
        target,
        runs: stat("stat::number_of_executed_units:"),
        exec_per_s: stat("stat::average_exec_per_sec:"),
        corpus: std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0),
        seconds: secs,
    };
    eprintln!(
        "    {target}: {} runs ({} exec/s), corpus {} inputs",
        o.runs, o.exec_per_s, o.corpus
    );
    Ok(o)
}

/// Writes the seed inputs of `target` into `fuzz/corpus/<target>/` (files
/// named `seed-*`, rewritten each time; what libFuzzer adds is kept).
/// Returns how many there are.
fn seed(target: &str, suite: bool) -> Result<usize> {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    let models = shared().join("models/mlperf-tiny");
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    match target {
        "load_blob" => {
            // First byte 1: the target recomputes the checksum.
            for (m, t) in [
                ("kws/kws_int8_qdq.onnx", "generic"),
                ("kws/kws_int8_qdq.onnx", "cortex-m55"),
                ("kws/kws_float32.onnx", "generic"),
                ("sww/sww_int8_qdq.onnx", "cortex-a76"),
                ("ic/ic_int8_qdq.onnx", "cortex-m4"),
                ("ad/ad_int8_qdq.onnx", "reference"),
            ] {
                let opts = Options {
                    target: t.parse().map_err(|e: String| anyhow::anyhow!(e))?,
                    ..Default::default()
                };
                let c = ember_compiler::compile_file(models.join(m), &opts)
                    .with_context(|| format!("compiling {m} for {t}"))?;
                let mut b = vec![1u8];
                b.extend_from_slice(&c.blob);
                seeds.push((format!("{}-{t}", stem(m)), b));
            }
            // A blob with state pairs (the streamed wake-word model's four
            // rings), so that mutations reach the state section's checks.
            let opts = Options {
                target: "cortex-m55"
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!(e))?,
                stream: Some(ember_compiler::stream::StreamAxis::Auto),
                ..Default::default()
            };
            let c = ember_compiler::compile_file(models.join("sww/sww_int8_qdq.onnx"), &opts)
                .context("compiling sww with --stream")?;
            let mut b = vec![1u8];
            b.extend_from_slice(&c.blob);
            seeds.push(("sww_int8_qdq-stream-cortex-m55".into(), b));
        }
        "compile_onnx" => {
            for m in [
                "kws/kws_int8_qdq.onnx",
                "kws/kws_int8_ort_qdq.onnx",
                "kws/kws_float32.onnx",
                "sww/sww_int8_qdq.onnx",
                "ic/ic_int8_qdq.onnx",
                "ic/ic_int8_ort_qdq.onnx",
            ] {
                seeds.push((stem(m), read(&models.join(m))?));
            }
            // The ONNX backend's one-operator models, when the test suite
            // has installed them.
            let node = root()
                .join("target/python")
                .join(crate::setup::ONNX_PACKAGE.replace("==", "-"))
                .join("onnx/backend/test/data/node");
            if let Some(dirs) = (!suite).then(|| std::fs::read_dir(&node).ok()).flatten() {
                let mut dirs: Vec<PathBuf> =
                    dirs.filter_map(|d| d.ok().map(|d| d.path())).collect();
                dirs.sort();
                for d in dirs {
                    let m = d.join("model.onnx");
                    if let Ok(b) = std::fs::read(&m) {
                        if b.len() <= 4096 {
                            seeds.push((format!("node-{}", stem(&d.display().to_string())), b));
                        }
                    }
                }
            }
        }
        "npy" => {
            // First byte: bit 0 picks the int8 model, bit 1 allows NaN/Inf.
            let kws = shared().join("vectors/kws_testvectors.npz");
            let f: ArrayD<f32> = npz_array(&kws, "mfcc_float")?;
            let q: ArrayD<i8> = npz_array(&kws, "mfcc_int8")?;
            let f: Vec<f32> = f.iter().copied().take(12).collect();
            let q: Vec<i8> = q.iter().copied().take(10).collect();
            let mut npy = |tag: u8, a: &dyn Fn(&mut Vec<u8>) -> Result<()>| -> Result<()> {
                let mut b = vec![tag];
                a(&mut b)?;
                seeds.push((format!("npy-{tag}"), b));
                Ok(())
            };
            npy(0, &|b| {
                write_npy(ArrayD::from_shape_vec(vec![1, 3, 4], f.clone())?, b)
            })?;
            npy(1, &|b| {
                write_npy(ArrayD::from_shape_vec(vec![2, 5], q.clone())?, b)
            })?;
            let mut nan = f.clone();
            nan[5] = f32::NAN;
            npy(2, &|b| {
                write_npy(ArrayD::from_shape_vec(vec![1, 3, 4], nan.clone())?, b)
            })?;
            // int64 and float64 arrays, which the reader refuses by name.
            npy(4, &|b| {
                write_npy(ArrayD::from_shape_vec(vec![1, 3, 4], vec![7i64; 12])?, b)
            })?;
            npy(5, &|b| {
                write_npy(ArrayD::from_shape_vec(vec![2, 5], vec![0.5f64; 10])?, b)
            })?;
        }
        "wav" => {
            let kw = shared().join("audio/keywords");
            let mut clips: Vec<PathBuf> = std::fs::read_dir(&kw)
                .with_context(|| format!("cannot list {}", kw.display()))?
                .filter_map(|d| d.ok().map(|d| d.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wav"))
                .collect();
            clips.sort();
            for p in clips.iter().step_by(10) {
                seeds.push((stem(&p.display().to_string()), read(p)?));
            }
            let marvin = shared().join("audio/mlperf/marvin_617de221_0.wav");
            seeds.push(("marvin".into(), read(&marvin)?));
        }
        "png" => {
            let dir = shared().join("images");
            let mut imgs: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .filter_map(|d| d.ok().map(|d| d.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "png"))
                .collect();
            imgs.sort();
            for p in imgs
                .iter()
                .filter(|p| p.display().to_string().ends_with("_32.png"))
            {
                seeds.push((stem(&p.display().to_string()), read(p)?));
            }
            for p in imgs
                .iter()
                .filter(|p| p.display().to_string().ends_with("_96.png"))
                .step_by(4)
            {
                seeds.push((stem(&p.display().to_string()), read(p)?));
            }
        }
        "invoke_random" => {
            // First byte: the model, in the target's order (kws int8, kws
            // float, ad int8, ad float, ic int8, kws int8 from onnxruntime).
            let v = |m: &str| shared().join(format!("vectors/{m}_testvectors.npz"));
            let rows: [(u8, Vec<u8>); 6] = [
                (0, row_bytes::<i8>(&v("kws"), "mfcc_int8")?),
                (1, row_bytes::<f32>(&v("kws"), "mfcc_float")?),
                (2, row_bytes::<i8>(&v("ad"), "input_int8")?),
                (3, row_bytes::<f32>(&v("ad"), "input_float")?),
                (4, row_bytes::<i8>(&v("ic"), "input_int8")?),
                (5, row_bytes::<f32>(&v("kws"), "mfcc_float")?),
            ];
            for (i, r) in rows {
                let mut b = vec![i];
                b.extend_from_slice(&r);
                seeds.push((format!("model{i}-row0"), b));
                let mut nan = vec![i];
                nan.extend(std::iter::repeat_n([0x00, 0x00, 0xc0, 0x7f], 4).flatten());
                seeds.push((format!("model{i}-nan"), nan));
            }
        }
        _ => bail!("no seeds for fuzz target {target}"),
    }
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
    }
    Ok(seeds.len())
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

/// A file's name without folder and extension.
fn stem(p: &str) -> String {
    Path::new(p)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| p.to_string())
}

fn npz_array<T: ReadableElement>(p: &Path, key: &str) -> Result<ArrayD<T>> {
    let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut z = NpzReader::new(f).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    z.by_name(key)
        .or_else(|_| z.by_name(&format!("{key}.npy")))
        .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", p.display()))
}

/// Row 0 of array `key` as little-endian bytes.
fn row_bytes<T: ReadableElement + Copy + ToLe>(p: &Path, key: &str) -> Result<Vec<u8>> {
    let a: ArrayD<T> = npz_array(p, key)?;
    let rows = a.shape().first().copied().unwrap_or(1).max(1);
    let n = a.len() / rows;
    Ok(a.iter().take(n).flat_map(|v| v.le()).collect())
}

/// Element types written as little-endian bytes.
trait ToLe {
    fn le(self) -> Vec<u8>;
}
impl ToLe for i8 {
    fn le(self) -> Vec<u8> {
        vec![self as u8]
    }
}
impl ToLe for f32 {
    fn le(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

fn write_npy<T: ndarray_npy::WritableElement>(a: ArrayD<T>, out: &mut Vec<u8>) -> Result<()> {
    a.write_npy(out).map_err(|e| anyhow::anyhow!("{e}"))
}
