//! Convolution: a receptive field gathered row by row by vector copies.

use core::arch::asm;

/// Gathers `rows` runs of `run` bytes, the first at `x[base..]` and each
/// next `stride` bytes further, one after another into `dst` (the
/// receptive field of a window that lies inside the input), sixteen bytes
/// per tail-predicated `VLDRB`/`VSTRB` pair, all rows in one `asm!`.
/// Returns the field (`dst[..rows·run]`), or `None` when a slice is too
/// short (nothing is written then).
pub fn gather_rows<'a>(
    x: &[i8],
    base: usize,
    stride: usize,
    run: usize,
    rows: usize,
    dst: &'a mut [i8],
) -> Option<&'a [i8]> {
    let total = rows.checked_mul(run)?;
    let end = rows
        .checked_sub(1)?
        .checked_mul(stride)?
        .checked_add(base)?
        .checked_add(run)?;
    if end > x.len() || total > dst.len() || run == 0 {
        return None;
    }
    // SAFETY: row `r < rows` reads `x[base + r·stride..][..run]`, inside
    // `x` (`base + (rows − 1)·stride + run ≤ x.len()`), and writes
    // `dst[r·run..][..run]`, inside `dst` (`rows·run ≤ dst.len()`); the
    // predicated loads and stores touch no byte past each run. Only the
    // declared registers are written. Compiled only with the `mve`
    // feature on 32-bit Arm.
    unsafe {
        asm!(
            "3:",
            "mov {s}, {src}",
            "mov lr, {run}",
            "dlstp.8 lr, lr",
            "2:",
            "vldrb.u8 q0, [{s}], #16",
            "vstrb.8 q0, [{d}], #16",
            "letp lr, 2b",
            "sub {d}, {d}, {pad}",
            "add {src}, {src}, {stride}",
            "subs {n}, {n}, #1",
            "bne 3b",
            src = inout(reg) x.as_ptr().add(base) => _,
            s = out(reg) _,
            d = inout(reg) dst.as_mut_ptr() => _,
            run = in(reg) run,
            pad = in(reg) run.next_multiple_of(16) - run,
            stride = in(reg) stride,
            n = inout(reg) rows => _,
            out("lr") _,
            out("q0") _,
            options(nostack),
        );
    }
    Some(&dst[..total])
}
