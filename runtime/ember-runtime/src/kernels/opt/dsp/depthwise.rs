//! Depthwise convolution: four channels per `SXTB16` + `SMLABB`/`SMLATT`
//! block over all taps, with the blocked requantization in the same
//! `asm!`; and the DSP parts of the depthwise loop ([`Depthwise`]).

use super::shared::OutBounds;
use crate::kernels::opt::epilogue::Epilogue;
use crate::kernels::opt::taps::{interior_rest, MAX_TAPS};
use core::arch::asm;

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

/// The whole blocks of four channels of one output pixel, tap `t`'s
/// input at `pairs[t][0] + addend` and weights at `w[pairs[t][1]..]`: with
/// the blocked table (`bounds` made from it for the layer) all in one
/// [`depthwise_blocks`], otherwise through
/// [`depthwise_sums4`] and the epilogue four at a time.
/// Returns how many channels it wrote.
///
/// # Safety
/// For every tap, `c` bytes at `pairs[t][0] + addend` are readable and
/// `pairs[t][1] + c ≤ w.len()`; `folded_bias` and `out` hold `c` values.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dsp_blocks<E: Epilogue>(
    pairs: &[[usize; 2]],
    bounds: Option<&OutBounds>,
    addend: usize,
    w: &[i8],
    c: usize,
    folded_bias: &[i32],
    e: E,
    out: &mut [i8],
) -> usize {
    // Fixed-point blocked requantization: every block in one `asm!`.
    if let (Some((table, _)), Some(bounds)) = (e.blocks(), bounds) {
        // SAFETY: the caller's contract: channels `0..c` (`4·(c/4) ≤ c`) of
        // every tap's input and weights are readable.
        let done = unsafe {
            depthwise_blocks(
                pairs,
                addend,
                w.as_ptr(),
                c / 4,
                folded_bias,
                table,
                bounds,
                out,
            )
        };
        if done > 0 {
            return done;
        }
    }
    let mut c0 = 0;
    while c0 + 4 <= c {
        let mut acc = [0i32; 4];
        acc.copy_from_slice(&folded_bias[c0..c0 + 4]);
        // SAFETY: four bytes at channel `c0 + 4 ≤ c` of every tap's input
        // and weights, covered by the caller's contract.
        unsafe {
            depthwise_sums4(
                pairs.as_ptr().cast(),
                pairs.len(),
                addend + c0,
                w.as_ptr().add(c0),
                &mut acc,
            )
        };
        if let Ok(o4) = <&mut [i8; 4]>::try_from(&mut out[c0..c0 + 4]) {
            e.apply4(acc, c0, o4);
        }
        c0 += 4;
    }
    c0
}

/// The DSP parts of the depthwise loop (see
/// [`crate::kernels::opt::depthwise_conv`]): four channels per
/// `SMLABB`/`SMLATT` block, over a run of interior pixels or one pixel's
/// rows.
pub(crate) struct Depthwise {
    /// `[input offset, weight offset]` of every tap.
    pairs: [[usize; 2]; MAX_TAPS],
    /// The blocked table's epilogue bounds, read once for the layer.
    bounds: Option<OutBounds>,
}

impl Depthwise {
    /// For a layer of `c` channels whose taps are `offs` from the first
    /// one (at most [`MAX_TAPS`]).
    #[inline(always)]
    pub(crate) fn new<E: Epilogue>(offs: &[usize], c: usize, e: &E) -> Self {
        let mut pairs = [[0usize; 2]; MAX_TAPS];
        for (t, (p, &o)) in pairs.iter_mut().zip(offs).enumerate() {
            *p = [o, t * c];
        }
        let bounds = e
            .blocks()
            .map(|(t, q)| OutBounds::for_table(q.out_zp, q.act_min, q.act_max, t));
        Depthwise { pairs, bounds }
    }

    /// The run of `count` interior pixels `(count, base, ybase)` (input
    /// offset of the first one's tap 0, output offset), `step` input bytes
    /// apart, taps `offs` from the first one: every channel. Returns the
    /// pixels written (0: none, the caller takes them one at a time).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn interior<E: Epilogue>(
        &mut self,
        x: &[i8],
        (count, base, ybase): (usize, usize, usize),
        step: usize,
        offs: &[usize],
        w: &[i8],
        c: usize,
        folded_bias: &[i32],
        e: E,
        y: &mut [i8],
    ) -> usize {
        let taps_n = offs.len();
        if taps_n == 0 {
            return 0;
        }
        let out = &mut y[ybase..ybase + count * c];
        let reach = count
            .saturating_sub(1)
            .checked_mul(step)
            .and_then(|v| v.checked_add(base))
            .and_then(|v| v.checked_add(offs[taps_n - 1]))
            .and_then(|v| v.checked_add(c));
        let fits = reach.is_some_and(|r| r <= x.len());
        if count > 0 && fits && w.len() >= taps_n.saturating_mul(c) {
            for (i, o) in out.chunks_exact_mut(c).enumerate() {
                let px = base + i * step;
                // SAFETY: tap `t` reads channels `0..c` at
                // `x[px + offs[t]..]` (the last tap's offset is
                // the largest and `px + offs[t] + c ≤ reach ≤
                // x.len()`, computed without overflow) and at
                // `w[t·c..]` (`taps·c ≤ w.len()`).
                let c0 = unsafe {
                    dsp_blocks(
                        &self.pairs[..taps_n],
                        self.bounds.as_ref(),
                        x.as_ptr() as usize + px,
                        w,
                        c,
                        folded_bias,
                        e,
                        o,
                    )
                };
                interior_rest(x, px, offs, w, c, c0, folded_bias, e, o);
            }
            return count;
        }
        0
    }

    /// One output pixel's whole blocks of four channels from its taps'
    /// input rows (every row holds `c` bytes). Returns the channels
    /// written.
    #[inline(always)]
    pub(crate) fn pixel<E: Epilogue>(
        &mut self,
        rows: &[&[i8]],
        w: &[i8],
        c: usize,
        folded_bias: &[i32],
        e: E,
        out: &mut [i8],
    ) -> usize {
        let taps_n = rows.len();
        if w.len() >= taps_n.saturating_mul(c) && rows.iter().all(|r| r.len() >= c) {
            let mut pairs = [[0usize; 2]; MAX_TAPS];
            for (t, (p, r)) in pairs.iter_mut().zip(rows).enumerate() {
                *p = [r.as_ptr() as usize, t * c];
            }
            // SAFETY: tap `t` reads channels `0..c` of
            // `rows[t]` and `w[t·c..]`, inside both (`c ≤
            // rows[t].len()`, `taps·c ≤ w.len()`, checked
            // above).
            return unsafe {
                dsp_blocks(
                    &pairs[..taps_n],
                    self.bounds.as_ref(),
                    0,
                    w,
                    c,
                    folded_bias,
                    e,
                    out,
                )
            };
        }
        0
    }
}
