//! `ember-probe`: real boards through probe-rs (as a library).
//!
//! - `ember-probe check CHIP ELF` checks that every loadable byte of the
//!   image lands in the chip's flash and every writable section (and the
//!   stack top) in its RAM, from probe-rs' target description.
//! - `ember-probe run CHIP ELF` checks, flashes, resets the core and copies
//!   the firmware's RTT up channel 0 (its defmt frames, undecoded) to
//!   standard output until it is stopped; `cargo xtask flash` decodes them
//!   and stops it when the firmware reports its exit.
//!
//! Errors are one line on standard error and exit status 1.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use object::elf::{PT_LOAD, SHF_ALLOC, SHF_WRITE};
use object::read::elf::{ElfFile32, FileHeader, ProgramHeader, SectionHeader};
use object::{LittleEndian, Object, ObjectSymbol};
use probe_rs::config::{MemoryRegion, Registry};
use probe_rs::flashing::{download_file, ElfLoader};
use probe_rs::probe::list::Lister;
use probe_rs::rtt::Rtt;
use probe_rs::Permissions;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.as_slice() {
        [cmd, chip, elf] if cmd == "check" => check(chip, Path::new(elf)),
        [cmd, chip, elf] if cmd == "run" => run(chip, Path::new(elf)),
        _ => Err(anyhow::anyhow!(
            "usage: ember-probe check|run CHIP FIRMWARE.elf"
        )),
    };
    if let Err(e) = r {
        eprintln!("{e:#}");
        std::process::exit(1);
    }
}

fn fmt_range(r: &std::ops::Range<u64>) -> String {
    format!("{:#010x}..{:#010x}", r.start, r.end)
}

/// Checks that every loadable byte of `elf` lands in `chip`'s flash and
/// every writable section (and the stack top) in its RAM.
fn check(chip: &str, elf: &Path) -> Result<()> {
    let target = Registry::from_builtin_families()
        .get_target_by_name(chip)
        .map_err(|e| anyhow::anyhow!("probe-rs does not know chip {chip}: {e}"))?;
    let regions = |ram: bool| -> Vec<std::ops::Range<u64>> {
        target
            .memory_map
            .iter()
            .filter_map(|m| match m {
                MemoryRegion::Nvm(r) if !ram => Some(r.range.clone()),
                MemoryRegion::Ram(r) if ram => Some(r.range.clone()),
                _ => None,
            })
            .collect()
    };
    let (nvm, ram) = (regions(false), regions(true));
    let inside = |regions: &[std::ops::Range<u64>], lo: u64, hi: u64| {
        regions.iter().any(|r| lo >= r.start && hi <= r.end)
    };
    let list =
        |rs: &[std::ops::Range<u64>]| rs.iter().map(fmt_range).collect::<Vec<_>>().join(", ");

    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = ElfFile32::<LittleEndian>::parse(&*data)
        .with_context(|| format!("{}: not a 32-bit little-endian ELF", elf.display()))?;
    let e = LittleEndian;
    let mut flash_used = 0u64;
    for ph in file.elf_program_headers() {
        if ph.p_type(e) != PT_LOAD || ph.p_filesz(e) == 0 {
            continue;
        }
        let lo = u64::from(ph.p_paddr(e));
        let hi = lo + u64::from(ph.p_filesz(e));
        if !inside(&nvm, lo, hi) {
            bail!(
                "{}: a loadable segment at {} is outside {chip}'s flash ({})",
                elf.display(),
                fmt_range(&(lo..hi)),
                list(&nvm)
            );
        }
        flash_used += hi - lo;
    }
    let sections = file
        .elf_header()
        .sections(e, &*data)
        .context("cannot read the section table")?;
    let mut ram_used = 0u64;
    for s in sections.iter() {
        let flags = u64::from(s.sh_flags(e));
        if flags & u64::from(SHF_ALLOC) == 0 || flags & u64::from(SHF_WRITE) == 0 {
            continue;
        }
        let lo = u64::from(s.sh_addr(e));
        let hi = lo + u64::from(s.sh_size(e));
        if hi == lo {
            continue;
        }
        if !inside(&ram, lo, hi) {
            let name = String::from_utf8_lossy(sections.section_name(e, s).unwrap_or(b"?"));
            bail!(
                "{}: section {name} at {} is outside {chip}'s RAM ({})",
                elf.display(),
                fmt_range(&(lo..hi)),
                list(&ram)
            );
        }
        ram_used += hi - lo;
    }
    if let Some(top) = file
        .symbols()
        .find(|s| s.name() == Ok("_stack_start"))
        .map(|s| s.address())
    {
        if !ram.iter().any(|r| top > r.start && top <= r.end) {
            bail!(
                "{}: the stack top {top:#x} is outside {chip}'s RAM",
                elf.display()
            );
        }
    }
    println!(
        "{}: fits {chip}: {flash_used} B of flash in {}, {ram_used} B of statics in {} (stack above)",
        elf.display(),
        list(&nvm),
        list(&ram)
    );
    Ok(())
}

/// Checks and flashes `elf`, resets the core and copies RTT up channel 0
/// to standard output, until killed.
fn run(chip: &str, elf: &Path) -> Result<()> {
    check(chip, elf)?;
    let probes = Lister::new().list_all();
    if probes.is_empty() {
        bail!(
            "no debug probe found, so {chip} cannot be flashed. Connect the board's probe over USB \
             (on-board ST-LINK or J-Link, or a Raspberry Pi Debug Probe for the Pico 2) and check that \
             your user may open it (udev rules); `cargo xtask flash --dry-run` checks the image without one"
        );
    }
    eprintln!("    probes found:");
    for p in &probes {
        eprintln!(
            "      {} ({:04x}:{:04x}{})",
            p.identifier,
            p.vendor_id,
            p.product_id,
            p.serial_number
                .as_deref()
                .map(|s| format!(", serial {s}"))
                .unwrap_or_default()
        );
    }
    let info = &probes[0];
    let probe = info
        .open()
        .map_err(|e| anyhow::anyhow!("cannot open probe {}: {e}", info.identifier))?;
    let mut session = probe.attach(chip, Permissions::default()).map_err(|e| {
        anyhow::anyhow!(
            "cannot attach to {chip} through {}: {e} (is the board powered and the right one?)",
            info.identifier
        )
    })?;
    eprintln!("    flashing {}", elf.display());
    download_file(&mut session, elf, ElfLoader(Default::default()))
        .map_err(|e| anyhow::anyhow!("flashing failed: {e}"))?;
    let data = std::fs::read(elf)?;
    let rtt_addr = object::File::parse(&*data)?
        .symbols()
        .find(|s| s.name() == Ok("_SEGGER_RTT"))
        .map(|s| s.address())
        .context("the firmware has no RTT control block (_SEGGER_RTT)")?;
    let mut core = session.core(0)?;
    core.reset()?;
    let start = Instant::now();
    let mut rtt = loop {
        match Rtt::attach_at(&mut core, rtt_addr) {
            Ok(r) => break r,
            Err(_) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => bail!("cannot attach to RTT at {rtt_addr:#x}: {e}"),
        }
    };
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 4096];
    loop {
        let n = match rtt.up_channel(0) {
            Some(ch) => ch.read(&mut core, &mut buf)?,
            None => bail!("the firmware's RTT has no up channel"),
        };
        if n == 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        // The reader has what it needs once it stops reading.
        if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
            return Ok(());
        }
    }
}
