//! `cargo xtask …`: project automation (setup, tests, demo).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Bare-metal targets the runtime must build for.
const NO_STD_TARGETS: &[&str] = &[
    "thumbv7em-none-eabihf",
    "thumbv8m.main-none-eabihf",
    "aarch64-unknown-none",
];
/// no_std crates built for every bare-metal target.
const NO_STD_CRATES: &[&str] = &["ember-runtime", "ember-audio"];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(|s| s.as_str()).collect();
    match args.first().map(|s| s.as_str()) {
        Some("setup") => setup(),
        Some("test") => test(),
        Some("demo") => demo(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  setup            install what the build needs (rustup targets)\n  test             run every test and the bare-metal builds\n  demo [CLIP]      compile the keyword-spotting model and recognise CLIP (default yes_v0)"
            );
            bail!("no command given")
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared() -> PathBuf {
    std::env::var_os("EMBER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"))
}

fn step(what: &str) {
    eprintln!("\n==> {what}");
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("    $ {cmd:?}");
    let st = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed ({st})");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Installs the rustup targets (idempotent).
fn setup() -> Result<()> {
    step("setup: rustup targets");
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root())
        .output();
    let have = installed
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let missing: Vec<&str> = NO_STD_TARGETS
        .iter()
        .copied()
        .filter(|t| !have.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        eprintln!("    all targets present");
    } else {
        run(Command::new("rustup")
            .args(["target", "add"])
            .args(&missing))?;
    }
    Ok(())
}

fn test() -> Result<()> {
    setup()?;
    if !shared().join("README.md").exists() {
        bail!(
            "shared data not found at {} (set EMBER_SHARED)",
            shared().display()
        );
    }
    step("format check");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    step("unit, end-to-end and CLI tests");
    run(cargo()
        .args(["test", "--workspace", "--exclude", "xtask"])
        .env("EMBER_SHARED", shared()))?;
    step("runtime and audio front end build for bare-metal targets (no_std, no alloc)");
    for t in NO_STD_TARGETS {
        let mut c = cargo();
        c.args(["build", "--release", "--target", t]);
        for k in NO_STD_CRATES {
            c.args(["-p", k]);
        }
        run(&mut c)?;
    }
    eprintln!("\nall tests passed");
    Ok(())
}

/// KWS demo: a spoken clip through the on-device audio front end and the
/// compiled int8 model, via the `ember` CLI.
fn demo(args: &[&str]) -> Result<()> {
    let clip = args.first().copied().unwrap_or("yes_v0");
    let wav = shared().join(format!("audio/keywords/{clip}.wav"));
    if !wav.exists() {
        bail!(
            "no clip {} (the clips are audio/keywords/WORD_vN.wav in the shared data)",
            wav.display()
        );
    }
    let out_dir = root().join("target/demo");
    std::fs::create_dir_all(&out_dir)?;
    let model = shared().join("models/mlperf-tiny/kws/kws_int8_qdq.onnx");
    let blob = out_dir.join("kws.ember");
    let path = |p: &Path| p.to_str().map(String::from).context("non-UTF-8 path");
    let ember = |a: &[&str]| -> Result<()> {
        run(cargo()
            .args(["run", "--release", "--quiet", "-p", "ember-cli", "--"])
            .args(a))
    };
    step("compile kws_int8_qdq.onnx (the MLPerf Tiny keyword spotter)");
    ember(&[
        "compile",
        &path(&model)?,
        "-o",
        &path(&blob)?,
        "--target",
        "cortex-m55",
    ])?;
    step("inspect");
    ember(&["inspect", &path(&blob)?])?;
    step(&format!(
        "listen: audio/keywords/{clip}.wav → MFCC → int8 model"
    ));
    ember(&["listen", &path(&blob)?, &path(&wav)?])?;
    Ok(())
}
