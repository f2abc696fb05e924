//! Flash and RAM use of a firmware ELF, per section and per model.

use std::path::Path;

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags};

/// Memory use of one firmware image.
#[derive(Debug, Default, Clone)]
pub struct Size {
    /// Allocated sections: (name, bytes, in flash, in RAM).
    pub sections: Vec<(String, u64, bool, bool)>,
    /// Code: `.text` plus the vector table.
    pub code_bytes: u64,
    /// The embedded model blob.
    pub model_bytes: u64,
    /// Read-only data other than the model (input, expected output, tables).
    pub other_rodata_bytes: u64,
    /// Everything in flash (code + read-only data + `.data` initialisers).
    pub flash_bytes: u64,
    /// Statics in RAM (`.data`, `.bss` with the arena, `.uninit`).
    pub static_ram_bytes: u64,
}

/// Reads section and symbol sizes of `elf`.
pub fn of(elf: &Path) -> Result<Size> {
    let bytes = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file =
        object::File::parse(&*bytes).with_context(|| format!("{}: not an ELF", elf.display()))?;
    let mut s = Size::default();
    for sec in file.sections() {
        let SectionFlags::Elf { sh_flags } = sec.flags() else {
            continue;
        };
        const SHF_ALLOC: u64 = 0x2;
        const SHF_WRITE: u64 = 0x1;
        const SHF_EXECINSTR: u64 = 0x4;
        if sh_flags & SHF_ALLOC == 0 || sec.size() == 0 {
            continue;
        }
        let name = sec.name().unwrap_or("?").to_string();
        let nobits = sec.kind() == object::SectionKind::UninitializedData
            || sec.kind() == object::SectionKind::UninitializedTls;
        let writable = sh_flags & SHF_WRITE != 0;
        let in_flash = !nobits;
        let in_ram = writable;
        if sh_flags & SHF_EXECINSTR != 0 || name == ".vector_table" {
            s.code_bytes += sec.size();
        }
        if in_flash {
            s.flash_bytes += sec.size();
        }
        if in_ram {
            s.static_ram_bytes += sec.size();
        }
        s.sections.push((name, sec.size(), in_flash, in_ram));
    }
    let rodata: u64 = s
        .sections
        .iter()
        .filter(|(n, _, f, r)| *f && !*r && n.starts_with(".rodata"))
        .map(|(_, b, _, _)| *b)
        .sum();
    s.model_bytes = file
        .symbols()
        .find(|sym| sym.name() == Ok("EMBER_MODEL"))
        .map(|sym| sym.size())
        .unwrap_or(0);
    s.other_rodata_bytes = rodata.saturating_sub(s.model_bytes);
    Ok(s)
}

/// Prints a per-section table.
pub fn print(name: &str, s: &Size, stack: Option<u64>) {
    println!("{name}");
    println!("  {:<16} {:>10}  memory", "section", "bytes");
    for (n, b, f, r) in &s.sections {
        let mem = match (f, r) {
            (true, true) => "flash (initialiser) + RAM",
            (true, false) => "flash",
            (false, true) => "RAM",
            _ => "",
        };
        println!("  {n:<16} {b:>10}  {mem}");
    }
    println!(
        "  flash {} B = code {} B + model {} B + other read-only data {} B{}",
        s.flash_bytes,
        s.code_bytes,
        s.model_bytes,
        s.other_rodata_bytes,
        if s.flash_bytes > s.code_bytes + s.model_bytes + s.other_rodata_bytes {
            " + .data initialisers"
        } else {
            ""
        }
    );
    match stack {
        Some(st) => println!(
            "  RAM {} B = statics {} B (arena included) + stack {} B (measured high-water mark)",
            s.static_ram_bytes + st,
            s.static_ram_bytes,
            st
        ),
        None => println!(
            "  RAM {} B of statics (arena included) + stack (run it to measure)",
            s.static_ram_bytes
        ),
    }
}
