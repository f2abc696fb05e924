//! `cargo xtask setup`: rustup targets, QEMU and the aarch64 cross
//! toolchain, installed only when missing.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{root, run, step, NO_STD_TARGETS};

/// Debian packages the simulated boards and the aarch64 Linux build need,
/// with a binary each provides.
pub(crate) const APT_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-arm", "qemu-system-arm"),
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("qemu-aarch64", "qemu-user"),
    ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    ("aarch64-linux-gnu-gcc", "libc6-dev-arm64-cross"),
];

/// Installs what is missing: rustup targets, QEMU, the aarch64 cross linker.
/// Idempotent; does nothing when everything is there.
pub(crate) fn setup() -> Result<()> {
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

pub(crate) fn installed_targets() -> String {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

/// Adds rustup target `t` unless it is installed.
pub(crate) fn setup_target(t: &str) -> Result<()> {
    if installed_targets().lines().any(|l| l.trim() == t) {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", t]))
}

/// Makes sure the QEMU system emulators are installed.
pub(crate) fn setup_qemu() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(bin, pkg)| pkg.starts_with("qemu-system") && !on_path(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    apt_install(&missing)
}

pub(crate) fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// `apt-get install` (as root, or through sudo), after an index update.
pub(crate) fn apt_install(pkgs: &[&str]) -> Result<()> {
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

/// The `onnx` Python package whose backend node tests the conformance test
/// runs in full.
pub(crate) const ONNX_PACKAGE: &str = "onnx==1.19.1";

/// Installs [`ONNX_PACKAGE`] (without its dependencies: only its test data
/// is read) into `target/python/`, once, and returns its node-test folder.
pub(crate) fn onnx_node_tests() -> Result<PathBuf> {
    let dir = root()
        .join("target/python")
        .join(ONNX_PACKAGE.replace("==", "-"));
    let node = dir.join("onnx/backend/test/data/node");
    if node.is_dir() {
        return Ok(node);
    }
    step("setup: the onnx Python package (for its backend node tests)");
    let python = std::env::var("EMBER_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_pip = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pip {
        apt_install(&["python3-pip"])?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
        .arg(&dir)
        .arg(ONNX_PACKAGE))
    .with_context(|| format!("could not install {ONNX_PACKAGE} with {python} -m pip"))?;
    if !node.is_dir() {
        anyhow::bail!("{ONNX_PACKAGE} has no node tests at {}", node.display());
    }
    Ok(node)
}

/// The PyPI package that ships the three PaddleOCR CNNs the real-model test
/// runs (Apache-2.0).
pub(crate) const REAL_CNN_PACKAGE: &str = "rapidocr_onnxruntime==1.4.4";

/// The PyPI package that ships Silero VAD's ONNX models (MIT), the real
/// recurrent voice model of the tests, `stream-check` and `cargo xtask vad`.
pub(crate) const VOICE_MODEL_PACKAGE: &str = "silero-vad==6.2.3";

/// Downloads [`REAL_CNN_PACKAGE`]'s wheel (not its dependencies) into
/// `target/python/`, once, unpacks it, and returns its `models` folder.
pub(crate) fn real_cnn_models() -> Result<PathBuf> {
    wheel_folder(
        REAL_CNN_PACKAGE,
        "rapidocr_onnxruntime/models",
        "ch_PP-OCRv4_det_infer.onnx",
        "PaddleOCR's CNNs (the rapidocr_onnxruntime wheel)",
    )
}

/// Downloads [`VOICE_MODEL_PACKAGE`]'s wheel into `target/python/`, once,
/// unpacks it, and returns its `data` folder (the ONNX models).
pub(crate) fn voice_models() -> Result<PathBuf> {
    wheel_folder(
        VOICE_MODEL_PACKAGE,
        "silero_vad/data",
        "silero_vad_16k_sequence.onnx",
        "Silero VAD (the silero-vad wheel)",
    )
}

/// The folder `inner` of `package`'s wheel, downloaded (without its
/// dependencies) and unpacked under `target/python/` unless `probe` is
/// already there.
fn wheel_folder(package: &str, inner: &str, probe: &str, what: &str) -> Result<PathBuf> {
    let dir = root()
        .join("target/python")
        .join(package.replace("==", "-"));
    let folder = dir.join(inner);
    if folder.join(probe).is_file() {
        return Ok(folder);
    }
    step(&format!("setup: {what}"));
    let python = std::env::var("EMBER_PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python)
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "-d"])
        .arg(&dir)
        .arg(package))
    .with_context(|| format!("could not download {package} with {python} -m pip"))?;
    let wheel = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("no wheel of {package} in {}", dir.display()))?;
    run(Command::new(&python)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&dir))?;
    if !folder.join(probe).is_file() {
        anyhow::bail!("{package}'s wheel has no {inner}/{probe}");
    }
    Ok(folder)
}
