//! Cortex-M DSP extension (Armv7E-M, Armv8-M Mainline with DSP): `SMLAD`
//! multiplies two pairs of signed halfwords and adds both products to an
//! accumulator in one instruction. Four int8 values are loaded as one word
//! and split into two halfword pairs with `SXTB16` (bytes 0 and 2) and
//! `SXTB16 …, ROR #8` (bytes 1 and 3). Input and weights are split the same
//! way, so the pairs line up and the reordering never shows in the sum.
//!
//! `SMLAD`'s addition is modulo 2³² (overflow only sets the sticky Q flag),
//! which is the reference kernels' wrapping accumulator: bit-exact.

use core::arch::asm;

#[inline(always)]
fn word(c: &[i8]) -> u32 {
    match c {
        [a, b, cc, d, ..] => u32::from_le_bytes([*a as u8, *b as u8, *cc as u8, *d as u8]),
        _ => 0,
    }
}

/// Bytes 0 and 2 of `v`, sign-extended to halfwords.
#[inline(always)]
fn sxtb16(v: u32) -> u32 {
    let r: u32;
    // SAFETY: a register-to-register DSP instruction; it reads and writes
    // no memory and no flags (`pure, nomem, nostack`). The crate only
    // builds this module for 32-bit Arm with the `dsp` feature, which is
    // enabled for cores that have the DSP extension.
    unsafe {
        asm!("sxtb16 {r}, {v}", r = lateout(reg) r, v = in(reg) v,
             options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// Bytes 1 and 3 of `v`, sign-extended to halfwords.
#[inline(always)]
fn sxtb16_ror8(v: u32) -> u32 {
    let r: u32;
    // SAFETY: as for `sxtb16`: register-only, no memory or flag effects.
    unsafe {
        asm!("sxtb16 {r}, {v}, ror #8", r = lateout(reg) r, v = in(reg) v,
             options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// `acc + a.lo·b.lo + a.hi·b.hi` (wrapping).
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only; SMLAD may set the sticky Q flag, which no Rust
    // code reads (so `preserves_flags` is not claimed: Q lives in APSR).
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack))
    };
    r
}

/// See [`super::dot::dot_s8`].
#[inline]
pub fn dot_s8(x: &[i8], w: &[i8]) -> i32 {
    let n = x.len().min(w.len());
    let body = n & !3;
    let mut acc = 0i32;
    for (xc, wc) in x[..body].chunks_exact(4).zip(w[..body].chunks_exact(4)) {
        let (xv, wv) = (word(xc), word(wc));
        acc = smlad(sxtb16(xv), sxtb16(wv), acc);
        acc = smlad(sxtb16_ror8(xv), sxtb16_ror8(wv), acc);
    }
    for (&a, &b) in x[body..n].iter().zip(&w[body..n]) {
        acc = acc.wrapping_add(a as i32 * b as i32);
    }
    acc
}

/// See [`super::dot::dot4_s8`]: each input word is widened once and used
/// for four rows (23 instructions per 16 multiply-accumulates). The five
/// streams are walked with `chunks_exact` so no bounds check is left in the
/// loop.
#[inline]
pub fn dot4_s8(x: &[i8], w0: &[i8], w1: &[i8], w2: &[i8], w3: &[i8]) -> [i32; 4] {
    let n = x
        .len()
        .min(w0.len())
        .min(w1.len())
        .min(w2.len())
        .min(w3.len());
    let body = n & !3;
    let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
    let words = x[..body]
        .chunks_exact(4)
        .zip(w0[..body].chunks_exact(4))
        .zip(w1[..body].chunks_exact(4))
        .zip(w2[..body].chunks_exact(4))
        .zip(w3[..body].chunks_exact(4));
    for ((((xc, c0), c1), c2), c3) in words {
        let xv = word(xc);
        let (xa, xb) = (sxtb16(xv), sxtb16_ror8(xv));
        let v0 = word(c0);
        a0 = smlad(xb, sxtb16_ror8(v0), smlad(xa, sxtb16(v0), a0));
        let v1 = word(c1);
        a1 = smlad(xb, sxtb16_ror8(v1), smlad(xa, sxtb16(v1), a1));
        let v2 = word(c2);
        a2 = smlad(xb, sxtb16_ror8(v2), smlad(xa, sxtb16(v2), a2));
        let v3 = word(c3);
        a3 = smlad(xb, sxtb16_ror8(v3), smlad(xa, sxtb16(v3), a3));
    }
    for j in body..n {
        let xv = x[j] as i32;
        a0 = a0.wrapping_add(xv * w0[j] as i32);
        a1 = a1.wrapping_add(xv * w1[j] as i32);
        a2 = a2.wrapping_add(xv * w2[j] as i32);
        a3 = a3.wrapping_add(xv * w3[j] as i32);
    }
    [a0, a1, a2, a3]
}
