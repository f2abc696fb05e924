//! Running firmware in QEMU and decoding what it reports.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::boards::{Board, Runner};

/// What the firmware reported (its `ember-…` defmt lines).
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Every decoded line, in order.
    pub lines: Vec<String>,
    /// Exit status of the emulator (= the firmware's exit code).
    pub exit_code: i32,
    /// Tick frequency of the board's counter.
    pub hz: u64,
    /// Ticks of one `invoke` (after a warm-up).
    pub total_ticks: Option<u64>,
    /// Ticks per op, in execution order.
    pub op_ticks: Vec<u64>,
    /// Ticks taken by `Model::load` (validation) and binding the model to
    /// its arena (the arena plan check).
    pub load_ticks: Option<u64>,
    /// Output bytes per output.
    pub outputs: Vec<Vec<u8>>,
    /// Deepest stack use in bytes.
    pub stack_bytes: Option<u64>,
    /// The firmware's own comparison.
    pub check: Option<String>,
    /// `ember-error` lines and panics.
    pub errors: Vec<String>,
}

impl Report {
    /// Converts ticks to instructions: under `-icount shift=0` QEMU's clock
    /// advances 1 ns per instruction.
    pub fn instructions(&self, ticks: u64) -> u64 {
        if self.hz == 0 {
            return 0;
        }
        ((ticks as f64) * 1e9 / self.hz as f64).round() as u64
    }
}

/// Runs `elf` on a QEMU board and decodes its defmt output.
pub fn run(board: &Board, elf: &Path, timeout: Duration) -> Result<Report> {
    run_traced(board, elf, timeout, None)
}

/// [`run`], also writing QEMU's translated blocks and their executions
/// (`-d in_asm,exec,nochain`) to `trace` when given (see `profile.rs`).
pub fn run_traced(
    board: &Board,
    elf: &Path,
    timeout: Duration,
    trace: Option<&Path>,
) -> Result<Report> {
    run_with(board, elf, timeout, trace, None)
}

/// [`run`] with the emulator working in `dir`, where the firmware's
/// semihosting file requests land (`ember-ota`'s flash image).
pub fn run_in(board: &Board, elf: &Path, timeout: Duration, dir: &Path) -> Result<Report> {
    run_with(board, elf, timeout, None, Some(dir))
}

fn run_with(
    board: &Board,
    elf: &Path,
    timeout: Duration,
    trace: Option<&Path>,
    dir: Option<&Path>,
) -> Result<Report> {
    let Runner::Qemu {
        binary,
        machine,
        cpu,
        extra,
    } = board.runner
    else {
        bail!("{} is not a simulated board", board.name);
    };
    let mut cmd = Command::new(binary);
    cmd.args(["-M", machine, "-cpu", cpu])
        .args(extra)
        .args(["-nographic", "-monitor", "none", "-serial", "null"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .args(["-icount", "shift=0"]);
    if let Some(t) = trace {
        cmd.args(["-d", "in_asm,exec,nochain", "-D"]).arg(t);
    }
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| {
        format!("cannot start {binary}: install QEMU with `cargo xtask setup` (Debian package qemu-system-arm)")
    })?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let _spin = crate::progress::spinner(&format!(
        "{} running on {} in QEMU",
        elf.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("firmware"),
        board.name
    ));
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} on {} did not finish within {} s (hung, or faulted without reporting)",
                elf.display(),
                board.name,
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let raw = reader.join().unwrap_or_default();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let elf_bytes = std::fs::read(elf)?;
    let mut report = decode(&elf_bytes, &raw)?;
    report.exit_code = status.code().unwrap_or(-1);
    if !stderr.trim().is_empty() {
        report.errors.push(format!("{binary}: {}", stderr.trim()));
    }
    Ok(report)
}

/// Decodes the defmt frames in `raw` (using the tables in `elf`) and parses
/// the `ember-…` lines.
pub fn decode(elf: &[u8], raw: &[u8]) -> Result<Report> {
    let table = defmt_decoder::Table::parse(elf)
        .map_err(|e| anyhow::anyhow!("defmt table: {e}"))?
        .context("the ELF has no defmt table (.defmt section)")?;
    let mut dec = table.new_stream_decoder();
    dec.received(raw);
    let mut r = Report::default();
    loop {
        match dec.decode() {
            Ok(frame) => {
                let line = frame.display_message().to_string();
                parse_line(&mut r, &line);
                r.lines.push(line);
            }
            Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
            Err(defmt_decoder::DecodeError::Malformed) => {
                r.errors.push("malformed defmt frame in the output".into());
                break;
            }
        }
    }
    Ok(r)
}

fn field(words: &[&str], key: &str) -> Option<u64> {
    words
        .iter()
        .position(|w| *w == key)
        .and_then(|i| words.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn parse_line(r: &mut Report, line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.first().copied() {
        Some("ember-board") => r.hz = field(&words, "hz").unwrap_or(0),
        Some("ember-model") => r.load_ticks = field(&words, "load-ticks"),
        Some("ember-total") => r.total_ticks = field(&words, "ticks"),
        Some("ember-op") => {
            if let Some(t) = field(&words, "ticks") {
                r.op_ticks.push(t);
            }
        }
        Some("ember-output") => {
            let list = line
                .split_once('[')
                .and_then(|(_, rest)| rest.rsplit_once(']'))
                .map(|(l, _)| l)
                .unwrap_or("");
            let bytes = list
                .split(',')
                .filter_map(|v| v.trim().parse::<u8>().ok())
                .collect();
            r.outputs.push(bytes);
        }
        Some("ember-stack") => r.stack_bytes = words.get(1).and_then(|v| v.parse().ok()),
        Some("ember-check") => r.check = Some(words[1..].join(" ")),
        Some("ember-error") => r.errors.push(line.to_string()),
        _ if line.starts_with("panic") => r.errors.push(line.to_string()),
        _ => {}
    }
}
