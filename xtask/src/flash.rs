//! Real boards through probe-rs, which lives in its own program
//! (`xtask/probe`, see its Cargo.toml for why): `--dry-run` checks a
//! firmware image against the chip's memory map from probe-rs' target
//! description; otherwise the image is flashed, the core reset, and the
//! firmware's defmt output read over RTT (decoded here) until it reports
//! its exit.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::boards::{Board, Runner};
use crate::qemu::{self, Report};
use crate::{cargo, root, run};

fn chip(board: &Board) -> Result<&'static str> {
    match board.runner {
        Runner::Probe { chip } => Ok(chip),
        Runner::Qemu { .. } => bail!(
            "{} is simulated: use `cargo xtask run --board {}`",
            board.name,
            board.name
        ),
    }
}

/// Builds `ember-probe` (once per xtask run) and returns its path.
fn probe_tool() -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if BUILT.get().is_none() {
        run(cargo().args([
            "build",
            "--quiet",
            "--profile",
            "probe",
            "-p",
            "ember-probe",
        ]))?;
        let _ = BUILT.set(());
    }
    Ok(root().join("target/probe/ember-probe"))
}

/// `ember-probe` (built if needed) with `args` and the image `elf`.
fn probe(args: &[&str], elf: &Path) -> Result<Command> {
    let mut c = Command::new(probe_tool()?);
    c.args(args).arg(elf);
    Ok(c)
}

/// Checks that every loadable byte of `elf` lands in the chip's flash and
/// every writable section (and the stack top) in its RAM.
pub fn dry_run(board: &Board, elf: &Path) -> Result<()> {
    let chip = chip(board)?;
    let o = probe(&["check", chip], elf)?
        .output()
        .context("cannot start ember-probe")?;
    print!("{}", String::from_utf8_lossy(&o.stdout));
    if !o.status.success() {
        bail!("{}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(())
}

/// Flashes `elf`, runs it and collects its report over RTT.
pub fn flash_and_run(board: &Board, elf: &Path, timeout: Duration) -> Result<Report> {
    let chip = chip(board)?;
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let mut child = probe(&["run", chip], elf)?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start ember-probe")?;
    let mut out = child.stdout.take().context("ember-probe without stdout")?;
    let mut err = child.stderr.take().context("ember-probe without stderr")?;
    // Its last line on stderr is its error if it fails.
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut raw = Vec::new();
    let stop = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(bytes) => raw.extend_from_slice(&bytes),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait()?;
                let msg = errs.join().unwrap_or_default();
                let last = msg.lines().last().unwrap_or("").trim();
                bail!(
                    "{} ({chip}): {}",
                    board.name,
                    if status.success() {
                        "the probe stopped before the firmware reported its exit"
                    } else {
                        last
                    }
                );
            }
        }
        let report = qemu::decode(&data, &raw)?;
        let done = report
            .lines
            .iter()
            .any(|l| l.starts_with("ember-exit") || l.starts_with("panicked"));
        if done {
            stop(&mut child);
            let mut report = report;
            report.exit_code = report
                .lines
                .iter()
                .find_map(|l| l.strip_prefix("ember-exit "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(101);
            return Ok(report);
        }
        if start.elapsed() > timeout {
            stop(&mut child);
            bail!(
                "{} did not report its exit within {} s",
                board.name,
                timeout.as_secs()
            );
        }
    }
}
