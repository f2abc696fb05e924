//! The CLI's memory budget (`--max-memory`): every input it reads and
//! every buffer it allocates for one is checked against it *before* the
//! allocation, so a hostile file is a one-line error instead of an abort.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};

/// The budget when `--max-memory` is not given: 2 GiB.
pub const DEFAULT_MAX_MEMORY: usize = 2 << 30;

static MAX_MEMORY: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_MEMORY);

/// The budget in bytes.
pub fn max_memory() -> usize {
    MAX_MEMORY.load(Ordering::Relaxed)
}

/// Sets the budget (the command line does, once, before any work).
pub fn set_max_memory(bytes: usize) {
    MAX_MEMORY.store(bytes, Ordering::Relaxed);
}

/// `Err` naming `what` when `bytes` exceed the budget.
pub fn check(what: &str, bytes: u64) -> Result<()> {
    check_against(what, bytes, max_memory() as u64, "--max-memory")
}

/// `Err` naming `what` when `bytes` exceed `max`; `raise_with` says how the
/// user raises the budget (`--max-memory`, or `max_memory=` in Python).
pub fn check_against(what: &str, bytes: u64, max: u64, raise_with: &str) -> Result<()> {
    if bytes > max {
        bail!(
            "{what} needs {}, over the memory budget of {} (raise it with {raise_with})",
            human(bytes),
            human(max)
        );
    }
    Ok(())
}

/// `Err` naming `path` when the file is larger than the budget (checked
/// from its metadata, before it is read).
pub fn check_file(path: &std::path::Path) -> Result<()> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    check(&format!("reading {}", path.display()), len)
}

/// Bytes in the largest fitting unit.
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// A size such as `512M`, `2G`, `64k` or `1000000` (bytes; K/M/G are
/// binary multiples).
pub fn parse_size(text: &str) -> Result<usize> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                _ => bail!("--max-memory '{text}': unknown unit '{c}' (use K, M or G)"),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .with_context(|| format!("--max-memory '{text}' is not a size such as 512M or 2G"))?;
    n.checked_shl(shift)
        .filter(|&b| b >> shift == n && b > 0)
        .and_then(|b| usize::try_from(b).ok())
        .with_context(|| format!("--max-memory '{text}' is not a usable size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_nonsense_is_refused() {
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        for bad in ["", "G", "0", "-1", "1.5G", "12X", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
