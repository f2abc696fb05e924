//! What every DSP kernel shares and nothing operator-specific: the
//! `SXTB16`/`SMLAD` halfword helpers, the requantization epilogues
//! (TFLite's double rounding from the blocked table, [`requant4`], and its
//! single rounding, [`requant4_single`], with the `asm!` macros the
//! depthwise kernel reuses in its own registers) and short byte copies.

use core::arch::asm;

#[inline(always)]
pub(super) fn word(c: &[i8]) -> u32 {
    match c {
        [a, b, cc, d, ..] => u32::from_le_bytes([*a as u8, *b as u8, *cc as u8, *d as u8]),
        _ => 0,
    }
}

/// Bytes 0 and 2 of `v`, sign-extended to halfwords.
#[inline(always)]
pub(super) fn sxtb16(v: u32) -> u32 {
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
pub(super) fn sxtb16_ror8(v: u32) -> u32 {
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
pub(super) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only; SMLAD may set the sticky Q flag, which no Rust
    // code reads (so `preserves_flags` is not claimed: Q lives in APSR).
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack))
    };
    r
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
/// Inlined where it is hot ([`super::super::conv`]'s pixel-pair loop); the other
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
