//! The requantize-and-clamp epilogues of the int8 kernels ([`Epilogue`]):
//! TFLite's double rounding from `[mult, shift]` pairs or from the
//! compiler's blocked table (four channels per step in each instruction
//! set's own registers), and any other requantization through the
//! reference [`Requant::apply`].

pub use super::super::quant::REQUANT_BLOCK_WORDS;
use super::super::{sat_i8, QuantIo, Requant};

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
    pub(super) pairs: FixedPerChannel<'a>,
    pub(super) blocks: &'a [i32],
    /// [`table_is_plain`] for `blocks`, worked out once per call (Helium
    /// builds only; `false` elsewhere).
    pub(super) plain: bool,
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
        by_isa!(
            mve: super::mve::shared::requant4(&acc, p, q.out_zp, q.act_min, q.act_max, out),
            dsp: {
                let b = super::dsp::shared::OutBounds::new(q.out_zp, q.act_min, q.act_max);
                super::dsp::shared::requant4_shared(&acc, p, &b, out);
            },
            // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
            // condition for this arm).
            neon: unsafe { super::neon::shared::requant4(&acc, p, q.out_zp, q.act_min, q.act_max, out) },
            portable: for j in 0..4 {
                // The table's shifts are already split and clamped.
                let v = requantize_split(acc[j], p[j], p[4 + j] as u32, (-p[8 + j]) as u32);
                out[j] = finish(v, q);
            },
        )
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
    pub(super) p: &'a [i32],
    pub(super) q: QuantIo,
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
    pub(super) rq: Requant<'a>,
    pub(super) q: QuantIo,
}

impl Epilogue for AnyRequant<'_> {
    #[inline(always)]
    fn apply(&self, acc: i32, ch: usize) -> i8 {
        finish(self.rq.apply(acc, ch), &self.q)
    }

    /// DSP: TFLite's one single-rounding multiplier for the tensor (fully
    /// connected) in one `asm!` block; otherwise one channel at a time.
    #[inline(always)]
    fn apply4(&self, acc: [i32; 4], ch: usize, out: &mut [i8; 4]) {
        by_isa!(
            dsp: {
                let q = &self.q;
                let single = match self.rq {
                    Requant::FixedSingle(&[m, shift]) => {
                        super::dsp::shared::SingleParams::new(m, shift, q.out_zp, q.act_min, q.act_max)
                    }
                    _ => None,
                };
                if let Some(prm) = single {
                    super::dsp::shared::requant4_single(&acc, &prm, out);
                    return;
                }
            },
            else: {},
        );
        for (j, (o, a)) in out.iter_mut().zip(acc).enumerate() {
            *o = self.apply(a, ch + j);
        }
    }
}

/// Adds the folded bias of channels `oc..oc + 4` to `acc`, requantizes
/// and writes the four outputs to `out[oc..oc + 4]`.
#[inline(always)]
pub(crate) fn store4<E: Epilogue>(e: E, acc: [i32; 4], fb: &[i32], oc: usize, out: &mut [i8]) {
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

#[cfg(test)]
mod tests {
    use super::super::selftest::Rng;
    use super::*;
    use crate::kernels::quant::multiply_by_quantized_multiplier;

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
