//! `cargo xtask py-check`: Ember's Python package built the way users get
//! it — an abi3 wheel by maturin — installed into a fresh virtual
//! environment under `target/python/`, and its pytest suite run there
//! against the shared data and the `ember` executable.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::setup::apt_install;
use crate::{cargo, root, run, shared, step};

/// What the environment needs besides the wheel (pinned: the test command
/// must give the same result on every machine).
/// onnxruntime runs the QDQ models `ember quantize` writes, as a second
/// engine beside Ember.
const PACKAGES: &[&str] = &[
    "maturin==1.16.0",
    "numpy==2.4.6",
    "pytest==9.2.0",
    "onnxruntime==1.32.0",
];

/// The virtual environment, made (and the packages installed) once.
fn venv() -> Result<PathBuf> {
    let dir = root().join("target/python/venv");
    let py = dir.join("bin/python");
    let stamp = dir.join("ember-packages.txt");
    let want = PACKAGES.join("\n");
    if py.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        return Ok(py);
    }
    step("setup: a Python virtual environment with maturin, NumPy, pytest and onnxruntime");
    let python = std::env::var("EMBER_PYTHON").unwrap_or_else(|_| "python3".into());
    let made = |c: &mut Command| c.status().is_ok_and(|s| s.success());
    let mut mk = Command::new(&python);
    mk.args(["-m", "venv", "--clear"]).arg(&dir);
    if !made(&mut mk) {
        // Debian's Python keeps venv (and ensurepip) in a separate package.
        apt_install(&["python3-venv"])?;
        run(Command::new(&python)
            .args(["-m", "venv", "--clear"])
            .arg(&dir))
        .with_context(|| format!("cannot make a virtual environment with {python}"))?;
    }
    run(pip_install(&py).args(PACKAGES)).context("cannot install the Python test packages")?;
    std::fs::write(&stamp, want)?;
    Ok(py)
}

/// `pip install`, quietly, with the venv's Python `py`.
fn pip_install(py: &Path) -> Command {
    let mut c = Command::new(py);
    c.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    c
}

/// The one wheel maturin wrote into `dir`.
fn wheel_in(dir: &Path) -> Result<PathBuf> {
    let wheels: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    match wheels.as_slice() {
        [w] => Ok(w.clone()),
        _ => bail!(
            "expected one wheel in {}, found {}",
            dir.display(),
            wheels.len()
        ),
    }
}

/// Builds the wheel, installs it into the venv and runs the package's tests.
pub(crate) fn py_check() -> Result<()> {
    let py = venv()?;
    let bin = py.parent().context("venv without bin")?;
    step("the Python package: abi3 wheel (maturin), installed in a venv, pytest");
    let wheels = root().join("target/wheels");
    // A fresh folder: the wheel installed is the one just built.
    if wheels.exists() {
        std::fs::remove_dir_all(&wheels)?;
    }
    // The dev profile (optimized dependencies, see the workspace's
    // Cargo.toml) shares every compiled dependency with the host tests, so
    // the wheel costs a link rather than a second release build of tract
    // and the compiler. Users build theirs with `--release` (README).
    run(Command::new(bin.join("maturin"))
        .args(["build", "--profile", "dev", "--quiet", "-m"])
        .arg(root().join("runtime/ember-py/Cargo.toml"))
        .arg("-o")
        .arg(&wheels)
        .env(
            "VIRTUAL_ENV",
            py.parent().and_then(Path::parent).unwrap_or(bin),
        ))?;
    let wheel = wheel_in(&wheels)?;
    let name = wheel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains("-abi3-") {
        bail!("{name} is not an abi3 wheel");
    }
    run(pip_install(&py)
        .args(["--force-reinstall", "--no-deps"])
        .arg(&wheel))?;
    // With xtask in the build, the CLI's dependencies resolve as in the
    // tests' build and are not compiled again.
    run(cargo().args(["build", "-p", "xtask", "-p", "ember-cli"]))?;
    // Run from outside the source tree, so `import ember` finds the
    // installed wheel and not the package's source folder.
    run(Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(root().join("runtime/ember-py/tests"))
        .current_dir(root().join("target"))
        .env("EMBER_SHARED", shared())
        .env("EMBER_CLI", root().join("target/debug/ember")))?;
    eprintln!("    wheel {name}: its tests passed");
    Ok(())
}
