//! `cargo xtask …`: project automation. Builds firmware for the boards,
//! runs it in QEMU, sizes and benchmarks it, flashes real boards, runs the
//! tests and the demo.

mod bench;
mod boards;
mod firmware;
mod flash;
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
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Ember project automation")]
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
        Cmd::Demo { clip, board } => demo(clip.as_deref(), &board),
        Cmd::See {
            image,
            model,
            board,
        } => see_cmd(&image, &model, &board).map(|(label, _)| println!("{label}")),
        Cmd::Wake { wav, board } => wake_cmd(wav.as_deref(), &board).map(|_| ()),
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
    let t0 = std::time::Instant::now();
    step("format check");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo()
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(root().join("boards")))?;
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
    firmware_tests()?;
    step("the ember CLI's tests on aarch64 Linux under qemu-aarch64");
    let runner = "qemu-aarch64 -L /usr/aarch64-linux-gnu";
    run(cargo()
        .args([
            "test",
            "--target",
            "aarch64-unknown-linux-gnu",
            "-p",
            "ember-cli",
        ])
        .env("EMBER_SHARED", shared())
        .env("EMBER_EXE_RUNNER", runner))?;
    eprintln!("\nall tests passed in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// The keyword firmware (WAV as microphone → MFCC → model, all on the
/// device) on every tenth keyword clip, on the Cortex-M55 and the Cortex-M4:
/// the word must be the label of TFLite's reference output for that clip.
fn kws_clip_tests() -> Result<String> {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared().join("vectors/kws_testvectors.json"))
            .context("cannot read vectors/kws_testvectors.json")?,
    )?;
    let names = index["names"].as_array().context("no clip names")?;
    let labels = index["labels"].as_array().context("no labels")?;
    let mut out = String::new();
    for name in ["mps3-an547", "mps2-an386"] {
        let board = boards::find(name)?;
        let p = firmware::prepare("kws", board, None, None, 0)?;
        for row in (0..names.len()).step_by(10) {
            let clip = names[row].as_str().context("clip name")?;
            step(&format!("ember-kws: {clip}.wav on {name}"));
            let golden = firmware::zoo_golden("kws", row)?;
            let best = (0..golden.len())
                .max_by_key(|&i| (golden[i] as i8, std::cmp::Reverse(i)))
                .context("empty reference output")?;
            let want = labels[best].as_str().context("label")?;
            let wav = clip_path(clip);
            let sensors = firmware::Sensors {
                wav: Some(wav),
                ..Default::default()
            };
            let elf = firmware::build_bin(board, &p, "ember-kws", &sensors)?;
            let r = qemu::run(board, &elf, Duration::from_secs(300))?;
            let heard = r
                .lines
                .iter()
                .find_map(|l| l.strip_prefix("ember-heard "))
                .and_then(|l| l.split_whitespace().next())
                .map(String::from);
            if r.exit_code != 0 || heard.as_deref() != Some(want) {
                bail!(
                    "{clip} on {name}: heard {heard:?}, the reference says {want:?} (exit {}, {})",
                    r.exit_code,
                    r.errors.join("; ")
                );
            }
            out += &format!("    kws-wav {name:<12} {clip:<10} → {want}\n");
        }
    }
    Ok(out)
}

/// Every int8 MLPerf Tiny model on every simulated board, outputs compared
/// with the host reference kernels (which the host tests compare with
/// TFLite's reference output); every real board's firmware built and checked
/// against its chip's memory map.
fn firmware_tests() -> Result<()> {
    let mut failures = Vec::new();
    let mut table = String::new();
    for board in boards::simulated() {
        for m in firmware::ZOO {
            step(&format!("firmware: {m} on {}", board.name));
            let res = (|| -> Result<u64> {
                let p = firmware::prepare(m, board, None, None, 0)?;
                let elf = firmware::build(board, &p)?;
                let r = qemu::run(board, &elf, Duration::from_secs(600))?;
                if r.exit_code != 0 || !r.errors.is_empty() {
                    bail!("exit {}: {}", r.exit_code, r.errors.join("; "));
                }
                if r.outputs.concat() != p.expect {
                    bail!("outputs differ from the host reference");
                }
                Ok(r.instructions(r.total_ticks.unwrap_or(0)))
            })();
            match res {
                Ok(n) => {
                    table += &format!(
                        "    {m:<4} {:<12} {n:>12} instructions, outputs = host reference\n",
                        board.name
                    )
                }
                Err(e) => failures.push(format!("{m} on {}: {e:#}", board.name)),
            }
        }
    }
    match kws_clip_tests() {
        Ok(t) => table += &t,
        Err(e) => failures.push(format!("ember-kws: {e:#}")),
    }
    match vision_tests() {
        Ok(t) => table += &t,
        Err(e) => failures.push(format!("ember-see: {e:#}")),
    }
    match wake_tests() {
        Ok(t) => table += &t,
        Err(e) => failures.push(format!("ember-wake: {e:#}")),
    }
    for board in boards::real() {
        step(&format!(
            "firmware for {} (build + probe-rs memory check)",
            board.name
        ));
        let res = (|| -> Result<()> {
            setup_target(board.target)?;
            let p = firmware::prepare("kws", board, None, None, 0)?;
            let elf = firmware::build(board, &p)?;
            flash::dry_run(board, &elf)?;
            // Without a probe (as in CI) flashing must fail with what to do;
            // with one attached it must run and match.
            match flash::flash_and_run(board, &elf, Duration::from_secs(120)) {
                Err(e) if format!("{e:#}").contains("no debug probe found") => Ok(()),
                Err(e) => Err(e),
                Ok(r) if r.exit_code == 0 && r.outputs.concat() == p.expect => Ok(()),
                Ok(r) => bail!(
                    "on the board: exit {}, {}",
                    r.exit_code,
                    r.errors.join("; ")
                ),
            }
        })();
        if let Err(e) = res {
            failures.push(format!("{}: {e:#}", board.name));
        }
    }
    eprintln!("\n{table}");
    if !failures.is_empty() {
        bail!("firmware tests failed:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

/// Runs `ember-see` with `image` as the camera frame; returns the label and
/// the report.
fn see_cmd(image: &Path, model: &str, board: &str) -> Result<(String, qemu::Report)> {
    if !matches!(model, "vww" | "ic") {
        bail!("ember-see runs the zoo's vision models: vww or ic (not '{model}')");
    }
    let board = boards::find(board)?;
    if let boards::Runner::Probe { .. } = board.runner {
        bail!("see runs on a simulated board:\n{}", boards::list());
    }
    setup_qemu()?;
    setup_target(board.target)?;
    let p = firmware::prepare(model, board, None, None, 0)?;
    let sensors = firmware::vision_sensors(model, image)?;
    let elf = firmware::build_bin(board, &p, "ember-see", &sensors)?;
    step(&format!(
        "run on {}: {} as the camera frame → crop, resize, quantize → {model}",
        board.about,
        image.display()
    ));
    let r = qemu::run(board, &elf, Duration::from_secs(600))?;
    if r.exit_code != 0 || !r.errors.is_empty() {
        for l in &r.lines {
            eprintln!("    {l}");
        }
        bail!(
            "the vision firmware failed (exit {}): {}",
            r.exit_code,
            r.errors.join("; ")
        );
    }
    let saw = r
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("ember-saw "))
        .context("the firmware reported no label")?;
    let label = saw.split_whitespace().next().unwrap_or("?").to_string();
    for l in r
        .lines
        .iter()
        .filter(|l| l.starts_with("ember-see ") || l.starts_with("ember-saw "))
    {
        eprintln!("    {l}");
    }
    if let Some(see) = r.lines.iter().find(|l| l.starts_with("ember-see ")) {
        let w: Vec<&str> = see.split_whitespace().collect();
        let t = |k: &str| {
            w.iter()
                .position(|x| *x == k)
                .and_then(|i| w.get(i + 1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        eprintln!(
            "    preprocessing {} instructions, model {} instructions",
            r.instructions(t("preprocess-ticks")),
            r.instructions(t("model-ticks"))
        );
    }
    Ok((label, r))
}

/// Writes channel 0 of a 16-bit PCM WAV as a mono WAV (half the flash for
/// the stereo MLPerf recordings).
fn mono_wav(src: &Path) -> Result<PathBuf> {
    let bytes = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
    let w = ember_audio::wav::Wav::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", src.display()))?;
    let mut pcm = vec![0i16; w.frames()];
    w.channel0_into(&mut pcm);
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&w.sample_rate.to_le_bytes());
    out.extend_from_slice(&(w.sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    let dir = root().join("target/fw/wav");
    std::fs::create_dir_all(&dir)?;
    let dst = dir.join(src.file_name().context("no file name")?);
    std::fs::write(&dst, out)?;
    Ok(dst)
}

/// Runs `ember-wake` on a recording; returns the detected windows.
fn wake_cmd(wav: Option<&Path>, board: &str) -> Result<Vec<usize>> {
    let default = shared().join("audio/mlperf/short_wav_easy10s.wav");
    let wav = wav.unwrap_or(&default);
    let board = boards::find(board)?;
    if let boards::Runner::Probe { .. } = board.runner {
        bail!("wake runs on a simulated board:\n{}", boards::list());
    }
    setup_qemu()?;
    setup_target(board.target)?;
    let p = firmware::prepare("sww", board, None, None, 0)?;
    let sensors = firmware::Sensors {
        wav: Some(mono_wav(wav)?),
        ..Default::default()
    };
    let elf = firmware::build_bin(board, &p, "ember-wake", &sensors)?;
    step(&format!(
        "run on {}: {} as the microphone → log-mel → sww, one window per frame",
        board.about,
        wav.display()
    ));
    let r = qemu::run(board, &elf, Duration::from_secs(1200))?;
    if r.exit_code != 0 || !r.errors.is_empty() {
        for l in &r.lines {
            eprintln!("    {l}");
        }
        bail!(
            "the wake-word firmware failed (exit {}): {}",
            r.exit_code,
            r.errors.join("; ")
        );
    }
    let field = |line: &str, k: &str| -> u64 {
        let w: Vec<&str> = line.split_whitespace().collect();
        w.iter()
            .position(|x| *x == k)
            .and_then(|i| w.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut windows = Vec::new();
    for l in r.lines.iter().filter(|l| l.starts_with("ember-detection ")) {
        println!(
            "wake word at {:.3} s (window {}, score {})",
            field(l, "time-ms") as f64 / 1000.0,
            field(l, "window"),
            l.rsplit(' ').next().unwrap_or("?")
        );
        windows.push(field(l, "window") as usize);
    }
    let summary = r
        .lines
        .iter()
        .find(|l| l.starts_with("ember-wake "))
        .context("the firmware reported no summary")?;
    let secs = field(summary, "samples") as f64 / 16_000.0;
    let fe = r.instructions(field(summary, "frontend-ticks"));
    let model = r.instructions(field(summary, "model-ticks"));
    let per_s = (fe + model) as f64 / secs.max(1e-9);
    println!(
        "{:.1} s of audio, {} frames, {} windows on {}: front end {fe} + model {model} instructions = {:.1} M instructions per second of audio ({:.2}× real time on a 100 MHz core at 1 instruction per cycle)",
        secs,
        field(summary, "frames"),
        field(summary, "windows"),
        board.name,
        per_s / 1e6,
        1e8 / per_s
    );
    Ok(windows)
}

/// The streaming wake-word firmware on the MLPerf recording, on the
/// Cortex-M55: the detections must be those of TFLite's reference outputs.
fn wake_tests() -> Result<String> {
    let golden = {
        let p = shared().join("vectors/sww_testvectors.npz");
        let f = std::fs::File::open(&p)?;
        let mut z = ndarray_npy::NpzReader::new(f)?;
        let a: ndarray::ArrayD<i8> = z
            .by_name("int8_tflite_ref_out")
            .or_else(|_| z.by_name("int8_tflite_ref_out.npy"))?;
        a
    };
    let mut det = ember_audio::sww::Detector::new(0.95);
    let want: Vec<usize> = (0..golden.shape()[0])
        .filter_map(|w| {
            let p0 = (golden[[w, 0]] as i32 + 128) as f32 / 256.0;
            det.push(w, p0).map(|d| d.window)
        })
        .collect();
    step("ember-wake: the MLPerf 10 s recording on mps3-an547");
    let got = wake_cmd(None, "mps3-an547")?;
    if got != want {
        bail!("detections in windows {got:?}, the reference's are {want:?}");
    }
    Ok(format!(
        "    wake mps3-an547   detections in windows {got:?} = reference\n"
    ))
}

/// The vision firmware on every third image of the shared set: vww on the
/// Cortex-M55, ic on the Cortex-M4; the label must be that of TFLite's
/// reference output for the image.
fn vision_tests() -> Result<String> {
    let mut out = String::new();
    for (model, size, board) in [("vww", 96, "mps3-an547"), ("ic", 32, "mps2-an386")] {
        let names = firmware::zoo_names(model)?;
        let labels = firmware::zoo_labels(model)?;
        for row in (0..names.len()).step_by(3) {
            let golden = firmware::zoo_golden(model, row)?;
            let best = (0..golden.len())
                .max_by_key(|&i| (golden[i] as i8, std::cmp::Reverse(i)))
                .context("empty reference output")?;
            let want = labels.get(best).context("label")?;
            let png = shared().join(format!("images/{}_{size}.png", names[row]));
            step(&format!(
                "ember-see: {} on {board} ({model})",
                png.display()
            ));
            let (got, _) = see_cmd(&png, model, board)?;
            if &got != want {
                bail!(
                    "{model} {}: saw {got:?}, the reference says {want:?}",
                    names[row]
                );
            }
            out += &format!(
                "    see {model:<4} {board:<12} {:<22} → {want}\n",
                names[row]
            );
        }
    }
    Ok(out)
}

/// A keyword clip by name: `audio/keywords/NAME.wav`, or the MLPerf
/// "unknown word" clips in `audio/mlperf/`.
fn clip_path(name: &str) -> PathBuf {
    let k = shared().join(format!("audio/keywords/{name}.wav"));
    if k.exists() {
        return k;
    }
    shared().join(format!("audio/mlperf/{name}.wav"))
}

/// The demo: a spoken keyword through the on-device audio front end and the
/// compiled int8 model, on a simulated board (default: the Cortex-M55).
fn demo(clip: Option<&str>, board: &str) -> Result<()> {
    let clip = clip.unwrap_or("yes_v0");
    let wav = clip_path(clip);
    if !wav.exists() {
        bail!(
            "no clip {} (the clips are audio/keywords/WORD_vN.wav and audio/mlperf/*.wav in the shared data)",
            wav.display()
        );
    }
    let board = boards::find(board)?;
    if let boards::Runner::Probe { .. } = board.runner {
        bail!("the demo runs on a simulated board:\n{}", boards::list());
    }
    setup_qemu()?;
    setup_target(board.target)?;
    step("compile kws_int8_qdq.onnx (the MLPerf Tiny keyword spotter)");
    let p = firmware::prepare("kws", board, None, None, 0)?;
    let sensors = firmware::Sensors {
        wav: Some(wav),
        ..Default::default()
    };
    let elf = firmware::build_bin(board, &p, "ember-kws", &sensors)?;
    step(&format!(
        "run on {}: audio/keywords/{clip}.wav as the microphone → MFCC → int8 model",
        board.about
    ));
    let r = qemu::run(board, &elf, Duration::from_secs(300))?;
    if r.exit_code != 0 || !r.errors.is_empty() {
        for l in &r.lines {
            eprintln!("    {l}");
        }
        bail!(
            "the keyword firmware failed (exit {}): {}",
            r.exit_code,
            r.errors.join("; ")
        );
    }
    let heard = r
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("ember-heard "))
        .context("the firmware reported no word")?;
    let kws = r
        .lines
        .iter()
        .find(|l| l.starts_with("ember-kws "))
        .context("the firmware reported no timings")?;
    let words: Vec<&str> = kws.split_whitespace().collect();
    let ticks = |k: &str| -> u64 {
        words
            .iter()
            .position(|w| *w == k)
            .and_then(|i| words.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fe = r.instructions(ticks("frontend-ticks"));
    let model = r.instructions(ticks("model-ticks"));
    let mut h = heard.split_whitespace();
    let word = h.next().unwrap_or("?");
    let score: f32 = h.nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    println!(
        "\n{clip}.wav → heard \"{word}\" (score {score:.3}) on {}",
        board.name
    );
    println!(
        "  front end (MFCC) {fe} instructions + model {model} instructions = {} instructions per second of audio ({:.1} % of a 100 MHz core)",
        fe + model,
        (fe + model) as f64 / 1e6
    );
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
    report_run(board, &p, &r)
}

/// Prints a run's report; fails unless it exited 0 with the expected outputs.
fn report_run(board: &boards::Board, p: &firmware::Prepared, r: &qemu::Report) -> Result<()> {
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
    report_run(board, &p, &r)
}
