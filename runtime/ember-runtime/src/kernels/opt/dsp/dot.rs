//! Dot products of one input vector against one or four weight rows
//! (`SMLAD` on `SXTB16`-widened words): what [`crate::kernels::opt::dot`]
//! picks on DSP cores.

use super::shared::{smlad, sxtb16, sxtb16_ror8, word};
use core::arch::asm;

/// See [`super::super::dot::dot_s8`].
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

/// See [`super::super::dot::dot4_s8`]: each input word is widened once and used
/// for four rows (23 instructions per 16 multiply-accumulates). The five
/// streams are walked with `chunks_exact` so no bounds check is left in the
/// loop.
#[inline]
pub fn dot4_s8(x: &[i8], w0: &[i8], w1: &[i8], w2: &[i8], w3: &[i8]) -> [i32; 4] {
    let n = super::super::dot::common_len(x, [w0, w1, w2, w3]);
    let body = n & !3;
    let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
    let base = w0.as_ptr() as usize;
    let stride = (w1.as_ptr() as usize).wrapping_sub(base);
    // Filter rows one stride apart (rows of one weight matrix): all four
    // reached from row 0's pointer, the loop in `asm!` with every value in
    // a register (26 instructions per 16 products; LLVM's took 31).
    let strided = stride == (w2.as_ptr() as usize).wrapping_sub(w1.as_ptr() as usize)
        && stride == (w3.as_ptr() as usize).wrapping_sub(w2.as_ptr() as usize);
    let done = if strided && body > 0 {
        // SAFETY: group `g < body/4` reads four bytes at `x[4g..]` and at
        // `w_j[4g..]` for each row `j` (addressed as `w0 + j·stride + 4g`,
        // which is `w_j`'s own address: the strides were checked equal),
        // all inside their slices (`4g + 4 ≤ body ≤ n ≤` every length);
        // unaligned word loads are fine on these cores. Only the declared
        // registers and the flags are written.
        unsafe {
            asm!(
                "2:",
                "ldr {v}, [{x}], #4",
                "sxtb16 {xa}, {v}",
                "sxtb16 {xb}, {v}, ror #8",
                "ldr {v}, [{w}, {k}]",
                "sxtb16 {t}, {v}",
                "smlad {a1}, {xa}, {t}, {a1}",
                "sxtb16 {t}, {v}, ror #8",
                "smlad {a1}, {xb}, {t}, {a1}",
                "add {t}, {w}, {k}, lsl #1",
                "ldr {v}, [{t}, {k}]",
                "sxtb16 {t}, {v}",
                "smlad {a3}, {xa}, {t}, {a3}",
                "sxtb16 {t}, {v}, ror #8",
                "smlad {a3}, {xb}, {t}, {a3}",
                "ldr {v}, [{w}, {k}, lsl #1]",
                "sxtb16 {t}, {v}",
                "smlad {a2}, {xa}, {t}, {a2}",
                "sxtb16 {t}, {v}, ror #8",
                "smlad {a2}, {xb}, {t}, {a2}",
                "ldr {v}, [{w}], #4",
                "sxtb16 {t}, {v}",
                "smlad {a0}, {xa}, {t}, {a0}",
                "sxtb16 {t}, {v}, ror #8",
                "smlad {a0}, {xb}, {t}, {a0}",
                "subs {n}, {n}, #1",
                "bne 2b",
                x = inout(reg) x.as_ptr() => _,
                w = inout(reg) w0.as_ptr() => _,
                k = in(reg) stride,
                n = inout(reg) body / 4 => _,
                xa = out(reg) _,
                xb = out(reg) _,
                v = out(reg) _,
                t = out(reg) _,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                options(nostack, readonly),
            );
        }
        body
    } else {
        0
    };
    let words = x[done..body]
        .chunks_exact(4)
        .zip(w0[done..body].chunks_exact(4))
        .zip(w1[done..body].chunks_exact(4))
        .zip(w2[done..body].chunks_exact(4))
        .zip(w3[done..body].chunks_exact(4));
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
