//! `cargo xtask ota-sweep`: A/B model updates cut by power failures. The
//! `ember-ota` firmware updates the inactive slot of a simulated flash with
//! the power failing at flash operation N, for a sweep of N (every
//! operation of the commit record and of the slot's erase, the first and
//! last blob words, and points spread over the rest); each cut image is
//! booted again and must run a valid model: the old one before the commit,
//! the new one after. Swept from two starting images: slot A alone (the
//! update writes B), and A then B (the update overwrites the older A).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::sign_check::signed_firmware;
use crate::{boards, firmware, qemu, root, step};

/// Result of one sweep.
pub(crate) struct Sweep {
    /// Cut points tried (each one an interrupted update and a boot).
    pub cuts: usize,
    /// Boots that ran the old model / the new one.
    pub old: usize,
    pub new: usize,
}

fn plan(dir: &Path, update: bool, cut: u32) -> Result<()> {
    let mut b = (update as u32).to_le_bytes().to_vec();
    b.extend_from_slice(&cut.to_le_bytes());
    std::fs::write(dir.join("ota-plan.bin"), b).context("cannot write ota-plan.bin")
}

/// The `seq` the boot line names, after checking the run was clean.
fn booted(r: &qemu::Report, want_code: i32, what: &str) -> Result<u32> {
    if r.exit_code != want_code || !r.errors.is_empty() {
        bail!(
            "{what}: exit {} (expected {want_code}): {}",
            r.exit_code,
            r.errors.join("; ")
        );
    }
    if !r.lines.iter().any(|l| l == "ember-ota model ok") {
        bail!("{what}: the booted model did not run right");
    }
    r.lines
        .iter()
        .find_map(|l| l.strip_prefix("ember-ota boot slot "))
        .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        .with_context(|| format!("{what}: no boot line"))
}

pub(crate) fn ota_sweep_cmd(board: &str, model: &str, points: usize) -> Result<Sweep> {
    let board = boards::ready_simulated(board, "ota-sweep")?;
    let sensors = firmware::Sensors {
        ota: true,
        ..Default::default()
    };
    let (p, elf) = signed_firmware(board, model, "ember-ota", sensors)?;
    let dir = root().join(format!("target/ota/{}", board.name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let image = dir.join("ota-flash.bin");
    let run = |update: bool, cut: u32| -> Result<qemu::Report> {
        plan(&dir, update, cut)?;
        qemu::run_in(board, &elf, Duration::from_secs(120), &dir)
    };
    step(&format!(
        "A/B update of {} on {} with power cuts",
        p.name, board.about
    ));
    // Factory image (slot A), then one whole update (B) to count the
    // operations and to get the second starting image.
    booted(&run(false, u32::MAX)?, 0, "factory boot")?;
    let base_a = std::fs::read(&image).context("no flash image after the factory boot")?;
    let full = run(true, u32::MAX)?;
    booted(&full, 0, "uncut update")?;
    let ops: u32 = full
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("ember-ota updated slot "))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .context("the uncut update reported no operation count")?;
    let base_ab = std::fs::read(&image)?;
    // Cut points: the record erase (8 words) and the first blob words, the
    // last blob words and the commit (8 words), the rest spread evenly, and
    // one past the end (no cut).
    let mut cuts: Vec<u32> = (0..24).chain(ops.saturating_sub(24)..=ops).collect();
    let spread = points.saturating_sub(cuts.len()).max(1) as u32;
    cuts.extend((1..spread).map(|k| 24 + k * ops.saturating_sub(48) / spread));
    cuts.sort_unstable();
    cuts.dedup();
    let mut sweep = Sweep {
        cuts: 0,
        old: 0,
        new: 0,
    };
    for (base, name, old_seq) in [(&base_a, "A", 1u32), (&base_ab, "A+B", 2)] {
        for &cut in &cuts {
            std::fs::write(&image, base)?;
            let what = format!("image {name}, power cut at flash operation {cut} of {ops}");
            let r = run(true, cut)?;
            booted(&r, if cut < ops { 7 } else { 0 }, &what)?;
            let seq = booted(&run(false, u32::MAX)?, 0, &format!("{what}, then boot"))?;
            // The commit's last word is operation ops - 1: before it, the
            // old model; once it is written, the new one.
            let want = if cut < ops { old_seq } else { old_seq + 1 };
            if seq != want {
                bail!("{what}: booted sequence {seq}, expected {want}");
            }
            sweep.cuts += 1;
            if seq == old_seq {
                sweep.old += 1;
            } else {
                sweep.new += 1;
            }
        }
    }
    println!(
        "    {} power cuts over {} flash operations per update, every boot valid: {} ran the old model, {} the new one",
        sweep.cuts, ops, sweep.old, sweep.new
    );
    Ok(sweep)
}
