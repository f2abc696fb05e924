//! Depthwise convolution (multiplier 1): blocks of 16, 8 or 4 channels,
//! int32 lanes, of one pixel ([`depthwise_pixel`]) or of a run of interior
//! pixels ([`depthwise_run`]); and the Helium parts of the depthwise loop
//! ([`Depthwise`]).

use super::shared::{out_consts, OutConsts};
use crate::kernels::opt::epilogue::Epilogue;
use crate::kernels::opt::taps::{interior_rest, MAX_TAPS};
use core::arch::asm;

/// One depthwise block of `width` (16, 8 or 4) channels, one `asm!`:
/// int32 accumulators in vector registers from the folded bias `bias`,
/// per tap `t < taps` the input at `addrs[t] + addend` (a row address and
/// the channel offset, or a tap offset and the pixel's address) and the
/// weights at `wp + t·c`, then the [`requant4`] sequence per four
/// channels with the table at `p`, stored at `o` (widening loads and byte
/// stores take low base registers: the tap's input in `r1`, the weights
/// in `r2`, the output in `r0`). Per tap, 16 and 8 channels take two
/// halfword-widening loads (`VLDRB.S16`), a `VMULLB.S16`/`VMULLT.S16`
/// pair and two adds per eight channels (12 instructions per 16 channels
/// where int32 lanes took 16); 4 channels take `VLDRB.S32` loads, `VMUL`
/// and `VADD`.
///
/// # Safety
/// For every tap, `width` bytes at `addrs[t] + addend` and at `wp + t·c`
/// are readable; `bias` and `p` are 4-byte aligned and hold `width` and
/// `3·width` words; `o` has room for `width` bytes; `addrs` holds `taps`
/// words. Compiled only with the `mve` feature on 32-bit Arm.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn depthwise_block(
    width: usize,
    addrs: *const usize,
    addend: usize,
    taps: usize,
    wp: *const i8,
    c: usize,
    bias: *const i32,
    p: *const i32,
    consts: &OutConsts,
    o: *mut i8,
) {
    // The block's `asm!`: bias loads, the tap loop, the `$fix` sequence
    // (channel order back from even/odd lanes) and the requantization of
    // each accumulator (`q4..q7` free), with the operands every width
    // shares; `$acc` lists the accumulator registers it clobbers, `$extra`
    // any further operands. Defined here so that it names this function's
    // parameters.
    macro_rules! depthwise_block {
        ([$($bias:literal),*], [$($tap:literal),*], [$($fix:literal),*], [$($rq:expr),*],
         [$($acc:tt)*] $($extra:tt)*) => {
            asm!(
                $($bias,)*
                "dls lr, lr",
                "2:",
                "ldr r1, [{rows}], #4",
                "add r1, r1, {c0}",
                $($tap,)*
                "add r2, r2, {cs}",
                "le lr, 2b",
                $($fix,)*
                "vldrw.u32 q6, [{k}]",
                "vldrw.u32 q7, [{k}, #16]",
                "vldrw.u32 q5, [{k}, #32]",
                $($rq,)*
                bias = inout(reg) bias => _,
                rows = inout(reg) addrs => _,
                c0 = in(reg) addend,
                inout("r2") wp => _,
                cs = in(reg) c,
                out("r1") _,
                p = in(reg) p,
                k = in(reg) consts as *const OutConsts,
                inout("lr") taps => _,
                in("r0") o,
                $($acc)*,
                out("q4") _, out("q5") _, out("q6") _, out("q7") _
                $($extra)*,
                options(nostack),
            )
        };
    }
    // Sixteen and eight channels: halfword lanes, `VMULLB`/`VMULLT`
    // multiplying the even and the odd channels into int32 products (an
    // int8 product fits 16 bits, the sums do not), accumulated in even/odd
    // vectors; `VST20`/`VST21` then store each pair interleaved, in
    // channel order, to `tmp`, reloaded as channel blocks of four.
    let plain = consts.plain;
    let mut tmp = core::mem::MaybeUninit::<[i32; 16]>::uninit();
    let tmp = tmp.as_mut_ptr().cast::<i32>();
    // SAFETY: the caller's contract covers every access but `tmp`'s, a
    // local of 16 words (4-byte aligned, as `VST2`/`VLDRW` need), written
    // before it is read; `consts` is 16-byte aligned; only the declared
    // registers are written.
    unsafe {
        // One arm per width, with either requantization sequence.
        macro_rules! block16 {
            ($rq:ident) => {
                depthwise_block!(
                    [
                        "vld20.32 {{q0, q1}}, [{bias}]",
                        "vld21.32 {{q0, q1}}, [{bias}]!",
                        "vld20.32 {{q2, q3}}, [{bias}]",
                        "vld21.32 {{q2, q3}}, [{bias}]"
                    ],
                    [
                        "vldrb.s16 q4, [r1]",
                        "vldrb.s16 q5, [r2]",
                        "vmullb.s16 q6, q4, q5",
                        "vadd.i32 q0, q0, q6",
                        "vmullt.s16 q6, q4, q5",
                        "vadd.i32 q1, q1, q6",
                        "vldrb.s16 q4, [r1, #8]",
                        "vldrb.s16 q5, [r2, #8]",
                        "vmullb.s16 q6, q4, q5",
                        "vadd.i32 q2, q2, q6",
                        "vmullt.s16 q6, q4, q5",
                        "vadd.i32 q3, q3, q6"
                    ],
                    [
                        "vst20.32 {{q0, q1}}, [{tmp}]",
                        "vst21.32 {{q0, q1}}, [{tmp}]!",
                        "vst20.32 {{q2, q3}}, [{tmp}]",
                        "vst21.32 {{q2, q3}}, [{tmp}]",
                        "vldrw.u32 q0, [{tmp}, #-32]",
                        "vldrw.u32 q1, [{tmp}, #-16]",
                        "vldrw.u32 q2, [{tmp}]",
                        "vldrw.u32 q3, [{tmp}, #16]"
                    ],
                    [$rq!("0", "0"), $rq!("1", "1"), $rq!("2", "2"), $rq!("3", "3")],
                    [out("q0") _, out("q1") _, out("q2") _, out("q3") _],
                    tmp = inout(reg) tmp => _
                )
            };
        }
        macro_rules! block8 {
            ($rq:ident) => {
                depthwise_block!(
                    [
                        "vld20.32 {{q0, q1}}, [{bias}]",
                        "vld21.32 {{q0, q1}}, [{bias}]"
                    ],
                    [
                        "vldrb.s16 q4, [r1]",
                        "vldrb.s16 q5, [r2]",
                        "vmullb.s16 q6, q4, q5",
                        "vadd.i32 q0, q0, q6",
                        "vmullt.s16 q6, q4, q5",
                        "vadd.i32 q1, q1, q6"
                    ],
                    [
                        "vst20.32 {{q0, q1}}, [{tmp}]",
                        "vst21.32 {{q0, q1}}, [{tmp}]",
                        "vldrw.u32 q0, [{tmp}]",
                        "vldrw.u32 q1, [{tmp}, #16]"
                    ],
                    [$rq!("0", "0"), $rq!("1", "1")],
                    [out("q0") _, out("q1") _],
                    tmp = inout(reg) tmp => _
                )
            };
        }
        macro_rules! block4 {
            ($rq:ident) => {
                depthwise_block!(
                    ["vldrw.u32 q0, [{bias}]"],
                    [
                        "vldrb.s32 q4, [r1]",
                        "vldrb.s32 q5, [r2]",
                        "vmul.i32 q4, q4, q5",
                        "vadd.i32 q0, q0, q4"
                    ],
                    [],
                    [$rq!("0", "0")],
                    [out("q0") _]
                )
            };
        }
        match (width, plain) {
            (16, false) => block16!(requant_q),
            (16, true) => block16!(requant_q_plain),
            (8, false) => block8!(requant_q),
            (8, true) => block8!(requant_q_plain),
            (_, false) => block4!(requant_q),
            (_, true) => block4!(requant_q_plain),
        }
    }
}

/// Depthwise convolution (multiplier 1) of one output pixel: `rows[t]` is
/// tap `t`'s input row (`C` bytes, the zero-point row in the padding),
/// `w = [taps, C]`; `ptrs` is room for the rows' addresses (the caller's,
/// so that it is not cleared per pixel). Channels go in blocks of 16, then
/// one of 8 and one of 4 ([`depthwise_block`]); `plain`: the table is
/// [`super::super::table_is_plain`]. Returns how many channels it wrote (a
/// multiple of 4); the caller finishes the rest.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_pixel(
    rows: &[&[i8]],
    ptrs: &mut [usize; MAX_TAPS],
    w: &[i8],
    c: usize,
    fb: &[i32],
    blocks: &[i32],
    q: &crate::kernels::QuantIo,
    plain: bool,
    out: &mut [i8],
) -> usize {
    let taps = rows.len();
    if taps == 0
        || taps > ptrs.len()
        || rows.iter().any(|r| r.len() < c)
        || w.len() < taps.saturating_mul(c)
    {
        return 0;
    }
    for (p, r) in ptrs.iter_mut().zip(rows) {
        *p = r.as_ptr() as usize;
    }
    let n4 = (c / 4)
        .min(out.len() / 4)
        .min(fb.len() / 4)
        .min(blocks.len() / super::super::REQUANT_BLOCK_WORDS);
    let consts = out_consts(q, plain);
    // SAFETY: every row holds at least `c ≥ 4·n4` bytes (checked above), so
    // channels `0..4·n4` at each row address are readable; the weights
    // `w[t·c..][..4·n4]`, `t < taps`, lie inside `w` (`taps·c ≤ w.len()`);
    // the bias words `fb[..4·n4]`, the table words `blocks[..12·n4]` and
    // the outputs `out[..4·n4]` are inside their slices (`n4` bounds).
    unsafe {
        depthwise_blocks(
            n4,
            ptrs.as_ptr(),
            0,
            taps,
            w.as_ptr(),
            c,
            fb.as_ptr(),
            blocks.as_ptr(),
            &consts,
            out.as_mut_ptr(),
        )
    };
    4 * n4
}

/// All `n4` blocks of four channels of one output pixel, as wide as they
/// go ([`depthwise_block`] with `addend + c0` for each block at `c0`).
///
/// # Safety
/// [`depthwise_block`]'s contract for channels `0..4·n4`: at each
/// `addrs[t] + addend` and at `w + t·c` (`t < taps`), `4·n4` readable
/// bytes; `fb` and `blocks` hold `4·n4` and `12·n4` aligned words; `out`
/// has room for `4·n4` bytes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn depthwise_blocks(
    n4: usize,
    addrs: *const usize,
    addend: usize,
    taps: usize,
    w: *const i8,
    c: usize,
    fb: *const i32,
    blocks: *const i32,
    consts: &OutConsts,
    out: *mut i8,
) {
    let mut c0 = 0;
    while c0 < 4 * n4 {
        let width = block_width(4 * n4 - c0);
        // SAFETY: channels `c0..c0 + width` lie inside `0..4·n4`, covered
        // by the caller's contract.
        unsafe {
            depthwise_block(
                width,
                addrs,
                addend + c0,
                taps,
                w.add(c0),
                c,
                fb.add(c0),
                blocks.add(super::super::REQUANT_BLOCK_WORDS * (c0 / 4)),
                consts,
                out.add(c0),
            )
        };
        c0 += width;
    }
}

/// The widest block (16, 8 or 4 channels) that fits `left` channels.
fn block_width(left: usize) -> usize {
    match left {
        16.. => 16,
        8.. => 8,
        _ => 4,
    }
}

/// [`depthwise_pixel`] for `count` consecutive output pixels whose windows
/// lie inside the input: pixel `i`'s tap `t` reads `x[base + i·step +
/// offs[t]..][..C]`, its outputs go to `y[i·C..][..C]`. Returns the
/// channels written per pixel (a multiple of 4, the same for all; 0 when
/// a slice is too short); the caller finishes the rest.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_run(
    x: &[i8],
    base: usize,
    step: usize,
    offs: &[usize],
    count: usize,
    w: &[i8],
    c: usize,
    fb: &[i32],
    blocks: &[i32],
    q: &crate::kernels::QuantIo,
    plain: bool,
    y: &mut [i8],
) -> usize {
    let taps = offs.len();
    let last = offs.iter().max().copied().unwrap_or(0);
    let reach = (count.saturating_sub(1))
        .checked_mul(step)
        .and_then(|v| v.checked_add(base))
        .and_then(|v| v.checked_add(last))
        .and_then(|v| v.checked_add(c));
    if taps == 0
        || count == 0
        || reach.is_none_or(|r| r > x.len())
        || w.len() < taps.saturating_mul(c)
        || y.len() < count.saturating_mul(c)
    {
        return 0;
    }
    let n4 = (c / 4)
        .min(fb.len() / 4)
        .min(blocks.len() / super::super::REQUANT_BLOCK_WORDS);
    let consts = out_consts(q, plain);
    let xp = x.as_ptr() as usize;
    for i in 0..count {
        // SAFETY: tap `t` of pixel `i` reads channels `0..4·n4 ≤ c` at
        // `x[base + i·step + offs[t]..]`, in bounds since `base + (count −
        // 1)·step + max(offs) + c ≤ x.len()` (checked above); the weights,
        // bias and table words as in `depthwise_pixel`; the outputs
        // `y[i·c..][..4·n4]` lie inside `y` (`count·c ≤ y.len()`).
        unsafe {
            depthwise_blocks(
                n4,
                offs.as_ptr(),
                xp + base + i * step,
                taps,
                w.as_ptr(),
                c,
                fb.as_ptr(),
                blocks.as_ptr(),
                &consts,
                y.as_mut_ptr().add(i * c),
            )
        };
    }
    4 * n4
}

/// The Helium parts of the depthwise loop (see
/// [`crate::kernels::opt::depthwise_conv`]): with the blocked table,
/// blocks of 16, 8 and 4 channels over a run of interior pixels or one
/// pixel's rows.
pub(crate) struct Depthwise {
    /// The taps' row addresses of the current pixel.
    ptrs: [usize; MAX_TAPS],
}

impl Depthwise {
    /// For a layer (the arguments are the other instruction sets').
    #[inline(always)]
    pub(crate) fn new<E: Epilogue>(_offs: &[usize], _c: usize, _e: &E) -> Self {
        Depthwise {
            ptrs: [0; MAX_TAPS],
        }
    }

    /// The run of `count` interior pixels `(count, base, ybase)` (input
    /// offset of the first one's tap 0, output offset), `step` input bytes
    /// apart, taps `offs` from the first one: the whole blocks of four
    /// channels here, the rest one at a time. Returns the pixels written
    /// (0: none, the caller takes them one at a time).
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
        let Some((blocks, q)) = e.blocks() else {
            return 0;
        };
        if c < 4 {
            return 0;
        }
        let out = &mut y[ybase..ybase + count * c];
        let done = depthwise_run(
            x,
            base,
            step,
            offs,
            count,
            w,
            c,
            folded_bias,
            blocks,
            q,
            e.plain_table(),
            out,
        );
        if done > 0 && count > 0 {
            if done < c {
                for (i, o) in out.chunks_exact_mut(c).enumerate() {
                    let px = base + i * step;
                    interior_rest(x, px, offs, w, c, done, folded_bias, e, o);
                }
            }
            return count;
        }
        0
    }

    /// One output pixel's whole blocks of four channels from its taps'
    /// input rows. Returns the channels written.
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
        match e.blocks() {
            Some((blocks, q)) => depthwise_pixel(
                rows,
                &mut self.ptrs,
                w,
                c,
                folded_bias,
                blocks,
                q,
                e.plain_table(),
                out,
            ),
            None => 0,
        }
    }
}
