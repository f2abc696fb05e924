//! Fully connected: one input row against four widened weight rows per
//! block, up to 64 sums per `asm!`, and the loop that drives it ([`run`]).

use crate::kernels::opt::dot::dot_s8;
use crate::kernels::opt::dsp_weights_len;
use crate::kernels::opt::epilogue::Epilogue;
use core::arch::asm;

/// What [`dot4_rows_wide`]'s `asm!` keeps in memory, in the order the
/// code reads it.
#[repr(C)]
#[allow(dead_code)] // read and written by the asm only
struct QuadsCtx {
    /// The input row.
    x: *const i8,
    /// Groups of four values per row.
    groups: usize,
    /// Folded bias of the next four rows.
    fb: *const i32,
    /// Where their sums go.
    acc: *mut i32,
    /// Quads of rows left.
    quads: usize,
}

/// One int8 input row `x` times `4·quads` weight rows widened by the
/// compiler (`pw`: [`super::super::pack_weights_dsp`]'s layout from a row pair
/// on), in one `asm!`: the sums of rows `4q..4q + 4` start from
/// `fb[4q..4q + 4]` and land in `acc[4q..4q + 4]`. Each input word is
/// sign-extended once (`SXTB16`) for the four rows, whose weights load
/// ready for `SMLAD`: 15 instructions per 16 multiply-accumulates (a
/// fully connected layer's weights are used once per input row, so
/// widening them at run time cost as much again). Values past the last
/// whole group of four are left to the caller. Returns the number of rows
/// done (`4·quads`, or 0 if a slice is too short).
pub fn dot4_rows_wide(
    x: &[i8],
    k: usize,
    pw: &[i16],
    quads: usize,
    fb: &[i32],
    acc: &mut [i32],
) -> usize {
    let groups = k / 4;
    let rows = 4 * quads;
    let fits = rows.checked_mul(4 * groups).is_some_and(|n| n <= pw.len())
        && fb.len() >= rows
        && acc.len() >= rows
        && x.len() >= 4 * groups;
    // `LDRD` needs word alignment (the compiler's filter is a 4-byte
    // aligned tensor and callers start at a multiple of four halfwords).
    if quads == 0 || groups == 0 || !fits || !(pw.as_ptr() as usize).is_multiple_of(4) {
        return 0;
    }
    let mut ctx = QuadsCtx {
        x: x.as_ptr(),
        groups,
        fb: fb.as_ptr(),
        acc: acc.as_mut_ptr(),
        quads,
    };
    // SAFETY: quad `q < quads` reads the input words `x[0..4·groups]`
    // (unaligned word loads are fine on these cores), the `16·groups`
    // halfwords of row pairs `2q` and `2q + 1` at `pw[16q·groups..]` (the
    // first pointer advances 16 bytes per group through pair `2q`; the
    // second starts right after it and ends where quad `q + 1` starts;
    // `4·quads·4·groups ≤ pw.len()`; word aligned, checked above),
    // `fb[4q..4q + 4]` and writes `acc[4q..4q + 4]` (`4·quads ≤` both
    // lengths; `LDRD`/`STRD` on `i32`s are word aligned). `ctx` lives
    // across the block and is written only through the pointer the block
    // saves in its own 8 bytes of stack, which it releases before it
    // ends. Only the declared registers and the flags are written.
    unsafe {
        asm!(
            "sub sp, sp, #8",
            "str {n}, [sp]",
            "3:",
            "ldr {t}, [sp]",
            "ldr {v}, [{t}, #8]",
            "ldrd {a0}, {a1}, [{v}], #8",
            "ldrd {a2}, {a3}, [{v}], #8",
            "str {v}, [{t}, #8]",
            "ldrd {xp}, {n}, [{t}]",
            "add {wb}, {wa}, {n}, lsl #4",
            "2:",
            "ldr {v}, [{xp}], #4",
            "sxtb16 {xa}, {v}",
            "sxtb16 {xb}, {v}, ror #8",
            "ldrd {v}, {t}, [{wa}], #16",
            "smlad {a0}, {xa}, {v}, {a0}",
            "smlad {a0}, {xb}, {t}, {a0}",
            "ldrd {v}, {t}, [{wa}, #-8]",
            "smlad {a1}, {xa}, {v}, {a1}",
            "smlad {a1}, {xb}, {t}, {a1}",
            "ldrd {v}, {t}, [{wb}], #16",
            "smlad {a2}, {xa}, {v}, {a2}",
            "smlad {a2}, {xb}, {t}, {a2}",
            "ldrd {v}, {t}, [{wb}, #-8]",
            "smlad {a3}, {xa}, {v}, {a3}",
            "smlad {a3}, {xb}, {t}, {a3}",
            "subs {n}, {n}, #1",
            "bne 2b",
            "mov {wa}, {wb}",
            "ldr {t}, [sp]",
            "ldr {v}, [{t}, #12]",
            "strd {a0}, {a1}, [{v}], #8",
            "strd {a2}, {a3}, [{v}], #8",
            "str {v}, [{t}, #12]",
            "ldr {n}, [{t}, #16]",
            "subs {n}, {n}, #1",
            "str {n}, [{t}, #16]",
            "bne 3b",
            "add sp, sp, #8",
            n = inout(reg) &mut ctx as *mut QuadsCtx => _,
            wa = inout(reg) pw.as_ptr() => _,
            wb = out(reg) _,
            xp = out(reg) _,
            xa = out(reg) _,
            xb = out(reg) _,
            v = out(reg) _,
            t = out(reg) _,
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
        );
    }
    rows
}

/// One input row times the weights, four outputs per pass, on the
/// compiler's widened weights `packed` ([`crate::kernels::opt::pack_weights_dsp`]): the
/// sums of up to 64 outputs at a time into a stack buffer
/// ([`dot4_rows_wide`], plus the `k % 4` last values from
/// `w`), then the epilogue four at a time. Returns how many outputs it
/// wrote (whole blocks of four); the caller finishes the rest.
fn dsp_row<E: Epilogue>(
    xr: &[i8],
    w: &[i8],
    packed: &[i16],
    k: usize,
    fb: &[i32],
    e: E,
    yr: &mut [i8],
) -> usize {
    let n = yr.len();
    let body = k & !3;
    let mut acc = [0i32; 64];
    let mut oc = 0;
    while oc + 4 <= n {
        let quads = ((n - oc) / 4).min(acc.len() / 4);
        let a = &mut acc[..4 * quads];
        let pw = packed.get(oc * body..).unwrap_or(&[]);
        let fbs = fb.get(oc..oc + 4 * quads).unwrap_or(&[]);
        if dot4_rows_wide(xr, k, pw, quads, fbs, a) != 4 * quads {
            break;
        }
        if body < k {
            for (r, s) in a.iter_mut().enumerate() {
                let wr = &w[(oc + r) * k + body..(oc + r + 1) * k];
                for (&u, &v) in xr[body..].iter().zip(wr) {
                    *s = s.wrapping_add((u as i32).wrapping_mul(v as i32));
                }
            }
        }
        for (j, (a4, o4)) in a
            .chunks_exact(4)
            .zip(yr[oc..oc + 4 * quads].chunks_exact_mut(4))
            .enumerate()
        {
            if let (Ok(a4), Ok(o4)) = (<[i32; 4]>::try_from(a4), <&mut [i8; 4]>::try_from(o4)) {
                e.apply4(a4, oc + 4 * j, o4);
            }
        }
        oc += 4 * quads;
    }
    oc
}

/// The DSP fully connected layer on the compiler's widened weights
/// `packed` ([`dsp_weights_len`] elements; otherwise it returns `false`,
/// having written nothing): four rows per pass through [`dsp_row`], the
/// outputs past its blocks one dot product at a time.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<E: Epilogue>(
    x: &[i8],
    rows: usize,
    k: usize,
    w: &[i8],
    packed: &[i16],
    n: usize,
    folded_bias: &[i32],
    e: E,
    y: &mut [i8],
) -> bool {
    if packed.is_empty() || packed.len() != dsp_weights_len(n, k) {
        return false;
    }
    for r in 0..rows {
        let (xr, yr) = (&x[r * k..(r + 1) * k], &mut y[r * n..(r + 1) * n]);
        let done = dsp_row(xr, w, packed, k, folded_bias, e, yr);
        for (c, o) in yr.iter_mut().enumerate().skip(done) {
            let acc = dot_s8(xr, &w[c * k..(c + 1) * k]);
            *o = e.apply(acc.wrapping_add(folded_bias[c]), c);
        }
    }
    true
}
