//! `cargo xtask test`: every test: formatting, host tests, the bare-metal
//! builds, all models and apps on the simulated boards, signed blobs and
//! A/B updates across power cuts on the device, the HTML report in
//! headless Chromium, the Python package's wheel, the real boards'
//! firmware, and the CLI on aarch64 Linux.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::apps::{clip_path, kernel_check_cmd, see_cmd, wake_cmd};
use crate::setup::{onnx_node_tests, real_cnn_models, setup, setup_target, voice_models};
use crate::{
    boards, cargo, firmware, flash, qemu, root, run, shared, step, NO_STD_CRATES, NO_STD_TARGETS,
};

pub(crate) fn test() -> Result<()> {
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
    step("the runtime's API docs build without warnings (cargo doc)");
    run(cargo()
        .args([
            "doc",
            "--no-deps",
            "-p",
            "ember-runtime",
            "--features",
            "std,signed",
        ])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    let onnx_node = onnx_node_tests()?;
    let real_cnns = real_cnn_models()?;
    let voice = voice_models()?;
    step("unit, end-to-end and CLI tests (and the full ONNX node suite, PaddleOCR's CNNs, Silero VAD)");
    run(cargo()
        // The Python package is tested through its wheel (py-check).
        // xtask stays in: built together, every dependency gets the same
        // features as in xtask's own build (its defmt decoder turns on a
        // few in serde_json and log), so tract and the compiler are
        // compiled once, not twice. ember-probe (probe-rs) is built on its
        // own when a real board needs it.
        .args([
            "test",
            "--workspace",
            "--exclude",
            "ember-py",
            "--exclude",
            "ember-probe",
        ])
        .env("EMBER_SHARED", shared())
        .env("EMBER_ONNX_NODE_DIR", onnx_node)
        .env("EMBER_REAL_CNN_DIR", real_cnns)
        .env("EMBER_VOICE_MODEL_DIR", voice))?;
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
    step("state between invokes on the devices: the streamed wake-word model, a float LSTM and Silero VAD from audio, frame by frame against the host");
    crate::stream_check::stream_check_cmd(&[])?;
    step("signed blobs on the device: the kws blob signed, tampered copies refused (Cortex-M55)");
    crate::sign_check::sign_check_cmd("mps3-an547", "kws", true)?;
    step("A/B model update on the device with the power cut at 218 points (Cortex-M55)");
    crate::ota::ota_sweep_cmd("mps3-an547", "kws", 110)?;
    crate::report::report_check(&crate::report::default_out())?;
    crate::python::py_check()?;
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
        .env("EMBER_EXE_RUNNER", runner)
        // This cross build compiles tract and the compiler once more for
        // aarch64; nobody debugs it, so it skips the debug info (a large
        // share of its build time on a 2-core CI machine).
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        .env("CARGO_PROFILE_TEST_DEBUG", "false"))?;
    // The NEON kernels against the reference on generated cases, on a core
    // without the dot-product extension (the SMULL/SADALP and SMLAL paths)
    // and on one with it (the SDOT paths); each run also checks that the
    // run-time detection saw what the CPU has.
    for (cpu, dotprod) in [("cortex-a53", "0"), ("max", "1")] {
        step(&format!(
            "the runtime's tests (NEON kernels vs reference) under qemu-aarch64 -cpu {cpu}"
        ));
        run(cargo()
            .args([
                "test",
                "--target",
                "aarch64-unknown-linux-gnu",
                "-p",
                "ember-runtime",
                "--features",
                "std",
            ])
            .env(
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER",
                format!("{runner} -cpu {cpu}"),
            )
            .env("EMBER_EXPECT_DOTPROD", dotprod))?;
    }
    // Last: every fuzz target for a bounded time (installs the nightly
    // toolchain and cargo-fuzz when missing).
    crate::fuzz::fuzz(None, crate::fuzz::SUITE_SECONDS, true)?;
    crate::print_step_times();
    eprintln!("\nall tests passed in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// The keyword firmware (WAV as microphone → MFCC → model, all on the
/// device) on every tenth keyword clip, on the Cortex-M55 and the Cortex-M4:
/// the word must be the label of TFLite's reference output for that clip.
pub(crate) fn kws_clip_tests() -> Result<String> {
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
pub(crate) fn firmware_tests() -> Result<()> {
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
    for board in ["mps3-an547", "mps2-an386", "virt-a53"] {
        step(&format!(
            "optimized kernels vs reference on {board} (generated cases)"
        ));
        match kernel_check_cmd(board) {
            Ok(l) => table += &format!("    kernel-check {board:<12} {l}\n"),
            Err(e) => failures.push(format!("kernel-check on {board}: {e:#}")),
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

/// The streaming wake-word firmware on the MLPerf recording, on the
/// Cortex-M55, with the windowed model and with it compiled `--stream`:
/// the detections must be those of TFLite's reference outputs.
pub(crate) fn wake_tests() -> Result<String> {
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
        "    wake mps3-an547   detections in windows {got:?} = reference, windowed and streamed\n"
    ))
}

/// The vision firmware on every third image of the shared set: vww on the
/// Cortex-M55, ic on the Cortex-M4; the label must be that of TFLite's
/// reference output for the image.
pub(crate) fn vision_tests() -> Result<String> {
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
