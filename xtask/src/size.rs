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
    /// The code by part ([`code_part`]), largest first; what no function
    /// symbol covers (vector table, padding, veneers) is `unattributed`.
    pub code_by_part: Vec<(String, u64)>,
}

/// The part of the firmware a function belongs to, from its demangled path:
/// each kernel family (`kernel conv`, `kernel fully_connected`, with the
/// architecture for the shared Helium/NEON/DSP helpers), the op dispatch,
/// the loader's validation, the app and board, logging, `core` and the
/// compiler's builtins, and the rest. Functions the optimiser inlined count
/// where they were inlined (a kernel inlined into its op's `eval` counts as
/// dispatch).
pub fn code_part(path: &str) -> String {
    // `<usize as core::fmt::Display>::fmt` belongs with its trait's crate.
    let path = match path.strip_prefix('<').and_then(|p| p.split_once(" as ")) {
        Some((_, tr)) => tr,
        None => path.trim_start_matches('<'),
    };
    if let Some(rest) = path.strip_prefix("ember_runtime::kernels::") {
        let mut seg = rest.split("::").filter(|s| *s != "opt");
        let first = seg.next().unwrap_or("");
        return match first {
            "mve" | "neon" | "dsp" | "portable" => {
                format!("kernel {first} {}", seg.next().unwrap_or(""))
                    .trim_end()
                    .to_string()
            }
            // Types and generic items at the kernels' root (`Window`, …).
            _ if first.is_empty()
                || first.starts_with(|c: char| c.is_ascii_uppercase())
                || first.contains(['<', ' ']) =>
            {
                "kernel helpers".into()
            }
            _ => format!("kernel {first}"),
        };
    }
    let starts = |p: &[&str]| p.iter().any(|x| path.starts_with(x));
    if starts(&[
        "ember_runtime::load",
        "ember_runtime::model",
        "ember_runtime::reader",
        "ember_runtime::format",
        "ember_runtime::ops::weights",
        "ember_runtime::ops::ctx",
        "ember_runtime::ops::kernel_of",
    ]) || (path.starts_with("ember_runtime::ops::") && path.ends_with("::validate"))
    {
        return "loader: validation".into();
    }
    if starts(&["ember_runtime::ops", "ember_runtime::interpreter"]) {
        return "op dispatch and interpreter".into();
    }
    if starts(&["ember_runtime::signature", "ed25519", "sha2"]) {
        return "signature check".into();
    }
    if starts(&["ember_runtime"]) {
        return "runtime: other".into();
    }
    if starts(&[
        "ember_app",
        "ember_board",
        "cortex_m",
        "aarch64",
        "embedded_hal",
        // The board crates and the startup code's symbols.
        "mps",
        "stm32",
        "nrf",
        "pico",
        "virt_a53",
        "Reset",
        "HardFault",
        "_HardFault",
        "DefaultHandler",
        "DefaultPreInit",
        "SysTick",
        "main",
        "__rustc",
        "__pre_init",
    ]) {
        return "app and board".into();
    }
    if starts(&["defmt", "_defmt", "__defmt"]) {
        return "logging (defmt)".into();
    }
    if starts(&["libm"]) {
        return "math (libm)".into();
    }
    if starts(&[
        "core",
        "compiler_builtins",
        "alloc",
        "__aeabi",
        "memcpy",
        "memset",
        "memmove",
        "memcmp",
    ]) {
        return "core and compiler builtins".into();
    }
    "other".into()
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
    let mut parts: std::collections::BTreeMap<String, u64> = Default::default();
    let mut seen = std::collections::HashSet::new();
    for sym in file.symbols() {
        if sym.kind() != object::SymbolKind::Text || sym.size() == 0 {
            continue;
        }
        // Thumb functions have bit 0 set; aliases share an address.
        if !seen.insert(sym.address() & !1) {
            continue;
        }
        let name = sym.name().unwrap_or("");
        let path = format!("{:#}", rustc_demangle::demangle(name));
        *parts.entry(code_part(&path)).or_default() += sym.size();
    }
    let named: u64 = parts.values().sum();
    if s.code_bytes > named {
        parts.insert("unattributed".into(), s.code_bytes - named);
    }
    s.code_by_part = parts.into_iter().collect();
    s.code_by_part
        .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
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
    println!("  code by part:");
    for (part, bytes) in &s.code_by_part {
        println!("    {part:<32} {bytes:>8}");
    }
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

#[cfg(test)]
mod tests {
    use super::code_part;

    #[test]
    fn functions_are_sorted_into_parts_by_path() {
        for (path, part) in [
            ("ember_runtime::kernels::opt::conv::run", "kernel conv"),
            ("ember_runtime::kernels::conv::conv2d_s8", "kernel conv"),
            (
                "ember_runtime::kernels::opt::mve::rows::pass",
                "kernel mve rows",
            ),
            ("ember_runtime::ops::conv::validate", "loader: validation"),
            (
                "ember_runtime::ops::weights::validate_opt",
                "loader: validation",
            ),
            (
                "ember_runtime::load::<impl ember_runtime::model::Model>::validate_plan",
                "loader: validation",
            ),
            ("ember_runtime::ops::eval", "op dispatch and interpreter"),
            (
                "ember_runtime::interpreter::split_io",
                "op dispatch and interpreter",
            ),
            (
                "<usize as core::fmt::Display>::fmt",
                "core and compiler builtins",
            ),
            (
                "compiler_builtins::mem::memcpy",
                "core and compiler builtins",
            ),
            ("ember_app::run_app", "app and board"),
            ("defmt::export::header", "logging (defmt)"),
            ("ember_runtime::kernels::Window::out_hw", "kernel helpers"),
        ] {
            assert_eq!(code_part(path), part, "{path}");
        }
    }
}
