//! Byte table lookup (`y[i] = table[x[i]]`, the int8/uint8 form of every
//! element-wise function, [`crate::kernels::unary::lut_8`]): sixteen
//! lookups per Helium gather (`VLDRB.U8` with byte offsets) on the M55,
//! sixteen per four-register `TBL`/`TBX` chain on aarch64, four per
//! unrolled step elsewhere (no Cortex-M4 instruction gathers bytes).

use crate::error::{Error, Result};

/// Scratch bytes [`lut_8_opt`] needs (none).
pub fn lut_8_opt_scratch_size() -> usize {
    0
}

/// Bit-exact with [`crate::kernels::unary::lut_8`] (a lookup has only one
/// answer): `y[i] = table[x[i]]`, `table` of 256 entries.
pub fn lut_8_opt(x: &[u8], table: &[u8], y: &mut [u8]) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::ShapeMismatch("lut: output length"));
    }
    let table: &[u8; 256] = table
        .try_into()
        .map_err(|_| Error::ShapeMismatch("lut: the table must have 256 entries"))?;
    // SAFETY: `x` and `y` are `y.len()` bytes each (checked above).
    unsafe { lut_raw(x.as_ptr(), table, y.as_mut_ptr(), y.len()) };
    Ok(())
}

/// [`lut_8_opt`] in place: `y[i] = table[y[i]]` (a function fused into the
/// op that produced `y`).
pub fn lut_8_inplace_opt(y: &mut [u8], table: &[u8; 256]) {
    let p = y.as_mut_ptr();
    // SAFETY: `p` spans `y.len()` bytes, and every pass of `lut_raw`
    // reads its bytes before it writes them, so reading and writing the
    // same bytes through one pointer gives each its own entry.
    unsafe { lut_raw(p, table, p, y.len()) };
}

/// `y[i] = table[x[i]]` for `i < n`.
///
/// # Safety
/// `x` must be readable and `y` writable for `n` bytes; they may be the
/// same bytes (each step reads its bytes before writing them) but must not
/// overlap otherwise.
unsafe fn lut_raw(x: *const u8, table: &[u8; 256], y: *mut u8, n: usize) {
    // The one place the lookup picks its instruction set: Helium and NEON
    // take everything they can, the unrolled loop below the rest.
    let done = by_isa!(
        // SAFETY: the caller's contract, passed on.
        mve: unsafe { super::mve::lut::lut_run(x, table, y, n) },
        dsp: 0,
        // SAFETY: the caller's contract, passed on; NEON is enabled for
        // the whole build (`by_isa!`'s condition for this arm).
        neon: unsafe { super::neon::lut::lut_run(x, table, y, n) },
        portable: 0,
    );
    let mut i = done;
    while i + 4 <= n {
        // SAFETY: `i + 4 <= n`, in bounds for both; the four bytes are
        // read before any is written. Four independent lookups per step.
        unsafe {
            let (a, b, c, d) = (*x.add(i), *x.add(i + 1), *x.add(i + 2), *x.add(i + 3));
            *y.add(i) = table[a as usize];
            *y.add(i + 1) = table[b as usize];
            *y.add(i + 2) = table[c as usize];
            *y.add(i + 3) = table[d as usize];
        }
        i += 4;
    }
    while i < n {
        // SAFETY: `i < n`.
        unsafe { *y.add(i) = table[*x.add(i) as usize] };
        i += 1;
    }
}
