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
    // The one place the lookup picks its instruction set: Helium and NEON
    // take everything they can, the unrolled loop below the rest.
    let done = by_isa!(
        mve: super::mve::lut::lut_run(x, table, y),
        dsp: 0,
        // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
        // condition for this arm).
        neon: unsafe { super::neon::lut::lut_run(x, table, y) },
        portable: 0,
    );
    let (x, y) = (&x[done..], &mut y[done..]);
    let mut xs = x.chunks_exact(4);
    let mut ys = y.chunks_exact_mut(4);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        // Four independent loads per step: the table reads do not wait
        // on each other's stores.
        let (a, b, c, d) = (xc[0], xc[1], xc[2], xc[3]);
        yc[0] = table[a as usize];
        yc[1] = table[b as usize];
        yc[2] = table[c as usize];
        yc[3] = table[d as usize];
    }
    for (o, &v) in ys.into_remainder().iter_mut().zip(xs.remainder()) {
        *o = table[v as usize];
    }
    Ok(())
}
