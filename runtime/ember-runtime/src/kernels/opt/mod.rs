//! Optimized kernels: int8 ones with the same results as the reference
//! kernels, bit for bit, with the work rearranged for speed (and f32 ones
//! for the Cortex-A targets, [`conv_f32`], within a stated bound).
//!
//! What the compiler decided ahead of time arrives as data: the bias with
//! the input zero-point correction folded in (`bias − in_zp·Σw` per output
//! channel, so the inner loops are pure `Σ x·w` products), the kernel
//! variant recorded in the op, and a scratch buffer planned in the arena
//! (the `*_scratch_size` companions say how big).
//!
//! Every loop that matters ends in one of the primitives of [`dot`], the
//! single dispatch point per instruction set:
//! - portable Rust written so that LLVM vectorizes it — to Helium/MVE
//!   `VMLAVA.S8` tail-predicated loops with `-C target-cpu=cortex-m55`;
//! - NEON on aarch64 (`arm_neon`): fused convolution kernels (four pixels
//!   per pass over the filters, requantization in vector registers),
//!   `SDOT` where the core has it (detected at run time on Linux), and a
//!   lane-per-channel kernel on the compiler's int16 copy of the filter;
//! - the `dsp` cargo feature on 32-bit Arm (Cortex-M4/M7/M33): `SMLAD`
//!   dual 16-bit multiply-accumulates through `asm!`, each input word
//!   widened once (`SXTB16`) and reused for several filter rows; with a
//!   large enough scratch, convolutions run two output pixels per pass
//!   over halfword-packed receptive fields (2×2 `SMLAD` blocks, the loop in
//!   `asm!` with every value in a register); depthwise convolutions sum
//!   four channels per `SXTB16` + `SMLABB`/`SMLATT` block over all taps;
//! - the `mve` cargo feature (Cortex-M55/M85): Helium `asm!` blocks
//!   (`arm_mve`) that run a whole unit of work from the folded bias to the
//!   stored int8 outputs with nothing spilled: four filter rows against one
//!   input row through tail-predicated `VMLADAVA.S8` loops (convolutions,
//!   fully connected with TFLite's single rounding), rows of at most 16
//!   bytes with all channel blocks in one predicated loop, depthwise blocks
//!   of 16/8/4 channels over runs of interior pixels, receptive fields
//!   gathered by vector copies, the requantization epilogue and the int8
//!   Add body.
//!
//! Why folding the zero point is exact: the reference computes
//! `Σ (x − zp)·w + bias` with wrapping i32 arithmetic; wrapping arithmetic
//! is a ring, so `Σ x·w + (bias − zp·Σw)` is the same 32-bit value. Taps
//! that fall in the implicit padding are fed the zero point itself, which
//! contributes `zp·w`, cancelled by the folded term exactly as `(zp − zp)·w`
//! would be.

use super::{check_len, sat_i8, QuantIo, Requant, Shape4, Window};
use crate::error::{Error, Result};
use dot::{dot4_s8, dot_s8};

/// The shape checks every one-group convolution kernel makes: channels and
/// batch agree, the window gives the output size, and `lens` (input,
/// filter, output) match the shapes.
pub(crate) fn check_conv_geometry(
    xs: Shape4,
    ws: Shape4,
    win: &Window,
    ys: Shape4,
    lens: [usize; 3],
) -> Result<()> {
    if ws.c != xs.c || ys.c != ws.n || ys.n != xs.n {
        return Err(Error::ShapeMismatch("conv: channels or batch"));
    }
    if win.out_hw(xs.h, xs.w, ws.h, ws.w) != Some((ys.h, ys.w)) {
        return Err(Error::ShapeMismatch("conv: output size"));
    }
    check_len(lens[0], xs.numel(), "conv: input length")?;
    check_len(lens[1], ws.numel(), "conv: filter length")?;
    check_len(lens[2], ys.numel(), "conv: output length")
}

/// [`check_conv_geometry`] for depthwise kernels (multiplier 1, filter
/// `[1, Kh, Kw, C]`).
pub(crate) fn check_depthwise_geometry(
    xs: Shape4,
    ws: Shape4,
    win: &Window,
    ys: Shape4,
    lens: [usize; 3],
) -> Result<()> {
    if ws.n != 1 || ws.c != xs.c || ys.c != xs.c || ys.n != xs.n {
        return Err(Error::ShapeMismatch("depthwise conv: channels"));
    }
    if win.out_hw(xs.h, xs.w, ws.h, ws.w) != Some((ys.h, ys.w)) {
        return Err(Error::ShapeMismatch("depthwise conv: output size"));
    }
    check_len(lens[0], xs.numel(), "depthwise conv: input length")?;
    check_len(lens[1], ws.numel(), "depthwise conv: filter length")?;
    check_len(lens[2], ys.numel(), "depthwise conv: output length")
}

/// Folds the input zero point into a bias: `out[c] = bias[c] − in_zp·Σ w_c`
/// (wrapping, as the reference accumulator), where `w_c` is row `c` of a
/// row-major `[C, K]` filter, or channel `c` of a channel-last filter
/// (`[1, Kh, Kw, C]`, depthwise) when `channel_last`. `C = out.len()`.
/// The compiler calls this; tests use it to build the kernels' inputs.
pub fn fold_bias(bias: Option<&[i32]>, w: &[i8], in_zp: i32, channel_last: bool, out: &mut [i32]) {
    let channels = out.len();
    let row_len = w.len().checked_div(channels).unwrap_or(0);
    for (c, o) in out.iter_mut().enumerate() {
        let sum = if channel_last {
            w.iter()
                .skip(c)
                .step_by(channels)
                .fold(0i32, |a, &v| a.wrapping_add(v as i32))
        } else {
            w[c * row_len..(c + 1) * row_len]
                .iter()
                .fold(0i32, |a, &v| a.wrapping_add(v as i32))
        };
        let b = bias.and_then(|b| b.get(c)).copied().unwrap_or(0);
        *o = b.wrapping_sub(in_zp.wrapping_mul(sum));
    }
}

/// Elements of the filter [`pack_weights_s16`] packs from a `[Co, K]`
/// filter: the whole blocks of eight output channels.
pub fn packed_weights_len(co: usize, k: usize) -> usize {
    (co / 8).saturating_mul(8).saturating_mul(k)
}

/// Packs a row-major `[Co, K]` int8 filter for the NEON matrix kernel:
/// each whole block of eight output channels becomes `[K][8]` int16
/// (channel fastest), so one vector load gives the eight channels'
/// weights for one input element. Channels past the last whole block are
/// left out (the kernel computes them from the filter itself). `out`
/// holds [`packed_weights_len`] elements. The compiler calls this; tests
/// use it to build the kernel's inputs.
pub fn pack_weights_s16(w: &[i8], co: usize, k: usize, out: &mut [i16]) {
    for (b, blk) in out.chunks_exact_mut(8 * k.max(1)).take(co / 8).enumerate() {
        for (kk, lanes) in blk.chunks_exact_mut(8).enumerate() {
            for (j, o) in lanes.iter_mut().enumerate() {
                *o = w.get((8 * b + j) * k + kk).map_or(0, |&v| v as i16);
            }
        }
    }
}

/// Whether `packed` is exactly [`pack_weights_s16`] of `w`.
pub fn packed_weights_match(w: &[i8], co: usize, k: usize, packed: &[i16]) -> bool {
    if packed.len() != packed_weights_len(co, k) || w.len() < co.saturating_mul(k) {
        return false;
    }
    packed
        .chunks_exact(8 * k.max(1))
        .enumerate()
        .all(|(b, blk)| {
            blk.chunks_exact(8).enumerate().all(|(kk, lanes)| {
                lanes
                    .iter()
                    .enumerate()
                    .all(|(j, &v)| w.get((8 * b + j) * k + kk).map(|&x| x as i16) == Some(v))
            })
        })
}

/// The two elements that end a [`pack_weights_dsp`] filter ("DSP1"). They
/// make its length 2 mod 4, never that of a [`pack_weights_s16`] filter
/// (a multiple of 8), so the one packed-weights input tells the two
/// layouts apart by its length.
pub const DSP_WEIGHTS_MARK: [i16; 2] = [0x5344, 0x3150];

/// Elements of the filter [`pack_weights_dsp`] packs from a `[Co, K]`
/// filter: the whole pairs of output channels times the whole groups of
/// four values, plus [`DSP_WEIGHTS_MARK`]; 0 when there is no whole pair
/// or group.
pub fn dsp_weights_len(co: usize, k: usize) -> usize {
    let (pairs, k4) = (co / 2, k / 4 * 4);
    if pairs == 0 || k4 == 0 {
        return 0;
    }
    pairs
        .saturating_mul(2)
        .saturating_mul(k4)
        .saturating_add(DSP_WEIGHTS_MARK.len())
}

/// Packs a row-major `[Co, K]` int8 filter for the DSP (`SMLAD`) kernels,
/// widened to int16 so that the kernel loads weights ready to multiply:
/// for each pair of output channels and each group of four values `w0..w3`
/// of a row, the first row's `[w0, w2, w1, w3]` then the second's — the
/// halfword order `SXTB16` gives the input words — and
/// [`DSP_WEIGHTS_MARK`] at the end. A last odd channel and the values past
/// the last whole group are left out (the kernel takes them from the
/// filter). `out` holds [`dsp_weights_len`] elements. The compiler calls
/// this for the Cortex-M DSP targets; tests use it to build the kernel's
/// inputs.
pub fn pack_weights_dsp(w: &[i8], co: usize, k: usize, out: &mut [i16]) {
    let groups = k / 4;
    let at = |r: usize, i: usize| w.get(r * k + i).map_or(0, |&v| v as i16);
    let body = dsp_weights_len(co, k)
        .saturating_sub(DSP_WEIGHTS_MARK.len())
        .min(out.len());
    for (n, o) in out[..body].iter_mut().enumerate() {
        // Element n: pair, group, row of the pair, position in the group.
        let (pair, rest) = (n / (8 * groups.max(1)), n % (8 * groups.max(1)));
        let (g, rest) = (rest / 8, rest % 8);
        let (row, pos) = (2 * pair + rest / 4, rest % 4);
        *o = at(row, 4 * g + [0, 2, 1, 3][pos]);
    }
    for (o, &m) in out[body..].iter_mut().zip(&DSP_WEIGHTS_MARK) {
        *o = m;
    }
}

/// Whether `packed` is exactly [`pack_weights_dsp`] of `w` (one pass in
/// the packed order, no division per element: the loader runs this on
/// the device for every filter).
pub fn dsp_weights_match(w: &[i8], co: usize, k: usize, packed: &[i16]) -> bool {
    let n = dsp_weights_len(co, k);
    if n == 0 || packed.len() != n || w.len() < co.saturating_mul(k) {
        return false;
    }
    let groups = k / 4;
    let (body, mark) = packed.split_at(n - DSP_WEIGHTS_MARK.len());
    if mark != DSP_WEIGHTS_MARK {
        return false;
    }
    let mut p = body.chunks_exact(4);
    for pair in w.chunks_exact(2 * k).take(co / 2) {
        let (r0, r1) = pair.split_at(k);
        for (g0, g1) in r0.chunks_exact(4).zip(r1.chunks_exact(4)).take(groups) {
            for g in [g0, g1] {
                let Some(q) = p.next() else {
                    return false;
                };
                let want = [g[0] as i16, g[2] as i16, g[1] as i16, g[3] as i16];
                if q != want {
                    return false;
                }
            }
        }
    }
    p.next().is_none()
}

/// TFLite's double-rounding `MultiplyByQuantizedMultiplier` in the form
/// 32-bit cores execute quickly; equal to
/// [`crate::kernels::quant::multiply_by_quantized_multiplier`] for every
/// `x` when `multiplier ≥ 0` (which model validation guarantees).
///
/// Why: gemmlowp's rounding doubling high multiply adds a nudge of `2³⁰`
/// (or `1 − 2³⁰` for negative products) and divides by `2³¹` truncating
/// toward zero; both cases equal `floor((x·m + 2³⁰) / 2³¹)`, an arithmetic
/// shift. Its one saturating case needs `m = i32::MIN`, excluded by
/// `m ≥ 0`. The rounding right shift rounds half away from zero: round up
/// when the remainder exceeds half, or equals half for non-negative values.
#[inline(always)]
pub fn requantize_fixed(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.clamp(0, 31) as u32;
    let right = shift.saturating_neg().clamp(0, 31) as u32;
    requantize_split(x, multiplier, left, right)
}

/// [`requantize_fixed`] with the shift already split into a left shift
/// and a right shift, each in `0..=31` (as the blocked table stores them).
#[inline(always)]
fn requantize_split(x: i32, multiplier: i32, left: u32, right: u32) -> i32 {
    let (left, right) = (left.min(31), right.min(31));
    let x = x.wrapping_shl(left);
    let high = ((x as i64 * multiplier as i64 + (1 << 30)) >> 31) as i32;
    let mask = ((1u32 << right) - 1) as i32;
    let remainder = high & mask;
    let threshold = (mask >> 1) + ((high as u32) >> 31) as i32;
    (high >> right) + i32::from(remainder > threshold)
}

/// The requantize-and-clamp epilogue of an int8 kernel, as a type: each
/// kernel's loops are compiled once per implementation with the epilogue
/// inlined, so the rounding-mode dispatch happens once per call.
pub(crate) trait Epilogue: Copy {
    /// Requantizes `acc` for output channel `ch` and clamps it to int8.
    fn apply(&self, acc: i32, ch: usize) -> i8;

    /// The blocked requantization table and output parameters, when this
    /// epilogue is TFLite's double rounding with one (fused vector kernels
    /// requantize from it directly).
    #[cfg_attr(
        not(any(
            all(target_arch = "aarch64", target_feature = "neon"),
            all(feature = "mve", target_arch = "arm")
        )),
        allow(dead_code)
    )]
    #[inline(always)]
    fn blocks(&self) -> Option<(&[i32], &QuantIo)> {
        None
    }

    /// Whether [`Epilogue::blocks`]'s table is [`table_is_plain`] (worked
    /// out once per call; only the Helium kernels ask).
    #[cfg_attr(not(all(feature = "mve", target_arch = "arm")), allow(dead_code))]
    #[inline(always)]
    fn plain_table(&self) -> bool {
        false
    }

    /// The same for channels `ch..ch + 4` into `out[0..4]`.
    #[inline(always)]
    fn apply4(&self, acc: [i32; 4], ch: usize, out: &mut [i8; 4]) {
        for (j, (o, a)) in out.iter_mut().zip(acc).enumerate() {
            *o = self.apply(a, ch + j);
        }
    }
}

/// Words per block of four channels in a blocked requantization table.
pub const REQUANT_BLOCK_WORDS: usize = 12;

/// Builds the blocked requantization table the optimized epilogues read from
/// `[mult, shift]` pairs of `channels` channels (one pair = per tensor):
/// for each whole block of four channels, four multipliers, four left
/// shifts and four negated right shifts. Channels past the last whole
/// block are not in the table (the kernels requantize them one by one).
pub fn requant_blocks(pairs: &[i32], channels: usize, out: &mut [i32]) {
    let pair = |c: usize| -> (i32, i32) {
        let i = if pairs.len() == 2 { 0 } else { 2 * c };
        match (pairs.get(i), pairs.get(i + 1)) {
            (Some(&m), Some(&s)) => (m, s),
            _ => (0, 0),
        }
    };
    for (b, blk) in out
        .chunks_exact_mut(REQUANT_BLOCK_WORDS)
        .take(channels / 4)
        .enumerate()
    {
        for j in 0..4 {
            let (m, s) = pair(4 * b + j);
            blk[j] = m;
            blk[4 + j] = s.clamp(0, 31);
            blk[8 + j] = -(s.saturating_neg().clamp(0, 31));
        }
    }
}

/// TFLite double rounding, with the blocked table read four channels at a
/// time (Helium asm on the M55, scalar elsewhere; empty table: every
/// channel derives its shifts from the pairs).
#[derive(Clone, Copy)]
pub(crate) struct FixedBlocked<'a> {
    pairs: FixedPerChannel<'a>,
    blocks: &'a [i32],
    /// [`table_is_plain`] for `blocks`, worked out once per call (Helium
    /// builds only; `false` elsewhere).
    plain: bool,
}

/// Whether no channel of a blocked requantization table shifts left and
/// every channel shifts right by at least one: the epilogue then needs
/// neither the left shift nor the mask that keeps the negative-rounding
/// fix away from unshifted channels.
pub(crate) fn table_is_plain(blocks: &[i32]) -> bool {
    !blocks.is_empty()
        && blocks
            .chunks_exact(REQUANT_BLOCK_WORDS)
            .all(|b| b[4..8].iter().all(|&l| l == 0) && b[8..12].iter().all(|&r| r < 0))
}

impl Epilogue for FixedBlocked<'_> {
    #[inline(always)]
    fn apply(&self, acc: i32, ch: usize) -> i8 {
        self.pairs.apply(acc, ch)
    }

    #[inline(always)]
    fn blocks(&self) -> Option<(&[i32], &QuantIo)> {
        (!self.blocks.is_empty()).then_some((self.blocks, &self.pairs.q))
    }

    #[inline(always)]
    fn plain_table(&self) -> bool {
        self.plain
    }

    #[inline(always)]
    fn apply4(&self, acc: [i32; 4], ch: usize, out: &mut [i8; 4]) {
        let i = ch / 4 * REQUANT_BLOCK_WORDS;
        let block = if ch.is_multiple_of(4) {
            self.blocks
                .get(i..i + REQUANT_BLOCK_WORDS)
                .and_then(|b| <&[i32; REQUANT_BLOCK_WORDS]>::try_from(b).ok())
        } else {
            None
        };
        let Some(p) = block else {
            for (j, (o, a)) in out.iter_mut().zip(acc).enumerate() {
                *o = self.pairs.apply(a, ch + j);
            }
            return;
        };
        let q = &self.pairs.q;
        #[cfg(all(feature = "mve", target_arch = "arm"))]
        {
            mve::shared::requant4(&acc, p, q.out_zp, q.act_min, q.act_max, out);
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        {
            // SAFETY: NEON is enabled for the whole build (the cfg above).
            unsafe { neon::shared::requant4(&acc, p, q.out_zp, q.act_min, q.act_max, out) };
        }
        #[cfg(all(feature = "dsp", not(feature = "mve"), target_arch = "arm"))]
        {
            let b = dsp::shared::OutBounds::new(q.out_zp, q.act_min, q.act_max);
            dsp::shared::requant4_shared(&acc, p, &b, out);
        }
        #[cfg(not(any(
            all(feature = "mve", target_arch = "arm"),
            all(feature = "dsp", target_arch = "arm"),
            all(target_arch = "aarch64", target_feature = "neon")
        )))]
        for j in 0..4 {
            // The table's shifts are already split and clamped.
            let v = requantize_split(acc[j], p[j], p[4 + j] as u32, (-p[8 + j]) as u32);
            out[j] = finish(v, q);
        }
    }
}

#[inline(always)]
fn finish(v: i32, q: &QuantIo) -> i8 {
    sat_i8(v.saturating_add(q.out_zp), q.act_min, q.act_max)
}

/// TFLite double rounding, `[mult, shift]` per channel (or one pair for
/// the tensor).
#[derive(Clone, Copy)]
pub(crate) struct FixedPerChannel<'a> {
    p: &'a [i32],
    q: QuantIo,
}

impl Epilogue for FixedPerChannel<'_> {
    #[inline(always)]
    fn apply(&self, acc: i32, ch: usize) -> i8 {
        let i = if self.p.len() == 2 { 0 } else { 2 * ch };
        let v = match (self.p.get(i), self.p.get(i + 1)) {
            (Some(&m), Some(&s)) => requantize_fixed(acc, m, s),
            _ => 0,
        };
        finish(v, &self.q)
    }
}

/// Any other requantization: the reference [`Requant::apply`].
#[derive(Clone, Copy)]
pub(crate) struct AnyRequant<'a> {
    rq: Requant<'a>,
    q: QuantIo,
}

impl Epilogue for AnyRequant<'_> {
    #[inline(always)]
    fn apply(&self, acc: i32, ch: usize) -> i8 {
        finish(self.rq.apply(acc, ch), &self.q)
    }

    /// DSP: TFLite's one single-rounding multiplier for the tensor (fully
    /// connected) in one `asm!` block.
    #[cfg(all(feature = "dsp", not(feature = "mve"), target_arch = "arm"))]
    #[inline(always)]
    fn apply4(&self, acc: [i32; 4], ch: usize, out: &mut [i8; 4]) {
        let q = &self.q;
        let single = match self.rq {
            Requant::FixedSingle(&[m, shift]) => {
                dsp::shared::SingleParams::new(m, shift, q.out_zp, q.act_min, q.act_max)
            }
            _ => None,
        };
        match single {
            Some(prm) => dsp::shared::requant4_single(&acc, &prm, out),
            None => {
                for (j, (o, a)) in out.iter_mut().zip(acc).enumerate() {
                    *o = self.apply(a, ch + j);
                }
            }
        }
    }
}

/// Adds the folded bias of channels `oc..oc + 4` to `acc`, requantizes
/// and writes the four outputs to `out[oc..oc + 4]`.
#[inline(always)]
fn store4<E: Epilogue>(e: E, acc: [i32; 4], fb: &[i32], oc: usize, out: &mut [i8]) {
    let b = &fb[oc..oc + 4];
    let acc = [
        acc[0].wrapping_add(b[0]),
        acc[1].wrapping_add(b[1]),
        acc[2].wrapping_add(b[2]),
        acc[3].wrapping_add(b[3]),
    ];
    if let Ok(o) = <&mut [i8; 4]>::try_from(&mut out[oc..oc + 4]) {
        e.apply4(acc, oc, o);
    }
}

/// Calls `f(row, col, Σ_k x[row, k]·w[col, k])` for every input row of `x`
/// (`[rows, k]`) and weight row of `w` (`[n, k]`): four input rows by four
/// weight rows per block through [`dot::dot4x4_s8`] (its paired form when
/// no weight is −128, checked once), the rest four weight rows or one at a
/// time. The sums are exact int32 (wrapping, as the reference kernels').
#[inline(always)]
pub(crate) fn for_each_dot(
    x: &[i8],
    rows: usize,
    k: usize,
    w: &[i8],
    n: usize,
    mut f: impl FnMut(usize, usize, i32),
) {
    let (r4, n4) = (rows / 4 * 4, n / 4 * 4);
    let no_min = r4 > 0 && !w.contains(&i8::MIN);
    let xr = |r: usize| &x[r * k..(r + 1) * k];
    let wr = |c: usize| &w[c * k..(c + 1) * k];
    for r in (0..r4).step_by(4) {
        let x4 = [xr(r), xr(r + 1), xr(r + 2), xr(r + 3)];
        for c in (0..n4).step_by(4) {
            let w4 = [wr(c), wr(c + 1), wr(c + 2), wr(c + 3)];
            let d = if no_min {
                dot::dot4x4_s8_no_min(x4, w4)
            } else {
                dot::dot4x4_s8(x4, w4)
            };
            for (i, di) in d.iter().enumerate() {
                for (j, &v) in di.iter().enumerate() {
                    f(r + i, c + j, v);
                }
            }
        }
    }
    for r in 0..rows {
        if r < r4 {
            // Only the columns past the blocks are left for these rows.
            for c in n4..n {
                f(r, c, dot_s8(xr(r), wr(c)));
            }
            continue;
        }
        for c in (0..n4).step_by(4) {
            let d = dot4_s8(xr(r), wr(c), wr(c + 1), wr(c + 2), wr(c + 3));
            for (j, &v) in d.iter().enumerate() {
                f(r, c + j, v);
            }
        }
        for c in n4..n {
            f(r, c, dot_s8(xr(r), wr(c)));
        }
    }
}

/// Multiplies one input row (a pixel's receptive field, or a
/// fully-connected input row) of length `k` by every filter row of `w`
/// (`[out.len(), k]`), adds the folded bias and writes the requantized
/// outputs, four filter rows per pass over the input.
#[inline(always)]
fn row_times_filters<E: Epilogue>(
    patch: &[i8],
    w: &[i8],
    k: usize,
    fb: &[i32],
    e: E,
    out: &mut [i8],
) {
    let co = out.len();
    let mut oc = 0;
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    if let Some((blocks, q)) = e.blocks() {
        oc = if k <= 16 {
            mve::stream::row_times_filters_short(patch, w, k, fb, blocks, q, out)
        } else if mve::rows::suits(k, co) {
            mve::rows::row_times_filters(patch, w, k, fb, blocks, q, e.plain_table(), out)
        } else {
            mve::stream::row_times_filters_stream(patch, w, k, fb, blocks, q, e.plain_table(), out)
        };
    }
    while oc + 4 <= co {
        let r = &w[oc * k..(oc + 4) * k];
        let (r0, rest) = r.split_at(k);
        let (r1, rest) = rest.split_at(k);
        let (r2, r3) = rest.split_at(k);
        store4(e, dot4_s8(patch, r0, r1, r2, r3), fb, oc, out);
        oc += 4;
    }
    while oc < co {
        let a = dot_s8(patch, &w[oc * k..(oc + 1) * k]);
        out[oc] = e.apply(a.wrapping_add(fb[oc]), oc);
        oc += 1;
    }
}

/// [`row_times_filters`] for `P` input rows at once (`P` output pixels):
/// each filter vector is loaded once for all of them. The rows hold at
/// least `len >= k` bytes, zeros past `k`: the vector kernel multiplies
/// `len` bytes (reading past the end of a filter row, times zero) where
/// the filter allows it. NEON only.
///
/// `paired`: the filter holds no −128, so the `SMULL`/`SMLAL2` pairing is
/// exact (cores without `SDOT`).
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn rows_times_filters<E: Epilogue, const P: usize>(
    p: [&[i8]; P],
    w: &[i8],
    k: usize,
    len: usize,
    fb: &[i32],
    e: E,
    out: [&mut [i8]; P],
    paired: bool,
) {
    let co = out.iter().map(|o| o.len()).min().unwrap_or(0);
    let mut out = out;
    let mut oc = 0;
    if let (Some((blocks, q)), true) = (e.blocks(), k > 0) {
        let o = out.each_mut().map(|o| &mut **o);
        // SAFETY: NEON is enabled for the whole build (the cfg above) and
        // `SDOT` only after `has_dotprod` found it on this core.
        oc = unsafe {
            if dot::has_dotprod() {
                neon::conv::rows_times_filters_dotprod(p, w, k, len, fb, blocks, q, o)
            } else if paired {
                neon::conv::rows_times_filters_paired(p, w, k, len, fb, blocks, q, o)
            } else {
                neon::conv::rows_times_filters(p, w, k, len, fb, blocks, q, o)
            }
        };
    }
    for (f, o) in p.iter().zip(out.iter_mut()) {
        let f = &f[..k.min(f.len())];
        if oc == 0 {
            row_times_filters(f, w, k, fb, e, o);
            continue;
        }
        for c in oc..co {
            let r = &w[c * k..(c + 1) * k];
            o[c] = e.apply(dot_s8(f, r).wrapping_add(fb[c]), c);
        }
    }
}

/// [`rows_times_filters`] with the filter packed by [`pack_weights_s16`]
/// (lanes are output channels: no horizontal sums). Channels the packed
/// kernel does not cover are computed from `w`. NEON only.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn packed_rows_times_filters<E: Epilogue, const P: usize>(
    p: [&[i8]; P],
    packed: &[i16],
    w: &[i8],
    k: usize,
    fb: &[i32],
    e: E,
    out: [&mut [i8]; P],
) {
    let co = out.iter().map(|o| o.len()).min().unwrap_or(0);
    let mut out = out;
    let done = match e.blocks() {
        Some((blocks, q)) => {
            let o = out.each_mut().map(|o| &mut **o);
            // SAFETY: NEON is enabled for the whole build (the cfg above).
            unsafe { neon::conv::packed_times_filters(p, packed, k, fb, blocks, q, o) }
        }
        None => 0,
    };
    if done == 0 {
        return rows_times_filters(p, w, k, k, fb, e, out, false);
    }
    for (f, o) in p.iter().zip(out.iter_mut()) {
        let f = &f[..k.min(f.len())];
        for c in done..co {
            let r = &w[c * k..(c + 1) * k];
            o[c] = e.apply(dot_s8(f, r).wrapping_add(fb[c]), c);
        }
    }
}

/// Binds `$e` to the [`Epilogue`] for `$rq`/`$q` and evaluates `$body`
/// (a call of a kernel's generic inner function) for it.
///
/// With `fixed: F, any: A` (constants), only the instantiations they allow
/// are compiled: the fixed-point ones (`Requant::Fixed`/`FixedBlocked`) when
/// `F`, the general one ([`AnyRequant`]) when `A`; a requantization whose
/// instantiation is left out is an error. This is how a firmware's
/// [`crate::KernelSet`] drops the epilogues its model does not use.
macro_rules! with_epilogue {
    ($rq:expr, $q:expr, $e:ident => $body:expr) => {
        with_epilogue!($rq, $q, fixed: true, any: true, $e => $body)
    };
    ($rq:expr, $q:expr, fixed: $fixed:expr, any: $any:expr, $e:ident => $body:expr) => {
        match $rq {
            Requant::Fixed(p) if $fixed => {
                // One instantiation for both fixed-point forms: an empty
                // block table sends every channel down the scalar path.
                let $e = $crate::kernels::opt::FixedBlocked {
                    pairs: $crate::kernels::opt::FixedPerChannel { p, q: $q },
                    blocks: &[],
                    plain: false,
                };
                $body
            }
            Requant::FixedBlocked { pairs, blocks } if $fixed => {
                let $e = $crate::kernels::opt::FixedBlocked {
                    pairs: $crate::kernels::opt::FixedPerChannel { p: pairs, q: $q },
                    blocks,
                    plain: cfg!(all(feature = "mve", target_arch = "arm"))
                        && $crate::kernels::opt::table_is_plain(blocks),
                };
                $body
            }
            rq if $any => {
                let $e = $crate::kernels::opt::AnyRequant { rq, q: $q };
                $body
            }
            _ => {
                return Err($crate::error::Error::ShapeMismatch(
                    "this requantization's kernel is left out of the build",
                ))
            }
        }
    };
}

// Declared after `with_epilogue!` so they can use it (textual macro scope).
pub mod conv;
// The f32 variants are for the Cortex-A targets (and the host); 32-bit Arm
// builds leave them out to save flash.
#[cfg(not(target_arch = "arm"))]
pub mod conv_f32;
pub mod depthwise_conv;
#[cfg(not(target_arch = "arm"))]
pub mod depthwise_conv_f32;
pub mod dot;
pub mod dynamic_fc;
pub mod elementwise;
pub mod fully_connected;
pub mod pool;
pub mod selftest;

// The instruction-set kernels, one folder per instruction set (each split
// by operator, with a `shared` module of what its operators share).
#[cfg(all(feature = "dsp", target_arch = "arm"))]
mod dsp;
#[cfg(all(feature = "mve", target_arch = "arm"))]
mod mve;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon;

#[cfg(test)]
mod tests {
    use super::super::quant::multiply_by_quantized_multiplier;
    use super::selftest::Rng;
    use super::*;

    #[test]
    fn fast_requantization_equals_gemmlowp() {
        let mut rng = Rng::new(7);
        let edges = [
            i32::MIN,
            i32::MIN + 1,
            -65536,
            -1,
            0,
            1,
            65535,
            i32::MAX - 1,
            i32::MAX,
        ];
        for shift in -31..=30 {
            for &m in &[0, 1, 1 << 30, (1 << 30) + 12345, i32::MAX - 1, i32::MAX] {
                for &x in &edges {
                    assert_eq!(
                        requantize_fixed(x, m, shift),
                        multiply_by_quantized_multiplier(x, m, shift),
                        "x {x} m {m} shift {shift}"
                    );
                }
            }
        }
        for _ in 0..200_000 {
            let x = match rng.range(0, 2) {
                0 => rng.next_u64() as i32,
                1 => rng.range(-100_000, 100_000) as i32,
                // exact halves after the shift
                _ => (rng.range(-1000, 1000) as i32) << rng.range(0, 20),
            };
            let m = rng.range(0, i32::MAX as i64) as i32;
            let shift = rng.range(-31, 30) as i32;
            assert_eq!(
                requantize_fixed(x, m, shift),
                multiply_by_quantized_multiplier(x, m, shift),
                "x {x} m {m} shift {shift}"
            );
        }
    }
}
