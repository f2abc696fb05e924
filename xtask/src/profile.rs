//! `cargo xtask profile`: where the instructions go, function by function.
//!
//! QEMU (Debian's has no TCG plugins) can log every translated block
//! (`-d in_asm`: its instructions) and every block it executes (`-d exec`
//! with `nochain`, so each execution is logged). Executions × block length,
//! attributed to the ELF symbol containing the block, gives the executed
//! instructions per function — the same count `-icount` makes, for the
//! whole run (model load, warm-up, the timed invoke and the per-op run).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSymbol, SymbolKind};

use crate::boards;
use crate::{firmware, qemu, step};

/// Executed instructions per function from a QEMU `in_asm,exec` log.
pub fn attribute(log: &Path, elf: &Path) -> Result<Vec<(String, u64)>> {
    let mut tb_len: HashMap<u64, u64> = HashMap::new();
    let mut execs: HashMap<u64, u64> = HashMap::new();
    let f = std::fs::File::open(log).with_context(|| format!("cannot read {}", log.display()))?;
    let (mut in_block, mut start, mut n) = (false, None::<u64>, 0u64);
    for line in BufReader::new(f).lines() {
        let line = line?;
        if line.starts_with("IN:") {
            (in_block, start, n) = (true, None, 0);
            continue;
        }
        if in_block {
            let addr = line
                .strip_prefix("0x")
                .and_then(|r| r.split(':').next())
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            if let Some(a) = addr {
                start.get_or_insert(a);
                n += 1;
                continue;
            }
            if let Some(s) = start {
                tb_len.insert(s, n);
            }
            in_block = false;
        }
        // "Trace 0: 0x… [cs_base/pc/flags/…] symbol"
        if let Some(rest) = line.strip_prefix("Trace ") {
            let pc = rest
                .split('[')
                .nth(1)
                .and_then(|r| r.split('/').nth(1))
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            if let Some(pc) = pc {
                *execs.entry(pc).or_default() += 1;
            }
        }
    }
    let bytes = std::fs::read(elf)?;
    let file = object::File::parse(&*bytes).context("not an ELF")?;
    let mut syms: Vec<(u64, u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .filter_map(|s| {
            let name = s.name().ok()?;
            let name = format!("{:#}", rustc_demangle::demangle(name));
            Some((s.address() & !1, s.size(), name))
        })
        .collect();
    syms.sort();
    let mut per: HashMap<String, u64> = HashMap::new();
    for (pc, count) in execs {
        let i = syms.partition_point(|s| s.0 <= pc);
        let name = match i.checked_sub(1).map(|i| &syms[i]) {
            Some((a, size, name)) if pc < a + size => name.clone(),
            _ => format!("{pc:#x} (no symbol)"),
        };
        *per.entry(name).or_default() += count * tb_len.get(&pc).copied().unwrap_or(1);
    }
    let mut v: Vec<(String, u64)> = per.into_iter().collect();
    v.sort_by_key(|x| std::cmp::Reverse(x.1));
    Ok(v)
}

/// Builds the model firmware for a simulated board (or takes `elf`, a
/// firmware already built for it), runs it traced and prints the `top`
/// functions by executed instructions.
pub fn profile_cmd(board: &str, model: &str, top: usize, elf: Option<&Path>) -> Result<()> {
    let board = boards::ready_simulated(board, "profile")?;
    let p = firmware::prepare(model, board, None, None, 0)?;
    let elf = match elf {
        Some(e) if e.exists() => e.to_path_buf(),
        Some(e) => bail!("no firmware at {}", e.display()),
        None => firmware::build(board, &p)?,
    };
    let log = elf.with_extension("exec.log");
    step(&format!(
        "run {} on {} with QEMU's execution log",
        p.name, board.name
    ));
    let r = qemu::run_traced(board, &elf, Duration::from_secs(1800), Some(&log))?;
    if r.exit_code != 0 {
        bail!(
            "the firmware failed (exit {}): {}",
            r.exit_code,
            r.errors.join("; ")
        );
    }
    let v = attribute(&log, &elf);
    let _ = std::fs::remove_file(&log);
    let v = v?;
    let total: u64 = v.iter().map(|x| x.1).sum();
    println!(
        "{} on {}: {total} instructions in the whole run (load, warm-up, timed invoke, per-op invoke)\n",
        p.name, board.name
    );
    println!("| instructions | share | function |\n|---:|---:|---|");
    for (name, n) in v.iter().take(top) {
        println!(
            "| {n} | {:.1} % | {} |",
            100.0 * *n as f64 / total.max(1) as f64,
            name.replace('|', "\\|")
        );
    }
    Ok(())
}
