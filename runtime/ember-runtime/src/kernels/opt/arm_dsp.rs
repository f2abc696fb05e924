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

/// Words one widened field of `k` values takes ([`widen_slot`] writes two).
pub const fn packed_words(k: usize) -> usize {
    k / 2 + 4
}

/// Depthwise sums of four channels over the taps of one output pixel
/// added to `acc`: tap `t` multiplies the four input bytes at
/// `pairs[2t] + addend` by the four weight bytes at `wbase + pairs[2t+1]`.
/// Each word is split with `SXTB16` (bytes 0 and 2) and `SXTB16 …, ROR #8`
/// (bytes 1 and 3); `SMLABB` and `SMLATT` multiply the bottom and top
/// halfwords of input and weight, one channel each, into its accumulator
/// (modulo 2³², the reference's wrapping sum). One `asm!` for all taps:
/// 13 instructions per tap and four channels, where LLVM's loop over the
/// bytes took about 26.
///
/// # Safety
/// `pairs` holds `2·taps` words; for every tap, the four bytes at
/// `pairs[2t] + addend` and at `wbase + pairs[2t+1]` are readable
/// (unaligned word loads are fine on these cores).
#[inline(always)]
pub unsafe fn depthwise_sums4(
    pairs: *const usize,
    taps: usize,
    addend: usize,
    wbase: *const i8,
    acc: &mut [i32; 4],
) {
    if taps == 0 {
        return;
    }
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    // SAFETY: the caller's contract covers the loads; only the declared
    // registers and the flags are written.
    unsafe {
        asm!(
            "2:",
            "ldrd {x}, {w}, [{pairs}], #8",
            "ldr {x}, [{x}, {addend}]",
            "ldr {w}, [{wbase}, {w}]",
            "sxtb16 {t1}, {x}",
            "sxtb16 {t2}, {w}",
            "smlabb {a0}, {t1}, {t2}, {a0}",
            "smlatt {a2}, {t1}, {t2}, {a2}",
            "sxtb16 {t1}, {x}, ror #8",
            "sxtb16 {t2}, {w}, ror #8",
            "smlabb {a1}, {t1}, {t2}, {a1}",
            "smlatt {a3}, {t1}, {t2}, {a3}",
            "subs {n}, {n}, #1",
            "bne 2b",
            pairs = inout(reg) pairs => _,
            n = inout(reg) taps => _,
            addend = in(reg) addend,
            wbase = in(reg) wbase,
            x = out(reg) _,
            w = out(reg) _,
            t1 = out(reg) _,
            t2 = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            options(nostack, readonly),
        );
    }
    *acc = [a0, a1, a2, a3];
}

/// One channel of TFLite's double-rounding requantization from a blocked
/// table `[mult ×4, left ×4, −right ×4]`, in the register names of the
/// `asm!` it is spliced into: sum `$i` read from `[$src + 4·$i]`, the table
/// at `$p`, the zero point in `$zp`; the int8 result is left in `$x`
/// (`$t`, `$lo`, `$hi` are scratch) and packed into byte `$i` of `$w`.
/// - `full $skip`: any left shift, and a right shift of zero skipped to
///   the label `$skip`.
/// - `plain`: no left shift, a right shift of at least one and a
///   multiplier in `[2^30, 2^31)` (a table [`OutBounds::for_table`] marks
///   `plain`); `$hi` holds `2·zp + 1`.
///
/// `full`: `x << left`, then `SMULL` and the 64-bit `(x·m + 2^30) >> 31`
/// truncated to 32 bits (the rounding doubling high multiply); for `right >
/// 0`, negative values lowered by one (`QADD` of the sign, saturating at
/// `i32::MIN`) and a half-up rounding shift computed as `t = x >> (right −
/// 1)`, `(t >> 1) + (t & 1)` without overflow (gemmlowp's
/// `RoundingDivideByPOT`); `QADD` of the zero point and `SSAT` to int8.
///
/// `plain` gets the same value in 11 instructions instead of 17:
/// - with `n = [x < 0]`, the high multiply and the lowering of negatives
///   are together `⌊(2x·m + 2^31 − n·2^32) / 2^32⌋`. A multiplier in `[2^30,
///   2^31)` doubled wraps to `m₂ = 2m − 2^32`, so `2x·m = x·m₂ + x·2^32`,
///   and the whole, `y`, is one `SMMLAR` (rounded most significant word
///   multiply-accumulate) of `x·m₂` onto `x − n`. Taking `n` from `x` rather
///   than from the product differs only when `x·m ∈ [−2^30, 0)`, where
///   both give 0 after the rounding shift (`right ≥ 1`);
/// - `t = y >> (right − 1)`, then `(t + 1) >> 1` plus the zero point is
///   `QADD` of `2·zp + 1` and an `SSAT` whose operand shifts right by one
///   (the saturating add only saturates where the result is clamped
///   anyway).
macro_rules! requant_lane {
    (full $skip:literal; $i:literal, $src:literal, $p:literal, $zp:literal,
     $x:literal, $t:literal, $lo:literal, $hi:literal, $w:literal) => {
        concat!(
            "ldr ", $x, ", [", $src, "+4*", $i, "]\n",
            "ldr ", $t, ", [", $p, ", #16+4*", $i, "]\n",
            "lsl ", $x, ", ", $x, ", ", $t, "\n",
            requant_lane!(@mul $i, $p, $x, $t, $lo, $hi),
            "ldr ", $t, ", [", $p, ", #32+4*", $i, "]\n",
            "cmp ", $t, ", #0\n",
            "beq ", $skip, "f\n",
            requant_lane!(@round $x, $t, $lo),
            $skip, ":\n",
            requant_lane!(@finish $x, $zp),
            requant_lane!(@pack $i, $x, $w),
        )
    };
    (plain; $i:literal, $src:literal, $p:literal, $zp:literal,
     $x:literal, $t:literal, $lo:literal, $hi:literal, $w:literal) => {
        concat!(
            "ldr ", $x, ", [", $src, "+4*", $i, "]\n",
            "ldr ", $t, ", [", $p, ", #4*", $i, "]\n",
            "lsl ", $t, ", ", $t, ", #1\n",
            "sub ", $lo, ", ", $x, ", ", $x, ", lsr #31\n",
            "smmlar ", $x, ", ", $x, ", ", $t, ", ", $lo, "\n",
            "ldr ", $t, ", [", $p, ", #32+4*", $i, "]\n",
            "mvn ", $t, ", ", $t, "\n",
            "asr ", $x, ", ", $x, ", ", $t, "\n",
            "qadd ", $x, ", ", $x, ", ", $hi, "\n",
            "ssat ", $x, ", #8, ", $x, ", asr #1\n",
            requant_lane!(@pack $i, $x, $w),
        )
    };
    (@mul $i:literal, $p:literal, $x:literal, $t:literal, $lo:literal, $hi:literal) => {
        concat!(
            "ldr ", $t, ", [", $p, ", #4*", $i, "]\n",
            "smull ", $lo, ", ", $hi, ", ", $x, ", ", $t, "\n",
            "adds ", $lo, ", ", $lo, ", #0x40000000\n",
            "adc ", $hi, ", ", $hi, ", #0\n",
            "lsrs ", $lo, ", ", $lo, ", #31\n",
            "orr ", $x, ", ", $lo, ", ", $hi, ", lsl #1\n",
        )
    };
    (@round $x:literal, $t:literal, $lo:literal) => {
        concat!(
            "mvn ", $t, ", ", $t, "\n",
            "asr ", $lo, ", ", $x, ", #31\n",
            "qadd ", $x, ", ", $x, ", ", $lo, "\n",
            "asr ", $x, ", ", $x, ", ", $t, "\n",
            "and ", $lo, ", ", $x, ", #1\n",
            "add ", $x, ", ", $lo, ", ", $x, ", asr #1\n",
        )
    };
    (@finish $x:literal, $zp:literal) => {
        concat!(
            "qadd ", $x, ", ", $x, ", ", $zp, "\n",
            "ssat ", $x, ", #8, ", $x, "\n",
        )
    };
    // Every byte of `$w` is written by one of the four lanes, so its old
    // contents never show.
    (@pack $i:literal, $x:literal, $w:literal) => {
        concat!("bfi ", $w, ", ", $x, ", #8*", $i, ", #8\n")
    };
}

/// Four channels of [`requant_lane!`] into the bytes of `$w`, then the
/// activation clamp of all four at once: the `plain` lanes when the word at
/// `[$plain]` ([`OutBounds::plain`], loaded into `$hi`) is non-zero, the `full` ones
/// otherwise; `SSUB8` sets each byte's greater-or-equal flag and `SEL`
/// picks per byte, a `max` with the bytes at `[$lo4]`, then a `min` with
/// those at `[$hi4]` (the bounds lie in int8, so clamping after the
/// saturation gives the reference's value). Used by [`requant4`] and
/// [`depthwise_blocks`] in their own registers.
macro_rules! requant_block {
    ($src:literal, $p:literal, $zp:literal, $x:literal, $t:literal, $lo:literal, $hi:literal,
     $w:literal, $plain:literal, $lo4:literal, $hi4:literal) => {
        concat!(
            "ldr ", $hi, ", [", $plain, "]\n",
            "cmp ", $hi, ", #0\n",
            "bne 20f\n",
            requant_lane!(full "10"; "0", $src, $p, $zp, $x, $t, $lo, $hi, $w),
            requant_lane!(full "11"; "1", $src, $p, $zp, $x, $t, $lo, $hi, $w),
            requant_lane!(full "12"; "2", $src, $p, $zp, $x, $t, $lo, $hi, $w),
            requant_lane!(full "13"; "3", $src, $p, $zp, $x, $t, $lo, $hi, $w),
            "b 21f\n",
            "20:\n",
            requant_lane!(plain; "0", $src, $p, $zp, $x, $t, $lo, $hi, $w),
            requant_lane!(plain; "1", $src, $p, $zp, $x, $t, $lo, $hi, $w),
            requant_lane!(plain; "2", $src, $p, $zp, $x, $t, $lo, $hi, $w),
            requant_lane!(plain; "3", $src, $p, $zp, $x, $t, $lo, $hi, $w),
            "21:\n",
            "ldr ", $t, ", [", $lo4, "]\n",
            "ssub8 ", $lo, ", ", $w, ", ", $t, "\n",
            "sel ", $w, ", ", $w, ", ", $t, "\n",
            "ldr ", $t, ", [", $hi4, "]\n",
            "ssub8 ", $lo, ", ", $t, ", ", $w, "\n",
            "sel ", $w, ", ", $w, ", ", $t, "\n",
        )
    };
}

/// What [`depthwise_blocks`]'s `asm!` keeps in memory between blocks of
/// four channels, in the order the code reads it (byte offsets in the
/// comments).
#[repr(C)]
#[allow(dead_code)] // read and written by the asm only
struct DwCtx {
    /// 0: the `[input offset, weight offset]` pairs of the taps.
    pairs: *const [usize; 2],
    /// 4: taps (at least one).
    taps: usize,
    /// 8: folded bias of the next block.
    fb: *const i32,
    /// 12: requantization table of the next block.
    table: *const i32,
    /// 16: next output byte.
    out: *mut i8,
    /// 20: output zero point.
    zp: i32,
    /// 24: lowest output value, in each byte.
    lo4: u32,
    /// 28: highest output value, in each byte.
    hi4: u32,
    /// 32: blocks left.
    blocks: usize,
    /// 36: the current block's sums.
    acc: [i32; 4],
    /// 52: [`OutBounds::plain`].
    plain: u32,
}

/// Every whole block of four channels of one depthwise output pixel, from
/// the folded bias to the stored int8 outputs, in one `asm!`: per block
/// the sums of [`depthwise_sums4`] over all taps (13 instructions per tap),
/// then [`requant4`]'s requantization from the blocked table, zero point,
/// clamp and word store. The loop state that does not fit in the twelve
/// registers lives in a context the block reaches through its own stack
/// slot; between blocks that costs about a dozen instructions, where the
/// separate calls spent about fifty. Returns the channels written
/// (`4·blocks`, or 0 if a slice is too short).
///
/// # Safety
/// For every tap `t` and channel `ch < 4·blocks`, the byte at
/// `pairs[t][0] + addend + ch` and the byte at `wbase + pairs[t][1] + ch`
/// are readable (unaligned word loads are fine on these cores).
#[allow(clippy::too_many_arguments)]
pub unsafe fn depthwise_blocks(
    pairs: &[[usize; 2]],
    addend: usize,
    wbase: *const i8,
    blocks: usize,
    fb: &[i32],
    table: &[i32],
    b: &OutBounds,
    out: &mut [i8],
) -> usize {
    let ch = blocks.saturating_mul(4);
    let fits = fb.len() >= ch
        && out.len() >= ch
        && blocks.checked_mul(12).is_some_and(|n| n <= table.len());
    if pairs.is_empty() || blocks == 0 || !fits {
        return 0;
    }
    let mut ctx = DwCtx {
        pairs: pairs.as_ptr(),
        taps: pairs.len(),
        fb: fb.as_ptr(),
        table: table.as_ptr(),
        out: out.as_mut_ptr(),
        zp: b.zp,
        lo4: b.lo4,
        hi4: b.hi4,
        blocks,
        acc: [0; 4],
        plain: b.plain,
    };
    // SAFETY: the input and weight reads are the caller's contract (the
    // offsets advance by four per block, `4·blocks` channels in all). The
    // bias, table and output accesses stay inside `fb[..4·blocks]`,
    // `table[..12·blocks]` and `out[..4·blocks]` (checked above; word
    // loads of `i32`s are aligned, the output word store may be unaligned,
    // which Armv7-M allows for normal memory). `ctx` lives across the block
    // and is reached only through the pointer the block keeps in its own 8
    // bytes of stack, released before it ends. Only the declared registers
    // and the flags (Q, GE, NZCV) are written.
    unsafe {
        asm!(
            "sub sp, sp, #8",
            "str {a0}, [sp]",
            "3:",
            "ldr {t1}, [sp]",
            "ldr {t2}, [{t1}, #8]",
            "ldrd {a0}, {a1}, [{t2}], #8",
            "ldrd {a2}, {a3}, [{t2}], #8",
            "str {t2}, [{t1}, #8]",
            "ldrd {pp}, {n}, [{t1}]",
            "2:",
            "ldrd {x}, {w}, [{pp}], #8",
            "ldr {x}, [{x}, {addend}]",
            "ldr {w}, [{wbase}, {w}]",
            "sxtb16 {t1}, {x}",
            "sxtb16 {t2}, {w}",
            "smlabb {a0}, {t1}, {t2}, {a0}",
            "smlatt {a2}, {t1}, {t2}, {a2}",
            "sxtb16 {t1}, {x}, ror #8",
            "sxtb16 {t2}, {w}, ror #8",
            "smlabb {a1}, {t1}, {t2}, {a1}",
            "smlatt {a3}, {t1}, {t2}, {a3}",
            "subs {n}, {n}, #1",
            "bne 2b",
            "ldr {t1}, [sp]",
            "strd {a0}, {a1}, [{t1}, #36]",
            "strd {a2}, {a3}, [{t1}, #44]",
            "ldr {a0}, [{t1}, #12]",
            "ldr {a1}, [{t1}, #20]",
            // In this phase `{t1}` holds the context (sums at byte 36),
            // `{a0}` the table, `{a1}` the zero point; `{pp}`, `{n}`, `{x}`,
            // `{w}` are scratch and the four bytes gather in `{a2}`.
            requant_block!(
                "{t1}, #36", "{a0}", "{a1}", "{pp}", "{n}", "{x}", "{w}", "{a2}",
                "{t1}, #52", "{t1}, #24", "{t1}, #28"
            ),
            "ldr {n}, [{t1}, #16]",
            "str {a2}, [{n}], #4",
            "str {n}, [{t1}, #16]",
            "add {a0}, {a0}, #48",
            "str {a0}, [{t1}, #12]",
            "add {addend}, {addend}, #4",
            "add {wbase}, {wbase}, #4",
            "ldr {n}, [{t1}, #32]",
            "subs {n}, {n}, #1",
            "str {n}, [{t1}, #32]",
            "bne 3b",
            "add sp, sp, #8",
            a0 = inout(reg) &mut ctx as *mut DwCtx => _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            pp = out(reg) _,
            n = out(reg) _,
            addend = inout(reg) addend => _,
            wbase = inout(reg) wbase => _,
            x = out(reg) _,
            w = out(reg) _,
            t1 = out(reg) _,
            t2 = out(reg) _,
        );
    }
    ch
}

/// Widens one input row (`src`, `k` values) into slot `slot` (0 or 1) of
/// a two-row buffer the way [`dot2x2_pair`] reads it: for each group of
/// four values `[a, b, c, d]` of row 0, the halfword pairs `(a, c)` and
/// `(b, d)` (the pairs `SXTB16` makes of a weight word), then row 1's; after the groups, row 0's last `k % 4` values one
/// per word, then row 1's. `dst` holds at least `2·`[`packed_words`]`(k)`
/// words.
#[inline]
pub fn widen_slot(src: &[i8], slot: usize, dst: &mut [u32]) {
    let k = src.len();
    let body = k & !3;
    let slot = slot.min(1);
    for (a, d) in src[..body].chunks_exact(4).zip(dst.chunks_exact_mut(4)) {
        let v = word(a);
        d[2 * slot] = sxtb16(v);
        d[2 * slot + 1] = sxtb16_ror8(v);
    }
    let at = body + slot * (k - body);
    for (d, &s) in dst.iter_mut().skip(at).zip(&src[body..]) {
        *d = s as i32 as u32;
    }
}

/// One group of four values of [`dot2x2_pair`] and [`dot2x2_rows`]: the
/// widened pairs of both input rows at `{p}` (the first one read twice),
/// the weight word of each filter row (`{wr} + {gap}`, then `{wr}`) split
/// by `SXTB16`, and eight `SMLAD`s into `{a00}`, `{a01}`, `{a10}`, `{a11}`.
macro_rules! dot2x2_group {
    () => {
        concat!(
            "ldrd {xa}, {xb}, [{p}], #8\n",
            "ldr {v}, [{wr}, {gap}]\n",
            "sxtb16 {t}, {v}\n",
            "smlad {a01}, {xa}, {t}, {a01}\n",
            "sxtb16 {t}, {v}, ror #8\n",
            "smlad {a01}, {xb}, {t}, {a01}\n",
            "ldrd {xa}, {xb}, [{p}], #8\n",
            "smlad {a11}, {xb}, {t}, {a11}\n",
            "sxtb16 {t}, {v}\n",
            "smlad {a11}, {xa}, {t}, {a11}\n",
            "ldr {v}, [{wr}], #4\n",
            "sxtb16 {t}, {v}\n",
            "smlad {a10}, {xa}, {t}, {a10}\n",
            "sxtb16 {t}, {v}, ror #8\n",
            "smlad {a10}, {xb}, {t}, {a10}\n",
            "ldrd {xa}, {xb}, [{p}, #-16]\n",
            "smlad {a00}, {xb}, {t}, {a00}\n",
            "sxtb16 {t}, {v}\n",
            "smlad {a00}, {xa}, {t}, {a00}\n",
        )
    };
}

/// Two input rows widened by [`widen_slot`] (`xs`) against two weight rows
/// `w0`, `w1`: `[x0·w0, x0·w1, x1·w0, x1·w1]` over `k` values. The groups
/// of four run in one `asm!` with every value in a register: per group
/// three `LDRD`s of input pairs (one re-read), two weight words, six
/// `SXTB16` and eight `SMLAD`s — 21 instructions for 16
/// multiply-accumulates, where LLVM's loop spilled to the stack and took
/// 30.
pub fn dot2x2_pair(xs: &[u32], k: usize, w0: &[i8], w1: &[i8]) -> [i32; 4] {
    let body = k & !3;
    let groups = body / 4;
    let (mut a00, mut a01, mut a10, mut a11) = (0i32, 0i32, 0i32, 0i32);
    let rows_ok = w0.len() >= k && w1.len() >= k;
    let xs_ok = xs.len() >= body + 2 * (k - body);
    if !rows_ok || !xs_ok {
        return [0; 4];
    }
    // Row 1 is reached from row 0's pointer by this offset (bytes).
    let gap = (w1.as_ptr() as usize).wrapping_sub(w0.as_ptr() as usize);
    if groups > 0 {
        // SAFETY: group `g < groups` reads the words `xs[4g..4g+4]` (inside
        // `xs`: `4·groups = body ≤ xs.len()`, 4-byte aligned as `u32`s
        // for `LDRD`) and the four bytes at `w0[4g..]` and at `w0 + gap +
        // 4g = w1[4g..]` (`4g + 4 ≤ body ≤ k ≤` both lengths; unaligned
        // word loads are fine on these cores). Only the declared
        // registers and the flags are written.
        unsafe {
            asm!(
                "2:",
                dot2x2_group!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                p = inout(reg) xs.as_ptr() => _,
                wr = inout(reg) w0.as_ptr() => _,
                gap = in(reg) gap,
                n = inout(reg) groups => _,
                xa = out(reg) _,
                xb = out(reg) _,
                v = out(reg) _,
                t = out(reg) _,
                a00 = inout(reg) a00,
                a01 = inout(reg) a01,
                a10 = inout(reg) a10,
                a11 = inout(reg) a11,
                options(nostack, readonly),
            );
        }
    }
    let (tail0, tail1) = xs[body..body + 2 * (k - body)].split_at(k - body);
    for (j, (&u, &v)) in (body..k).zip(tail0.iter().zip(tail1)) {
        let (u, v) = (u as i32, v as i32);
        let (p, q) = (w0[j] as i32, w1[j] as i32);
        a00 = a00.wrapping_add(u.wrapping_mul(p));
        a01 = a01.wrapping_add(u.wrapping_mul(q));
        a10 = a10.wrapping_add(v.wrapping_mul(p));
        a11 = a11.wrapping_add(v.wrapping_mul(q));
    }
    [a00, a01, a10, a11]
}

/// What [`dot2x2_rows`]'s `asm!` keeps in memory between row pairs (it
/// has no register left for it), in the order the code reads it.
#[repr(C)]
#[allow(dead_code)] // read and written by the asm only
struct RowsCtx {
    /// First word of the widened input pair.
    xs: *const u32,
    /// Groups of four values per row.
    groups: usize,
    /// Folded bias of the next row pair.
    fb: *const i32,
    /// Pixel 0's next sums.
    acc0: *mut i32,
    /// Pixel 1's next sums.
    acc1: *mut i32,
    /// Bytes from the end of a row's groups to the next pair's first row.
    advance: usize,
    /// Row pairs left.
    pairs: usize,
}

/// The `asm!` of [`dot2x2_rows`] and [`dot2x2_rows_wide`]: per row pair,
/// the bias into the four sums, the `$group` body (an odd group first,
/// then two per iteration), the sums stored, `$next` (reload the pair
/// count into `{n}`, stepping the weight pointer where the layout needs
/// it), the next pair. The context pointer rides in the block's own 8
/// bytes of stack; `$extra` are further operands.
macro_rules! rows_2x2_asm {
    ($ctx:expr, $w:expr, $group:ident, [$($next:literal),*], $($extra:tt)*) => {
        asm!(
            "sub sp, sp, #8",
            "str {n}, [sp]",
            "3:",
            "ldr {t}, [sp]",
            "ldr {v}, [{t}, #8]",
            "ldrd {a00}, {a01}, [{v}], #8",
            "str {v}, [{t}, #8]",
            "mov {a10}, {a00}",
            "mov {a11}, {a01}",
            "ldrd {p}, {n}, [{t}]",
            "tst {n}, #1",
            "beq 4f",
            $group!(),
            "4:",
            "lsrs {n}, {n}, #1",
            "beq 5f",
            "2:",
            $group!(),
            $group!(),
            "subs {n}, {n}, #1",
            "bne 2b",
            "5:",
            "ldr {t}, [sp]",
            "ldr {v}, [{t}, #12]",
            "strd {a00}, {a01}, [{v}], #8",
            "str {v}, [{t}, #12]",
            "ldr {v}, [{t}, #16]",
            "strd {a10}, {a11}, [{v}], #8",
            "str {v}, [{t}, #16]",
            $($next,)*
            "subs {n}, {n}, #1",
            "str {n}, [{t}, #24]",
            "bne 3b",
            "add sp, sp, #8",
            n = inout(reg) $ctx => _,
            wr = inout(reg) $w => _,
            p = out(reg) _,
            xa = out(reg) _,
            xb = out(reg) _,
            v = out(reg) _,
            t = out(reg) _,
            a00 = out(reg) _,
            a01 = out(reg) _,
            a10 = out(reg) _,
            a11 = out(reg) _,
            $($extra)*
        )
    };
}

/// [`dot2x2_pair`] for every pair of consecutive weight rows `w[2j·k..]`,
/// `w[(2j+1)·k..]` of `w` (`2·pairs` rows of `k` values), in one `asm!`:
/// the sums of rows `2j` and `2j + 1` start from `fb[2j..2j + 2]` and land
/// in `acc0[2j..2j + 2]` (input row 0 of `xs`) and `acc1[2j..2j + 2]` (row
/// 1). The group body of [`dot2x2_pair`], two groups per iteration (20
/// instructions per 16 multiply-accumulates); between row pairs about
/// twenty instructions instead of a call, the bias additions and the spills
/// around it. Values past the last whole group of four
/// (`k % 4`) are left to the caller. Returns the number of rows done
/// (`2·pairs`, or 0 if a slice is too short).
pub fn dot2x2_rows(
    xs: &[u32],
    k: usize,
    w: &[i8],
    pairs: usize,
    fb: &[i32],
    acc0: &mut [i32],
    acc1: &mut [i32],
) -> usize {
    let groups = k / 4;
    let rows = 2 * pairs;
    let fits = rows.checked_mul(k).is_some_and(|n| n <= w.len())
        && fb.len() >= rows
        && acc0.len() >= rows
        && acc1.len() >= rows
        && xs.len() >= 4 * groups;
    if pairs == 0 || groups == 0 || !fits {
        return 0;
    }
    let mut ctx = RowsCtx {
        xs: xs.as_ptr(),
        groups,
        fb: fb.as_ptr(),
        acc0: acc0.as_mut_ptr(),
        acc1: acc1.as_mut_ptr(),
        advance: 2 * k - 4 * groups,
        pairs,
    };
    // SAFETY: pair `j < pairs` reads the words `xs[0..4·groups]` (inside
    // `xs`, 4-byte aligned as `u32`s for `LDRD`), the bytes
    // `w[2jk..2jk + 4·groups]` and `w[(2j+1)k..(2j+1)k + 4·groups]` (the
    // row pointer advances by `4·groups` in the loop and by `advance` after
    // it, so it is at `2jk` when pair `j` starts; `2·pairs·k ≤ w.len()`;
    // unaligned word loads are fine on these cores), `fb[2j..2j + 2]` and
    // writes `acc0[2j..2j + 2]`, `acc1[2j..2j + 2]` (`2·pairs ≤` their
    // lengths, checked above; `LDRD`/`STRD` on `i32`s are word aligned).
    // `ctx` lives across the block and is written only through the pointer
    // the block saves in its own 8 bytes of stack, which it releases
    // before it ends. Only the declared registers and the flags are
    // written.
    unsafe {
        rows_2x2_asm!(
            &mut ctx as *mut RowsCtx,
            w.as_ptr(),
            dot2x2_group,
            ["ldrd {v}, {n}, [{t}, #20]", "add {wr}, {wr}, {v}"],
            gap = in(reg) k,
        );
    }
    rows
}

/// One group of four values of [`dot2x2_rows_wide`]: the weights come
/// widened (`[w0, w2]`, `[w1, w3]` halfword pairs of row 0, then row 1, at
/// `{wr}`), so the group is four `LDRD`s, one re-read of row 0 and eight
/// `SMLAD`s — 13 instructions for 16 multiply-accumulates.
macro_rules! dot2x2_group_wide {
    () => {
        concat!(
            "ldrd {xa}, {xb}, [{p}], #8\n",
            "ldrd {v}, {t}, [{wr}], #16\n",
            "smlad {a00}, {xa}, {v}, {a00}\n",
            "smlad {a00}, {xb}, {t}, {a00}\n",
            "ldrd {v}, {t}, [{wr}, #-8]\n",
            "smlad {a01}, {xa}, {v}, {a01}\n",
            "smlad {a01}, {xb}, {t}, {a01}\n",
            "ldrd {xa}, {xb}, [{p}], #8\n",
            "smlad {a11}, {xa}, {v}, {a11}\n",
            "smlad {a11}, {xb}, {t}, {a11}\n",
            "ldrd {v}, {t}, [{wr}, #-16]\n",
            "smlad {a10}, {xa}, {v}, {a10}\n",
            "smlad {a10}, {xb}, {t}, {a10}\n",
        )
    };
}

/// [`dot2x2_rows`] on the compiler's widened filter `pw`
/// ([`super::pack_weights_dsp`]'s layout, from the first row pair of the
/// call on): `2·pairs` rows whose `4·⌊k/4⌋` values come as int16 pairs
/// ready for `SMLAD`, so no weight is sign-extended per pixel pair (13
/// instructions per 16 multiply-accumulates instead of 20). Values past
/// the last whole group are left to the caller, as there. Returns the
/// number of rows done (`2·pairs`, or 0 if a slice is too short).
pub fn dot2x2_rows_wide(
    xs: &[u32],
    k: usize,
    pw: &[i16],
    pairs: usize,
    fb: &[i32],
    acc0: &mut [i32],
    acc1: &mut [i32],
) -> usize {
    let groups = k / 4;
    let rows = 2 * pairs;
    let fits = rows.checked_mul(4 * groups).is_some_and(|n| n <= pw.len())
        && fb.len() >= rows
        && acc0.len() >= rows
        && acc1.len() >= rows
        && xs.len() >= 4 * groups;
    if pairs == 0 || groups == 0 || !fits {
        return 0;
    }
    let mut ctx = RowsCtx {
        xs: xs.as_ptr(),
        groups,
        fb: fb.as_ptr(),
        acc0: acc0.as_mut_ptr(),
        acc1: acc1.as_mut_ptr(),
        advance: 0,
        pairs,
    };
    // `LDRD` needs word alignment (the compiler's filter is a 4-byte
    // aligned tensor and callers start at a multiple of four halfwords).
    if pw.as_ptr() as usize % 4 != 0 {
        return 0;
    }
    // SAFETY: pair `j < pairs` reads the words `xs[0..4·groups]` (inside
    // `xs`, 4-byte aligned as `u32`s) and the `8·groups` halfwords
    // `pw[8j·groups..]` (the pointer advances 16 bytes per group, so it is
    // there when pair `j` starts; `2·pairs·4·groups ≤ pw.len()`; word
    // aligned, checked above), `fb[2j..2j + 2]` and writes
    // `acc0[2j..2j + 2]`, `acc1[2j..2j + 2]` (`2·pairs ≤` their lengths,
    // checked above; `LDRD`/`STRD` on `i32`s are word aligned). `ctx`
    // lives across the block and is written only through the pointer the
    // block saves in its own 8 bytes of stack, which it releases before it
    // ends. Only the declared registers and the flags are written.
    unsafe {
        rows_2x2_asm!(
            &mut ctx as *mut RowsCtx,
            pw.as_ptr(),
            dot2x2_group_wide,
            ["ldr {n}, [{t}, #24]"],
        );
    }
    rows
}

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
/// compiler (`pw`: [`super::pack_weights_dsp`]'s layout from a row pair
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
    if quads == 0 || groups == 0 || !fits || pw.as_ptr() as usize % 4 != 0 {
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

/// Output zero point and activation bounds of [`requant4`], as words.
#[repr(C)]
pub struct OutBounds {
    /// Output zero point.
    pub zp: i32,
    /// Lowest output value, in each of the four bytes.
    pub lo4: u32,
    /// Highest output value, in each of the four bytes.
    pub hi4: u32,
    /// Non-zero when every channel of the table has no left shift, a right
    /// shift of at least one and a multiplier in `[2^30, 2^31)` (TFLite's
    /// normalized range): the epilogue then takes the short path of
    /// [`requant_lane!`], which adds this word, `2·zp + 1`.
    pub plain: u32,
}

impl OutBounds {
    /// The bounds for zero point `zp` and the int8 clamp `[lo, hi]`.
    #[inline(always)]
    pub fn new(zp: i32, lo: i32, hi: i32) -> OutBounds {
        OutBounds {
            zp,
            lo4: u32::from(lo as u8) * 0x0101_0101,
            hi4: u32::from(hi as u8) * 0x0101_0101,
            plain: 0,
        }
    }

    /// [`Self::new`] for a whole layer's blocked table `[mult ×4, left ×4,
    /// −right ×4]…`, read once: `plain` when no channel shifts left, every
    /// channel shifts right and every multiplier is normalized (the common
    /// case: scales below ½, multipliers from TFLite's quantizer).
    pub fn for_table(zp: i32, lo: i32, hi: i32, table: &[i32]) -> OutBounds {
        let plain = table.chunks_exact(12).all(|b| {
            b[..4].iter().all(|&m| m >= 1 << 30)
                && b[4..8].iter().all(|&l| l == 0)
                && b[8..12].iter().all(|&r| r < 0)
        });
        // `2·zp + 1` is odd, so a plain table's word is never zero.
        let zp2 = (2 * zp.clamp(-128, 127) + 1) as u32;
        OutBounds {
            plain: if plain { zp2 } else { 0 },
            ..OutBounds::new(zp, lo, hi)
        }
    }
}

/// TFLite's double-rounding requantization of four accumulators (channels
/// `4b..4b+4` of the blocked table `p = [mult ×4, left ×4, −right ×4]`),
/// zero point, clamp and one word store, in one unrolled `asm!` block
/// (about 22 instructions per channel where LLVM's code took 32):
/// - `x << left`, then `SMULL` and the 64-bit `(x·m + 2^30) >> 31`
///   truncated to 32 bits: the rounding doubling high multiply exactly as
///   the scalar epilogue computes it;
/// - for `right > 0`, negative values lowered by one (`QADD` of the sign,
///   saturating at `i32::MIN`) and a half-up rounding shift by `right`
///   computed as `t = x >> (right − 1)`, `(t >> 1) + (t & 1)` without
///   overflow: gemmlowp's half-away-from-zero `RoundingDivideByPOT`;
/// - `QADD` of the zero point and `SSAT` to int8, which is the reference's
///   clamp to `[−128, 127]`; the four bytes packed into one word;
/// - the activation clamp of all four at once: `SSUB8` sets each byte's
///   greater-or-equal flag and `SEL` picks per byte (a `max` with `lo`,
///   then a `min` with `hi`; the bounds lie in int8, so clamping after the
///   saturation gives the reference's value).
///
/// Inlined where it is hot ([`super::conv`]'s pixel-pair loop); the other
/// callers share one copy through [`requant4_shared`].
#[inline(always)]
pub fn requant4(acc: &[i32; 4], p: &[i32; 12], b: &OutBounds, out: &mut [i8; 4]) {
    // SAFETY: reads the 4 accumulators, the 12 table words and the three
    // bound words through their references and writes the 4 output bytes
    // with one (possibly unaligned) word store, which Armv7-M allows for
    // normal memory; only the declared registers and the flags (Q, GE, NZCV)
    // are written.
    unsafe {
        asm!(
            "ldr {zp}, [{b}]",
            requant_block!(
                "{acc}, #0", "{p}", "{zp}", "{x}", "{t}", "{lo}", "{hi}", "{w}",
                "{b}, #12", "{b}, #4", "{b}, #8"
            ),
            "str {w}, [{o}]",
            acc = in(reg) acc.as_ptr(),
            p = in(reg) p.as_ptr(),
            b = in(reg) b as *const OutBounds,
            o = in(reg) out.as_mut_ptr(),
            zp = out(reg) _,
            w = out(reg) _,
            x = out(reg) _,
            t = out(reg) _,
            lo = out(reg) _,
            hi = out(reg) _,
            options(nostack),
        );
    }
}

/// [`requant4`] behind a call: one copy of the code for the cold paths
/// (leftover pixels and channels), where inlining it would only cost flash.
#[inline(never)]
pub fn requant4_shared(acc: &[i32; 4], p: &[i32; 12], b: &OutBounds, out: &mut [i8; 4]) {
    requant4(acc, p, b, out)
}

/// The parameters of [`requant4_single`], as words.
#[repr(C)]
pub struct SingleParams {
    /// Multiplier.
    m: i32,
    /// `2^(t − 33)`, the rounding term of the high word (`t = 31 − shift`).
    round: i32,
    /// `t − 32`, the shift of the high word.
    shift: i32,
    /// Output zero point.
    zp: i32,
    /// Lowest output value, in each of the four bytes.
    lo4: u32,
    /// Highest output value, in each of the four bytes.
    hi4: u32,
}

impl SingleParams {
    /// The parameters for TFLite's single-rounding multiplier `(m,
    /// shift)`, zero point `zp` and int8 clamp `[lo, hi]`; `None` unless
    /// `shift ≤ −2`, where the rounded product is the high word's shift
    /// (every fully connected layer of the MLPerf Tiny models).
    #[inline(always)]
    pub fn new(m: i32, shift: i32, zp: i32, lo: i32, hi: i32) -> Option<SingleParams> {
        // The reference clamps `shift` to [−31, 30]: `t = 31 − shift`.
        let t = 31 - shift.clamp(-31, 30);
        (t >= 33).then(|| {
            let b = OutBounds::new(zp, lo, hi);
            SingleParams {
                m,
                round: 1 << (t - 33),
                shift: t - 32,
                zp,
                lo4: b.lo4,
                hi4: b.hi4,
            }
        })
    }
}

/// One channel of [`requant4_single`].
macro_rules! single_lane {
    ($i:literal, $pack:literal) => {
        concat!(
            "ldr {x}, [{acc}, #4*",
            $i,
            "]\n",
            "smull {lo}, {hi}, {x}, {m}\n",
            "add {hi}, {hi}, {round}\n",
            "asr {hi}, {hi}, {sh}\n",
            "qadd {hi}, {hi}, {zp}\n",
            "ssat {hi}, #8, {hi}\n",
            $pack,
            "\n",
        )
    };
}

/// TFLite's single-rounding requantization of four accumulators with one
/// multiplier (fully connected), zero point, clamp and one word store, in
/// one `asm!` (seven instructions per channel plus eight for the four).
/// With `t = 31 − shift ≥ 33` the reference's `(x·m + 2^(t−1)) >> t` is
/// `(hi + 2^(t−33)) >> (t − 32)` for the high word `hi` of `x·m`: the
/// rounding term is a multiple of 2³², and the low word only adds a
/// fraction below one unit of `hi`, which the floor of the shift drops. The
/// sum cannot overflow (`|hi| ≤ 2^30`, the term ≤ 2^29). Zero point and
/// clamps as in [`requant4`].
pub fn requant4_single(acc: &[i32; 4], prm: &SingleParams, out: &mut [i8; 4]) {
    // SAFETY: reads the 4 accumulators and the six parameter words through
    // their references and writes the 4 output bytes with one (possibly
    // unaligned) word store, which Armv7-M allows for normal memory; only
    // the declared registers and the flags (Q, GE, NZCV) are written.
    unsafe {
        asm!(
            "ldrd {m}, {round}, [{prm}]",
            "ldrd {sh}, {zp}, [{prm}, #8]",
            single_lane!("0", "uxtb {w}, {hi}"),
            single_lane!("1", "bfi {w}, {hi}, #8, #8"),
            single_lane!("2", "bfi {w}, {hi}, #16, #8"),
            single_lane!("3", "bfi {w}, {hi}, #24, #8"),
            "ldrd {x}, {hi}, [{prm}, #16]",
            "ssub8 {lo}, {w}, {x}",
            "sel {w}, {w}, {x}",
            "ssub8 {lo}, {hi}, {w}",
            "sel {w}, {w}, {hi}",
            "str {w}, [{o}]",
            acc = in(reg) acc.as_ptr(),
            prm = in(reg) prm as *const SingleParams,
            o = in(reg) out.as_mut_ptr(),
            m = out(reg) _,
            round = out(reg) _,
            sh = out(reg) _,
            zp = out(reg) _,
            w = out(reg) _,
            x = out(reg) _,
            lo = out(reg) _,
            hi = out(reg) _,
            options(nostack, readonly),
        );
    }
}

/// Copies `src` into `dst[..src.len()]` (the shorter of the two lengths),
/// a word at a time and then bytes: a few instructions for the short
/// runs of a padded receptive field, where a `memcpy` call costs tens.
#[inline(always)]
pub fn copy_bytes(dst: &mut [i8], src: &[i8]) {
    let n = dst.len().min(src.len());
    if n == 0 {
        return;
    }
    // SAFETY: reads `src[..n]` and writes `dst[..n]` (`n` is at most both
    // lengths: whole words while four or more bytes are left, then single
    // bytes); unaligned word accesses are fine on these cores (normal
    // memory). Only the declared registers and the flags are written.
    unsafe {
        asm!(
            "subs {n}, {n}, #4",
            "blt 2f",
            "1:",
            "ldr {t}, [{s}], #4",
            "str {t}, [{d}], #4",
            "subs {n}, {n}, #4",
            "bge 1b",
            "2:",
            "adds {n}, {n}, #4",
            "beq 4f",
            "3:",
            "ldrb {t}, [{s}], #1",
            "strb {t}, [{d}], #1",
            "subs {n}, {n}, #1",
            "bne 3b",
            "4:",
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            n = inout(reg) n => _,
            t = out(reg) _,
            options(nostack),
        );
    }
}

/// Fills `dst` with `v`, a word at a time and then bytes (see
/// [`copy_bytes`]).
#[inline(always)]
pub fn fill_bytes(dst: &mut [i8], v: i8) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    let word = (v as u8 as u32).wrapping_mul(0x0101_0101);
    // SAFETY: writes `dst[..n]` (whole words while four or more bytes are
    // left, then single bytes); unaligned word stores are fine on these
    // cores. Only the declared registers and the flags are written.
    unsafe {
        asm!(
            "subs {n}, {n}, #4",
            "blt 2f",
            "1:",
            "str {w}, [{d}], #4",
            "subs {n}, {n}, #4",
            "bge 1b",
            "2:",
            "adds {n}, {n}, #4",
            "beq 4f",
            "3:",
            "strb {w}, [{d}], #1",
            "subs {n}, {n}, #1",
            "bne 3b",
            "4:",
            w = in(reg) word,
            d = inout(reg) dst.as_mut_ptr() => _,
            n = inout(reg) n => _,
            options(nostack),
        );
    }
}
