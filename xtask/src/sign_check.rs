//! `cargo xtask sign-check`: a blob signed with a test key, on a simulated
//! board whose firmware trusts that key: what verification costs, and
//! (with `--sweep`) that every tampered copy is refused on the device.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ember_compiler::sign::{to_hex, SigningKey};

use crate::boards::Board;
use crate::{boards, firmware, qemu, step};

/// The test key's seed (`sign-check`, `ota-sweep`): public on purpose (a
/// real deployment keeps its seed off the build machine's repository;
/// `ember keygen` makes one).
const TEST_SEED: [u8; 32] = *b"ember sign-check test key, 32 B!";

/// What the firmware measured.
pub(crate) struct SignCheck {
    /// Bytes the signature covers.
    pub bytes: u64,
    /// Instructions of the signature check alone.
    pub verify_instructions: u64,
    /// Instructions of the whole signed load (check + validation).
    pub load_instructions: u64,
    /// Tampered blobs tried and refused (`--sweep`).
    pub sweep: Option<(u64, u64)>,
}

/// Builds firmware binary `bin` for `board` with `model` signed by the
/// test key embedded, and the test key's public key as the one it trusts
/// (`sensors` gives the rest); returns the prepared model and the ELF.
pub(crate) fn signed_firmware(
    board: &Board,
    model: &str,
    bin: &str,
    sensors: firmware::Sensors,
) -> Result<(firmware::Prepared, PathBuf)> {
    let mut p = firmware::prepare(model, board, None, None, 0)?;
    let key = SigningKey::from_seed(TEST_SEED);
    p.blob = key
        .sign(&p.blob)
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.name))?;
    let sensors = firmware::Sensors {
        model_pubkey: Some(to_hex(&key.public_key())),
        ..sensors
    };
    let elf = firmware::build_bin(board, &p, bin, &sensors)?;
    Ok((p, elf))
}

pub(crate) fn sign_check_cmd(board: &str, model: &str, sweep: bool) -> Result<SignCheck> {
    let board = boards::ready_simulated(board, "sign-check")?;
    let sensors = firmware::Sensors {
        sign_sweep: sweep,
        ..Default::default()
    };
    let (p, elf) = signed_firmware(board, model, "ember-sign-check", sensors)?;
    step(&format!(
        "run on {}: signed {} blob{}",
        board.about,
        p.name,
        if sweep { ", tampered copies" } else { "" }
    ));
    let r = qemu::run(board, &elf, Duration::from_secs(900))?;
    if r.exit_code != 0 || !r.errors.is_empty() {
        bail!(
            "signature check failed on {} (exit {}): {}",
            board.name,
            r.exit_code,
            r.errors.join("; ")
        );
    }
    let field = |line: &str, name: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == name)?;
        words.next()?.parse().ok()
    };
    let line = |prefix: &str| r.lines.iter().find(|l| l.starts_with(prefix)).cloned();
    let cost = line("ember-sign bytes").context("the firmware reported no verification cost")?;
    let parse = |name| field(&cost, name).with_context(|| format!("no {name} in '{cost}'"));
    let out = SignCheck {
        bytes: parse("bytes")?,
        verify_instructions: r.instructions(parse("verify-ticks")?),
        load_instructions: r.instructions(parse("signed-load-ticks")?),
        sweep: line("ember-sign sweep")
            .and_then(|l| Some((field(&l, "tried")?, field(&l, "refused")?))),
    };
    if sweep && out.sweep.is_none() {
        bail!("the firmware ran no tampering sweep");
    }
    println!(
        "    {} on {}: {} B signed, verify {} instructions ({:.0} per byte), signed load {} instructions",
        p.name,
        board.name,
        out.bytes,
        out.verify_instructions,
        out.verify_instructions as f64 / out.bytes.max(1) as f64,
        out.load_instructions
    );
    if let Some((tried, refused)) = out.sweep {
        println!(
            "    tampered, unsigned or foreign blobs refused on the device: {refused} of {tried}"
        );
    }
    Ok(out)
}
