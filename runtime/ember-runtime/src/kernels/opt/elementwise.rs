//! int8 Add of two tensors of the same shape (TFLite semantics, no
//! broadcasting): the reference kernel's arithmetic without its index
//! machinery, four elements per Helium step on the M55, sixteen per NEON
//! step on aarch64.

use super::super::elementwise::AddParamsS8;
use super::super::sat_i8;
use super::epilogue::requantize_fixed;
use crate::error::{Error, Result};

/// Scratch bytes [`add_s8_opt`] needs (none).
pub fn add_s8_opt_scratch_size() -> usize {
    0
}

/// Bit-exact with [`crate::kernels::elementwise::add_s8`] when `a`, `b`
/// and `y` have the same shape and every multiplier is non-negative (what
/// model validation guarantees for Add).
pub fn add_s8_opt(a: &[i8], b: &[i8], p: &AddParamsS8, y: &mut [i8]) -> Result<()> {
    if a.len() != y.len() || b.len() != y.len() {
        return Err(Error::ShapeMismatch("add: operand lengths differ"));
    }
    if p.a_mult < 0 || p.b_mult < 0 || p.out_mult < 0 {
        return Err(Error::ShapeMismatch("add: negative multiplier"));
    }
    let ls = p.left_shift.clamp(0, 30) as u32;
    // The one place Add picks its instruction set: Helium takes whole
    // groups of four, NEON of sixteen; the scalar loop does the rest.
    let done = by_isa!(
        mve: super::mve::add::add4_run(a, b, p, ls, y),
        dsp: 0,
        // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
        // condition for this arm).
        neon: unsafe { super::neon::add::add_run(a, b, p, ls, y) },
        portable: 0,
    );
    for ((o, &av), &bv) in y[done..].iter_mut().zip(&a[done..]).zip(&b[done..]) {
        let av = (av as i32).wrapping_sub(p.a_zp).wrapping_shl(ls);
        let bv = (bv as i32).wrapping_sub(p.b_zp).wrapping_shl(ls);
        let sa = requantize_fixed(av, p.a_mult, p.a_shift);
        let sb = requantize_fixed(bv, p.b_mult, p.b_shift);
        let raw =
            requantize_fixed(sa.wrapping_add(sb), p.out_mult, p.out_shift).saturating_add(p.out_zp);
        *o = sat_i8(raw, p.act_min, p.act_max);
    }
    Ok(())
}
