//! `cargo xtask …`: project automation. Builds firmware for the boards,
//! runs it in QEMU, sizes and benchmarks it, flashes real boards, runs the
//! tests and the demo.

mod apps;
mod bench;
mod boards;
mod firmware;
mod flash;
mod fuzz;
mod linux_bench;
mod microflow;
mod ota;
mod profile;
mod progress;
mod python;
mod qemu;
mod report;
mod setup;
mod sign_check;
mod size;
mod stream_check;
mod suite;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::setup::{setup_qemu, setup_target};

/// Bare-metal targets the runtime must build for.
pub(crate) const NO_STD_TARGETS: &[&str] = &[
    "thumbv7em-none-eabihf",
    "thumbv8m.main-none-eabihf",
    "aarch64-unknown-none",
];
/// no_std crates built for every bare-metal target.
pub(crate) const NO_STD_CRATES: &[&str] = &["ember-runtime", "ember-audio"];

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Ember project automation"
)]
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
    /// Recognise a spoken keyword on the simulated Cortex-M55: WAV as the
    /// microphone, MFCC and the int8 KWS model on the device (default clip yes_v0).
    Demo {
        /// Clip name from the shared audio/keywords folder.
        clip: Option<String>,
        /// Simulated board to run on.
        #[arg(long, default_value = boards::DEFAULT)]
        board: String,
    },
    /// Classify an image on a simulated board: the PNG as the camera frame,
    /// preprocessing and the int8 model on the device.
    See {
        /// The image (PNG).
        image: PathBuf,
        /// Vision model of the zoo: vww or ic.
        #[arg(long, default_value = "vww")]
        model: String,
        /// Simulated board to run on.
        #[arg(long, default_value = boards::DEFAULT)]
        board: String,
    },
    /// Streaming wake word on a simulated board: a recording as the
    /// microphone, the sww front end and model on the device, detections out.
    Wake {
        /// A 16 kHz WAV recording (default: the MLPerf 10 s clip).
        wav: Option<PathBuf>,
        /// Simulated board to run on.
        #[arg(long, default_value = boards::DEFAULT)]
        board: String,
    },
    /// Models with state between invokes frame after frame on simulated
    /// boards, every frame against the host: the wake-word model compiled
    /// with --stream (1,244 frames, int8), a float LSTM (1,000 frames), and
    /// Silero VAD from a 10 s recording (float, and with int8 LSTM weights).
    StreamCheck {
        /// Simulated boards (default: mps3-an547, mps2-an386, virt-a53).
        #[arg(long = "board")]
        boards: Vec<String>,
    },
    /// Optimized kernels against the reference kernels on generated cases,
    /// on a simulated board (its Helium/DSP/portable build).
    KernelCheck {
        /// Simulated board to run on.
        #[arg(long, default_value = boards::DEFAULT)]
        board: String,
    },
    /// A blob signed with a test key on a simulated board whose firmware
    /// trusts that key: the verification cost in instructions and, with
    /// --sweep, tampered copies refused on the device.
    SignCheck {
        /// Simulated board to run on.
        #[arg(long, default_value = boards::DEFAULT)]
        board: String,
        /// Zoo model, .onnx or .ember.
        #[arg(long, default_value = "kws")]
        model: String,
        /// Also change single bytes of a RAM copy of the blob (header,
        /// spread positions, trailer) and check each is refused.
        #[arg(long)]
        sweep: bool,
    },
    /// A/B model updates with the power cut at many points: every boot
    /// must run a valid model (the old one before the commit, the new one
    /// after).
    OtaSweep {
        /// Simulated board to run on.
        #[arg(long, default_value = boards::DEFAULT)]
        board: String,
        /// Zoo model, .onnx or .ember.
        #[arg(long, default_value = "kws")]
        model: String,
        /// Cut points per starting image (two images are swept).
        #[arg(long, default_value_t = 110)]
        points: usize,
    },
    /// Executed instructions per function (QEMU's execution log) for a
    /// model on a simulated board.
    Profile {
        /// Simulated board.
        #[arg(long, default_value = boards::DEFAULT)]
        board: String,
        /// Zoo model, .onnx or .ember.
        #[arg(long, default_value = "kws")]
        model: String,
        /// Functions to list.
        #[arg(long, default_value_t = 25)]
        top: usize,
        /// Profile this firmware ELF instead (e.g. one `cargo xtask wake`
        /// or `stream-check` built, under target/fw/BOARD/MODEL/).
        #[arg(long)]
        elf: Option<PathBuf>,
    },
    /// Run the libFuzzer targets in `fuzz/` (all, or one) for a bounded
    /// time each, with corpora seeded from the shared data; fails on any
    /// finding. Installs the nightly toolchain and cargo-fuzz if missing.
    Fuzz {
        /// One target (load_blob, compile_onnx, npy, wav, png, invoke_random).
        target: Option<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// The run `cargo xtask test` makes: a fixed number of inputs per
        /// target from the shared data's seeds (fuzz::TARGETS), capped at
        /// --seconds.
        #[arg(long)]
        suite: bool,
    },
    /// The Python package: build the abi3 wheel with maturin, install it
    /// into a venv under target/python and run its pytest suite.
    PyCheck,
    /// The HTML report of kws (benched on the Cortex-M55 and Cortex-M4) and
    /// of MiniLM, opened and checked in headless Chromium (installed if
    /// missing), with screenshots.
    ReportCheck {
        /// Where the pages and screenshots go (default: target/report).
        #[arg(long)]
        out: Option<PathBuf>,
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
        /// Also write the HTML report (`ember report`'s page with these
        /// results) here; several models: one page each, named
        /// `STEM-MODEL.html`.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Peer to run beside Ember on `linux-aarch64`: `tract`.
        #[arg(long)]
        vs: Vec<String>,
        /// QEMU CPU settings for `linux-aarch64` (default: cortex-a53 and
        /// max,sve=off).
        #[arg(long)]
        cpu: Vec<String>,
        /// `linux-aarch64`: also time both engines natively on this machine.
        #[arg(long)]
        wall: bool,
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
    /// Float models: compare the f32 outputs on the host, within this
    /// fraction of the expected output's range (the optimized float kernels
    /// sum in another order than the reference or onnxruntime), instead of
    /// byte for byte on the device.
    #[arg(long)]
    tolerance: Option<f32>,
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Setup => setup::setup(),
        Cmd::Test => suite::test(),
        Cmd::Demo { clip, board } => apps::demo(clip.as_deref(), &board),
        Cmd::See {
            image,
            model,
            board,
        } => apps::see_cmd(&image, &model, &board).map(|(label, _)| println!("{label}")),
        Cmd::Wake { wav, board } => apps::wake_cmd(wav.as_deref(), &board).map(|_| ()),
        Cmd::StreamCheck { boards } => stream_check::stream_check_cmd(&boards),
        Cmd::KernelCheck { board } => apps::kernel_check_cmd(&board).map(|_| ()),
        Cmd::OtaSweep {
            board,
            model,
            points,
        } => ota::ota_sweep_cmd(&board, &model, points).map(|_| ()),
        Cmd::SignCheck {
            board,
            model,
            sweep,
        } => sign_check::sign_check_cmd(&board, &model, sweep).map(|_| ()),
        Cmd::Profile {
            board,
            model,
            top,
            elf,
        } => profile::profile_cmd(&board, &model, top, elf.as_deref()),
        Cmd::Fuzz {
            target,
            seconds,
            suite,
        } => fuzz::fuzz(target.as_deref(), seconds, suite),
        Cmd::PyCheck => python::py_check(),
        Cmd::ReportCheck { out } => report::report_check(&out.unwrap_or_else(report::default_out)),
        Cmd::Build(a) => build_cmd(&a).map(|_| ()),
        Cmd::Run(a) => run_cmd(&a),
        Cmd::Flash { fw, dry_run } => flash_cmd(&fw, dry_run),
        Cmd::Size(a) => size_cmd(&a),
        Cmd::Bench {
            board,
            model,
            json,
            out,
            html,
            vs,
            cpu,
            wall,
        } => bench_cmd(
            &board,
            &model,
            json,
            (out.as_deref(), html.as_deref()),
            &vs,
            &cpu,
            wall,
        ),
    };
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    p.canonicalize().unwrap_or(p)
}

/// The shared data folder (`EMBER_SHARED`, default `../shared`).
pub fn shared() -> PathBuf {
    let p = std::env::var_os("EMBER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"));
    p.canonicalize().unwrap_or(p)
}

/// Announces a long step.
pub fn step(what: &str) {
    if let Ok(mut s) = STEPS.lock() {
        // Minutes and seconds since the first step, so a log cut short
        // (a CI timeout) still shows where the time went.
        let now = std::time::Instant::now();
        let t = s.first().map_or(0, |f| now.duration_since(f.1).as_secs());
        eprintln!("\n==> [{:02}:{:02}] {what}", t / 60, t % 60);
        s.push((what.to_string(), now));
    } else {
        eprintln!("\n==> {what}");
    }
}

/// Every step announced so far, with when it began.
static STEPS: std::sync::Mutex<Vec<(String, std::time::Instant)>> =
    std::sync::Mutex::new(Vec::new());

/// Prints how long each step took (until the next began, the last until
/// now), longest first: where a run's time went.
pub fn print_step_times() {
    let Ok(s) = STEPS.lock() else { return };
    let now = std::time::Instant::now();
    let mut t: Vec<(f64, &str)> = s
        .iter()
        .enumerate()
        .map(|(i, (w, t0))| {
            let end = s.get(i + 1).map_or(now, |n| n.1);
            (end.duration_since(*t0).as_secs_f64(), w.as_str())
        })
        .collect();
    t.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!("\nwhere the time went:");
    for (secs, what) in t {
        let what: String = what.chars().take(100).collect();
        eprintln!("    {secs:>7.0} s  {what}");
    }
}

/// Runs `cmd` in the repository root; fails if it does.
pub fn run(cmd: &mut Command) -> Result<()> {
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
    let elf = if a.tolerance.is_some() {
        // The device only reports; the host compares within the tolerance.
        let quiet = firmware::Prepared {
            expect: vec![],
            ..p.clone()
        };
        firmware::build(board, &quiet)?
    } else {
        firmware::build(board, &p)?
    };
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
    report_run(board, &p, &r, a.tolerance)
}

/// Prints a run's report; fails unless it exited 0 with the expected outputs.
fn report_run(
    board: &boards::Board,
    p: &firmware::Prepared,
    r: &qemu::Report,
    tolerance: Option<f32>,
) -> Result<()> {
    for l in &r.lines {
        if !l.starts_with("ember-op") {
            println!("    {l}");
        }
    }
    let got: Vec<u8> = r.outputs.concat();
    if let Some(t) = r.total_ticks {
        match board.runner {
            boards::Runner::Qemu { .. } => println!(
                "{} on {}: {} instructions per inference ({} ticks at {} Hz)",
                p.name,
                board.name,
                r.instructions(t),
                t,
                r.hz
            ),
            boards::Runner::Probe { .. } => println!(
                "{} on {}: {} cycles per inference ({:.3} ms at {} MHz)",
                p.name,
                board.name,
                t,
                t as f64 * 1e3 / r.hz.max(1) as f64,
                r.hz / 1_000_000
            ),
        }
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
    if let Some(tol) = tolerance {
        return within_tolerance(&got, p, tol);
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

/// Fails unless the f32 outputs `got` lie within `tol` of the expected
/// output's range.
fn within_tolerance(got: &[u8], p: &firmware::Prepared, tol: f32) -> Result<()> {
    let f = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    if got.len() != p.expect.len() {
        bail!(
            "output lengths differ: {} vs {} bytes",
            got.len(),
            p.expect.len()
        );
    }
    let (g, w) = (f(got), f(&p.expect));
    let lo = w.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let worst = g
        .iter()
        .zip(&w)
        .map(|(a, b)| {
            if a.is_nan() != b.is_nan() {
                f32::INFINITY
            } else {
                (a - b).abs()
            }
        })
        .fold(0f32, f32::max);
    let rel = worst / (hi - lo).max(f32::MIN_POSITIVE);
    if rel.is_nan() || rel > tol {
        bail!(
            "outputs differ from {} by {rel:e} of their range (tolerance {tol:e})",
            p.expect_source
        );
    }
    println!(
        "outputs within {rel:e} of {}'s range (tolerance {tol:e}, {} values)",
        p.expect_source,
        g.len()
    );
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

fn bench_cmd(
    boards_: &[String],
    models: &[String],
    json: bool,
    (out, html): (Option<&Path>, Option<&Path>),
    vs: &[String],
    cpus: &[String],
    wall: bool,
) -> Result<()> {
    if let Some(p) = vs.iter().find(|p| p.as_str() != "tract") {
        bail!("--vs {p}: the peer measured here is tract");
    }
    if html.is_some() && boards_.iter().any(|b| b == linux_bench::BOARD) {
        bail!(
            "--html applies to the simulated boards, not {}",
            linux_bench::BOARD
        );
    }
    if boards_.iter().any(|b| b == linux_bench::BOARD) {
        if boards_.len() > 1 {
            bail!(
                "--board {}: measure it on its own (its table has other columns)",
                linux_bench::BOARD
            );
        }
        let models: Vec<String> = if models.is_empty() {
            firmware::ZOO.iter().map(|s| s.to_string()).collect()
        } else {
            models.to_vec()
        };
        let cpus: Vec<String> = if cpus.is_empty() {
            linux_bench::DEFAULT_CPUS
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            cpus.to_vec()
        };
        return linux_bench::bench(&models, &cpus, !vs.is_empty(), wall, json, out);
    }
    if !vs.is_empty() || !cpus.is_empty() || wall {
        bail!("--vs, --cpu and --wall apply to --board {} (MicroFlow runs beside Ember on the simulated Cortex-M boards anyway)", linux_bench::BOARD);
    }
    setup_qemu()?;
    let boards_: Vec<String> = if boards_.is_empty() {
        vec!["mps3-an547".into(), "mps2-an386".into()]
    } else {
        boards_.to_vec()
    };
    let models: Vec<String> = if models.is_empty() {
        firmware::ZOO
            .iter()
            .chain(&[firmware::SWW_STREAM])
            .map(|s| s.to_string())
            .collect()
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
    if let Some(h) = html {
        for p in report::write_pages(&rows, h)? {
            eprintln!("wrote {}", p.display());
        }
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

fn flash_cmd(a: &FwArgs, dry_run: bool) -> Result<()> {
    let board = boards::find(&a.board)?;
    if let boards::Runner::Qemu { .. } = board.runner {
        bail!(
            "{} is a simulated board: use `cargo xtask run --board {}` (flash is for real boards:\n{})",
            board.name,
            board.name,
            boards::real()
                .map(|b| format!("  {:<14} {}", b.name, b.about))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let (p, elf) = build_cmd(a)?;
    if dry_run {
        step(&format!(
            "check {} against {}'s memory (probe-rs target description)",
            elf.display(),
            board.name
        ));
        return flash::dry_run(board, &elf);
    }
    step(&format!("flash and run {} on {}", p.name, board.name));
    let r = flash::flash_and_run(board, &elf, Duration::from_secs(120))?;
    report_run(board, &p, &r, a.tolerance)
}
