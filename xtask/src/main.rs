//! `cargo xtask …`: project automation. Builds firmware for the boards,
//! runs it in QEMU, sizes and benchmarks it, flashes real boards, runs the
//! tests and the demo.

mod bench;
mod boards;
mod firmware;
mod qemu;
mod size;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

/// Bare-metal targets the runtime must build for.
const NO_STD_TARGETS: &[&str] = &[
    "thumbv7em-none-eabihf",
    "thumbv8m.main-none-eabihf",
    "aarch64-unknown-none",
];
/// no_std crates built for every bare-metal target.
const NO_STD_CRATES: &[&str] = &["ember-runtime", "ember-audio"];

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Ember project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the builds need (rustup targets, QEMU, cross linker); idempotent.
    Setup,
    /// Run every test: host tests, firmware on the simulated boards, bare-metal builds.
    Test,
    /// Recognise a spoken keyword: compile the KWS model and run it (default clip yes_v0).
    Demo {
        /// Clip name from the shared audio/keywords folder.
        clip: Option<String>,
    },
    /// Build firmware for a board with a model (and input) embedded.
    Build(FwArgs),
    /// Build and run firmware; exits 0 only if the outputs equal the expected ones.
    Run(FwArgs),
    /// Flash and run firmware on a real board through a debug probe.
    Flash {
        #[command(flatten)]
        fw: FwArgs,
        /// Only check the image against the chip's memory; no probe needed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Flash and RAM per section and per model.
    Size(FwArgs),
    /// Instructions per inference, MACs/instruction, flash and RAM per model and board.
    Bench {
        /// Boards (default: mps3-an547 and mps2-an386).
        #[arg(long)]
        board: Vec<String>,
        /// Models (default: the five MLPerf Tiny int8 models).
        #[arg(long)]
        model: Vec<String>,
        /// Print JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        /// Also write the Markdown report here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct FwArgs {
    /// Board (see `boards/`).
    #[arg(long, default_value = boards::DEFAULT)]
    board: String,
    /// Model: a zoo name (kws, vww, ic, ad, sww), an .onnx or a compiled .ember.
    #[arg(long)]
    model: String,
    /// Input as .npy (int8/uint8/float32/int32 as the model wants; float32 is
    /// quantized for a quantized input). Default: the zoo vector, else zeros.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Expected output as .npy. Default: the host reference kernels' output.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Row of the zoo test vectors used as default input.
    #[arg(long, default_value_t = 0)]
    row: usize,
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Setup => setup(),
        Cmd::Test => test(),
        Cmd::Demo { clip } => demo(clip.as_deref()),
        Cmd::Build(a) => build_cmd(&a).map(|_| ()),
        Cmd::Run(a) => run_cmd(&a),
        Cmd::Flash { fw, dry_run } => flash_cmd(&fw, dry_run),
        Cmd::Size(a) => size_cmd(&a),
        Cmd::Bench {
            board,
            model,
            json,
            out,
        } => bench_cmd(&board, &model, json, out.as_deref()),
    };
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared data folder (`EMBER_SHARED`, default `../shared`).
pub fn shared() -> PathBuf {
    std::env::var_os("EMBER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"))
}

/// Announces a long step.
pub fn step(what: &str) {
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

/// `cargo`, the one running xtask.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Debian packages the simulated boards and the aarch64 Linux build need,
/// with a binary each provides.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-arm", "qemu-system-arm"),
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("qemu-aarch64", "qemu-user"),
    ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    ("aarch64-linux-gnu-gcc", "libc6-dev-arm64-cross"),
];

/// Installs what is missing: rustup targets, QEMU, the aarch64 cross linker.
/// Idempotent; does nothing when everything is there.
fn setup() -> Result<()> {
    step("setup: rustup targets");
    for t in NO_STD_TARGETS.iter().chain(&["aarch64-unknown-linux-gnu"]) {
        setup_target(t)?;
    }
    eprintln!("    targets present");
    step("setup: QEMU and the aarch64 cross toolchain");
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(bin, _)| !on_path(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    apt_install(&missing)?;
    eprintln!("    tools present");
    Ok(())
}

fn installed_targets() -> String {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

/// Adds rustup target `t` unless it is installed.
fn setup_target(t: &str) -> Result<()> {
    if installed_targets().lines().any(|l| l.trim() == t) {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", t]))
}

/// Makes sure the QEMU system emulators are installed.
fn setup_qemu() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(bin, pkg)| pkg.starts_with("qemu-system") && !on_path(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    apt_install(&missing)
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// `apt-get install` (as root, or through sudo), after an index update.
fn apt_install(pkgs: &[&str]) -> Result<()> {
    let mut pkgs = pkgs.to_vec();
    pkgs.sort();
    pkgs.dedup();
    if pkgs.is_empty() {
        return Ok(());
    }
    eprintln!("    installing {} (Debian packages)", pkgs.join(" "));
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let apt = |args: &[&str]| -> Result<()> {
        let mut c = if root_user {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c).with_context(|| {
            format!(
                "could not install {}: install them with apt (Debian/Ubuntu) and retry",
                pkgs.join(" ")
            )
        })
    };
    apt(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&pkgs);
    apt(&args)
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
fn demo(clip: Option<&str>) -> Result<()> {
    let clip = clip.unwrap_or("yes_v0");
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

fn build_cmd(a: &FwArgs) -> Result<(firmware::Prepared, PathBuf)> {
    let board = boards::find(&a.board)?;
    setup_target(board.target)?;
    let p = firmware::prepare(
        &a.model,
        board,
        a.input.as_deref(),
        a.expect.as_deref(),
        a.row,
    )?;
    let elf = firmware::build(board, &p)?;
    Ok((p, elf))
}

fn run_cmd(a: &FwArgs) -> Result<()> {
    let board = boards::find(&a.board)?;
    if let boards::Runner::Probe { .. } = board.runner {
        return flash_cmd(a, false);
    }
    setup_qemu()?;
    let (p, elf) = build_cmd(a)?;
    step(&format!(
        "run {} on {} (QEMU, -icount shift=0)",
        p.name, board.name
    ));
    let r = qemu::run(board, &elf, Duration::from_secs(600))?;
    for l in &r.lines {
        if !l.starts_with("ember-op") {
            println!("    {l}");
        }
    }
    let got: Vec<u8> = r.outputs.concat();
    if let Some(t) = r.total_ticks {
        println!(
            "{} on {}: {} instructions per inference ({} ticks at {} Hz)",
            p.name,
            board.name,
            r.instructions(t),
            t,
            r.hz
        );
    }
    if r.exit_code != 0 || !r.errors.is_empty() {
        bail!(
            "{} on {} failed with exit status {}{}{}",
            p.name,
            board.name,
            r.exit_code,
            if r.errors.is_empty() { "" } else { ": " },
            r.errors.join("; ")
        );
    }
    if got != p.expect {
        let diff = got.iter().zip(&p.expect).filter(|(a, b)| a != b).count();
        bail!(
            "outputs differ from {}: {diff} of {} bytes (lengths {} vs {})",
            p.expect_source,
            p.expect.len(),
            got.len(),
            p.expect.len()
        );
    }
    println!("outputs equal {} ({} bytes)", p.expect_source, got.len());
    Ok(())
}

fn size_cmd(a: &FwArgs) -> Result<()> {
    let (p, elf) = build_cmd(a)?;
    let s = size::of(&elf)?;
    size::print(
        &format!("{} on {} ({})", p.name, a.board, elf.display()),
        &s,
        None,
    );
    Ok(())
}

fn bench_cmd(boards_: &[String], models: &[String], json: bool, out: Option<&Path>) -> Result<()> {
    setup_qemu()?;
    let boards_: Vec<String> = if boards_.is_empty() {
        vec!["mps3-an547".into(), "mps2-an386".into()]
    } else {
        boards_.to_vec()
    };
    let models: Vec<String> = if models.is_empty() {
        firmware::ZOO.iter().map(|s| s.to_string()).collect()
    } else {
        models.to_vec()
    };
    let mut rows = Vec::new();
    for b in &boards_ {
        let board = boards::find(b)?;
        setup_target(board.target)?;
        for m in &models {
            rows.push(bench::measure(board, m, 0)?);
        }
    }
    let mut md = bench::markdown(&rows);
    for r in &rows {
        md += "\n";
        md += &bench::layers_markdown(r);
    }
    if let Some(o) = out {
        std::fs::write(o, &md).with_context(|| format!("cannot write {}", o.display()))?;
    }
    if json {
        let v: Vec<_> = rows.iter().map(|r| r.json()).collect();
        let v = if v.len() == 1 {
            v[0].clone()
        } else {
            serde_json::Value::Array(v)
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{md}");
    }
    if rows.iter().any(|r| !r.outputs_match) {
        bail!("some outputs differ from the host reference");
    }
    Ok(())
}

fn flash_cmd(_a: &FwArgs, _dry_run: bool) -> Result<()> {
    bail!("flash: no real boards yet")
}
