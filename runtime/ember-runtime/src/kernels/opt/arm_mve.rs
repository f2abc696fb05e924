//! Helium (M-profile Vector Extension) kernels in `asm!`: each block runs
//! a unit of work from the folded bias to the stored int8 outputs in
//! registers (LLVM's own code around the sums spilled and re-derived
//! pointers per block, and left depthwise taps half scalar).
//!
//! - [`row_times_filters_short`]: one input row of at most 16 bytes times
//!   filter rows, four channels per `VMLADAVA.S8` block (longer rows:
//!   [`super::arm_mve_rows`]);
//! - [`fc_row_single`]: the same with TFLite's single rounding;
//! - [`depthwise_pixel`], [`depthwise_run`]: depthwise blocks of 16, 8 or
//!   4 channels, int32 lanes;
//! - [`gather_rows`]: a receptive field copied row by row;
//! - [`requant4`], [`add4_run`]: the requantization epilogue and the int8
//!   Add body.
//!
//! Register notes: `VMLADAVA` accumulates into even registers (`r0`, `r2`,
//! `r4`, `r8` here); widening loads (`VLDRB.S32`) and narrowing stores
//! (`VSTRB.32`) take a low base register (`r0`–`r7`); `r6` and `r7` are not
//! available to `asm!`, so such operands are pinned to `r0`–`r2`.
//!
//! The requantization: four accumulators of four consecutive output
//! channels requantized, offset, clamped and stored as int8 in 16 vector
//! instructions, against ~45 scalar instructions per output.
//!
//! Per channel block the compiler stores `[mult ×4, left shift ×4,
//! −right shift ×4]` (see [`super::requant_blocks`]). The sequence is
//! gemmlowp's double rounding exactly:
//! - `VSHL` (register) by the left shift: the wrapping `x << left`;
//! - `VQRDMULH`: the saturating rounding doubling high multiply itself;
//! - rounding divide by `2^right`, half away from zero: `VRSHL` by
//!   `−right` rounds half up, so negative values are first lowered by one
//!   (`x − 1` with saturation; the mask `x & −right` has its sign bit set
//!   exactly when `x < 0` and `right > 0`). For `x = q·2^e + r` this
//!   rounds up iff `r > 2^(e−1)`, gemmlowp's rule for negatives; `VRSHL`
//!   adds its rounding constant at full precision (no overflow), and the
//!   saturated `i32::MIN − 1` gives the same quotient as the exact one;
//! - `VQADD` of the output zero point (the reference's `saturating_add`),
//!   `VMAX`/`VMIN` with the activation bounds, and `VSTRB.32` storing the
//!   low byte of each lane (the value is already inside int8).

use core::arch::asm;

/// Requantizes `acc` (channels `c..c+4`) with the block `params` and
/// writes four int8 values to `out[0..4]`.
#[inline(always)]
pub fn requant4(
    acc: &[i32; 4],
    params: &[i32; 12],
    out_zp: i32,
    lo: i32,
    hi: i32,
    out: &mut [i8; 4],
) {
    // SAFETY: reads 16 bytes from `acc` and 48 from `params` (`&[i32; 4]`
    // and `&[i32; 12]`, so valid and 4-byte aligned as VLDRW needs) and writes 4 bytes to `out` (a
    // `&mut [i8; 4]`); touches only the vector registers it declares as
    // clobbered. The module is compiled only with the `mve` feature on
    // 32-bit Arm, which the firmware enables for Helium cores.
    unsafe {
        asm!(
            "vldrw.u32 q0, [{acc}]",
            "vldrw.u32 q1, [{p}]",
            "vldrw.u32 q2, [{p}, #16]",
            "vshl.s32 q0, q0, q2",
            "vqrdmulh.s32 q0, q0, q1",
            "vldrw.u32 q2, [{p}, #32]",
            "vand q1, q0, q2",
            "vshr.s32 q1, q1, #31",
            "vqadd.s32 q0, q0, q1",
            "vrshl.s32 q0, q0, q2",
            "vdup.32 q1, {zp}",
            "vqadd.s32 q0, q0, q1",
            "vdup.32 q1, {lo}",
            "vmax.s32 q0, q0, q1",
            "vdup.32 q1, {hi}",
            "vmin.s32 q0, q0, q1",
            "vstrb.32 q0, [r0]",
            acc = in(reg) acc.as_ptr(),
            p = in(reg) params.as_ptr(),
            zp = in(reg) out_zp,
            lo = in(reg) lo,
            hi = in(reg) hi,
            in("r0") out.as_mut_ptr(),
            out("q0") _, out("q1") _, out("q2") _,
            options(nostack, preserves_flags),
        );
    }
}

/// The vector constants of [`add4_run`] (lanes equal); the rest travel
/// in general-purpose registers.
#[repr(C, align(16))]
struct AddConsts {
    b_zp: [i32; 4],
    out_left: [i32; 4],
    a_negright: [i32; 4],
    b_negright: [i32; 4],
    out_negright: [i32; 4],
    lo: [i32; 4],
    hi: [i32; 4],
}

/// Int8 Add over the longest multiple of four elements of `y`, four
/// elements per step; returns how many it wrote. Each requantization is
/// the sequence of [`requant4`]; `ls` is the already clamped input left
/// shift. Per step, 31 instructions with the constants held in registers:
/// the input shifts `ls` and `left` are one shift by `ls + left` (the
/// same wrapping result, and 0 once the sum reaches 32, as shifting
/// twice gives), multipliers, `a`'s zero point and the output zero point
/// are scalar operands (`VSUB`, `VSHL`, `VQRDMULH`, `VQADD` by a
/// register), the right shifts and bounds sit in `q3..q7`, and `b`'s zero
/// point and the output left shift are reloaded from memory.
///
/// Each shift here is one per tensor, so the mask that keeps the
/// negative-rounding fix away from unshifted lanes only stands in for a
/// choice made once per call. When the output shifts right and not left
/// (TFLite's Add parameters always do: its multiplier is tiny), that
/// choice is made in Rust: the step drops the masks and the output left
/// shift, and an input that does not shift right (the one with the larger
/// scale, whose multiplier is exactly ½) skips its rounding division
/// altogether, 23 instructions per step. Any other parameters take the
/// masked sequence, which covers every combination in one `asm!`.
pub fn add4_run(
    a: &[i8],
    b: &[i8],
    p: &crate::kernels::elementwise::AddParamsS8,
    ls: u32,
    y: &mut [i8],
) -> usize {
    let n = y.len().min(a.len()).min(b.len()) & !3;
    if n == 0 {
        return 0;
    }
    let left = |s: i32| s.clamp(0, 31);
    let negright = |s: i32| [-(s.saturating_neg().clamp(0, 31)); 4];
    let k = AddConsts {
        b_zp: [p.b_zp; 4],
        out_left: [left(p.out_shift); 4],
        a_negright: negright(p.a_shift),
        b_negright: negright(p.b_shift),
        out_negright: negright(p.out_shift),
        lo: [p.act_min; 4],
        hi: [p.act_max; 4],
    };
    let (a_right, b_right) = (k.a_negright[0] < 0, k.b_negright[0] < 0);
    let out_plain = k.out_negright[0] < 0 && k.out_left[0] == 0;
    macro_rules! run {
        ($around:expr, $bround:expr, $oshift:expr, $oround:expr) => {
            // SAFETY: `n ≤` every slice's length and is a multiple of four,
            // so the `n / 4` steps' 4-byte loads from `a`, `b` and 4-byte
            // stores to `y` (pointers advanced by the post-increments) stay
            // in bounds; `k` is 16-byte aligned (VLDRW needs 4) and lives
            // across the block; only the declared registers are written.
            // Compiled only with the `mve` feature on 32-bit Arm (Helium
            // cores).
            unsafe {
                asm!(
                    "vldrw.u32 q3, [{k}, #32]",
                    "vldrw.u32 q4, [{k}, #48]",
                    "vldrw.u32 q5, [{k}, #64]",
                    "vldrw.u32 q6, [{k}, #80]",
                    "vldrw.u32 q7, [{k}, #96]",
                    "dls lr, lr",
                    "2:",
                    // a: ((x − zp) << (ls + left)), VQRDMULH, rounding >> right
                    "vldrb.s32 q0, [r1], #4",
                    "vsub.i32 q0, q0, {azp}",
                    "vshl.s32 q0, {ash}",
                    "vqrdmulh.s32 q0, q0, {am}",
                    $around,
                    // b, the same into q1
                    "vldrb.s32 q1, [r2], #4",
                    "vldrw.u32 q2, [{k}]",
                    "vsub.i32 q1, q1, q2",
                    "vshl.s32 q1, {bsh}",
                    "vqrdmulh.s32 q1, q1, {bm}",
                    $bround,
                    // sum (wrapping), output requantization, zero point, clamp
                    "vadd.i32 q0, q0, q1",
                    $oshift,
                    "vqrdmulh.s32 q0, q0, {om}",
                    $oround,
                    "vqadd.s32 q0, q0, {ozp}",
                    "vmax.s32 q0, q0, q6",
                    "vmin.s32 q0, q0, q7",
                    "vstrb.32 q0, [r0], #4",
                    "le lr, 2b",
                    // Widening loads take low registers.
                    inout("r1") a.as_ptr() => _,
                    inout("r2") b.as_ptr() => _,
                    inout("r0") y.as_mut_ptr() => _,
                    inout("lr") n / 4 => _,
                    k = in(reg) &k as *const AddConsts,
                    azp = in(reg) p.a_zp,
                    ash = in(reg) ls as i32 + left(p.a_shift),
                    am = in(reg) p.a_mult,
                    bsh = in(reg) ls as i32 + left(p.b_shift),
                    bm = in(reg) p.b_mult,
                    om = in(reg) p.out_mult,
                    ozp = in(reg) p.out_zp,
                    out("q0") _, out("q1") _, out("q2") _, out("q3") _,
                    out("q4") _, out("q5") _, out("q6") _, out("q7") _,
                    options(nostack, preserves_flags),
                );
            }
        };
    }
    // Rounding division of `$v` by 2^right (the negated right shifts in
    // `$sh`), with the mask for lanes that may not shift (`full`) or,
    // when every lane shifts, without it.
    #[rustfmt::skip]
    macro_rules! round {
        (full $v:literal, $sh:literal) => {
            concat!(
                "vand q2, ", $v, ", ", $sh, "\n",
                "vshr.s32 q2, q2, #31\n",
                "vqadd.s32 ", $v, ", ", $v, ", q2\n",
                "vrshl.s32 ", $v, ", ", $v, ", ", $sh, "\n",
            )
        };
        ($v:literal, $sh:literal) => {
            concat!(
                "vshr.s32 q2, ", $v, ", #31\n",
                "vqadd.s32 ", $v, ", ", $v, ", q2\n",
                "vrshl.s32 ", $v, ", ", $v, ", ", $sh, "\n",
            )
        };
    }
    if out_plain {
        match (a_right, b_right) {
            (true, true) => run!(
                round!("q0", "q3"),
                round!("q1", "q4"),
                "",
                round!("q0", "q5")
            ),
            (true, false) => run!(round!("q0", "q3"), "", "", round!("q0", "q5")),
            (false, true) => run!("", round!("q1", "q4"), "", round!("q0", "q5")),
            (false, false) => run!("", "", "", round!("q0", "q5")),
        }
    } else {
        run!(
            round!(full "q0", "q3"),
            round!(full "q1", "q4"),
            "vldrw.u32 q1, [{k}, #16]\nvshl.s32 q0, q0, q1",
            round!(full "q0", "q5")
        );
    }
    n
}

/// Whole blocks of four `k`-byte filter rows in `w_len` bytes (no limit
/// when `k = 0`: nothing is read then).
fn row_blocks(w_len: usize, k: usize) -> usize {
    match k.checked_mul(4) {
        Some(0) => usize::MAX,
        Some(b) => w_len / b,
        None => 0,
    }
}

/// Whole blocks of four channels a row-times-filters kernel can write:
/// present in the output, the folded bias, the requantization table and
/// the filter (`[Co, k]`); 0 when the input row is shorter than `k`.
fn filter_blocks(
    patch: &[i8],
    w: &[i8],
    k: usize,
    fb: &[i32],
    blocks: &[i32],
    out: &[i8],
) -> usize {
    if patch.len() < k {
        return 0;
    }
    (out.len() / 4)
        .min(fb.len() / 4)
        .min(blocks.len() / super::REQUANT_BLOCK_WORDS)
        .min(row_blocks(w.len(), k))
}

/// Output constants of the kernels that keep them in memory, one vector
/// each.
#[repr(C, align(16))]
struct OutConsts {
    zp: [i32; 4],
    lo: [i32; 4],
    hi: [i32; 4],
    /// The table is [`super::table_is_plain`] (the depthwise blocks then
    /// requantize with [`requant_q_plain!`]).
    plain: bool,
}

/// What [`fc_row_single`]'s per-block `asm!` reads from memory (its
/// accumulators and pointers take all the general-purpose registers).
#[repr(C)]
struct BlockCtx {
    bias: *const i32,
    params: *const i32,
    consts: *const OutConsts,
    out: *mut i8,
}

/// The multiply-accumulate loop of a four-channel block (after a
/// `DLSTP.8` on the row length): per 16 bytes one input load from `r1`,
/// one load from each filter row `{w0}`..`{w3}` and four `VMLADAVA.S8`
/// into `r0, r2, r4, r8` (`VMLADAVA` takes even registers); then the four
/// sums gathered into `q0`. Shared with [`super::arm_mve_rows`].
macro_rules! dot4_loop {
    () => {
        concat!(
            "2:\n",
            "vldrb.u8 q0, [r1], #16\n",
            "vldrb.u8 q1, [{w0}], #16\n",
            "vmladava.s8 r0, q0, q1\n",
            "vldrb.u8 q1, [{w1}], #16\n",
            "vmladava.s8 r2, q0, q1\n",
            "vldrb.u8 q1, [{w2}], #16\n",
            "vmladava.s8 r4, q0, q1\n",
            "vldrb.u8 q1, [{w3}], #16\n",
            "vmladava.s8 r8, q0, q1\n",
            "letp lr, 2b\n",
            "vmov q0[2], q0[0], r0, r4\n",
            "vmov q0[3], q0[1], r2, r8\n",
        )
    };
}

/// The sums of a four-channel block into `q0`: filter rows `{w0}` and the
/// next three (`lr` = `k` bytes apart), input row in `r1`, accumulators
/// `r0, r2, r4, r8` (`VMLADAVA` takes even registers) starting from the
/// four folded-bias words `{ctx}` points at.
macro_rules! dot4_block {
    () => {
        concat!(
            "add {w1}, {w0}, lr\n",
            "add {w2}, {w1}, lr\n",
            "add {w3}, {w2}, lr\n",
            "ldr r0, [{ctx}]\n",
            "ldrd r4, r8, [r0, #8]\n",
            "ldrd r0, r2, [r0]\n",
            "dlstp.8 lr, lr\n",
            dot4_loop!(),
        )
    };
}

/// Output constants of the fused kernels for `q`.
fn out_consts(q: &crate::kernels::QuantIo, plain: bool) -> OutConsts {
    OutConsts {
        zp: [q.out_zp; 4],
        lo: [q.act_min; 4],
        hi: [q.act_max; 4],
        plain,
    }
}

/// The requantization of the accumulators in `q{acc}` (channels
/// `4j..4j+4` of a 16-channel block, table words at `{p} + 48j`), zero
/// point `q6`, clamped to `q7` (lower bound) and `q5` (upper), stored as
/// bytes at `r0 + 4j`: the [`requant4`] sequence with `q4` its only
/// scratch register.
macro_rules! requant_q {
    ($acc:literal, $j:literal) => {
        concat!(
            "vldrw.u32 q4, [{p}, #",
            $j,
            "*48+16]\n",
            "vshl.s32 q",
            $acc,
            ", q",
            $acc,
            ", q4\n",
            "vldrw.u32 q4, [{p}, #",
            $j,
            "*48]\n",
            "vqrdmulh.s32 q",
            $acc,
            ", q",
            $acc,
            ", q4\n",
            "vldrw.u32 q4, [{p}, #",
            $j,
            "*48+32]\n",
            "vand q4, q",
            $acc,
            ", q4\n",
            "vshr.s32 q4, q4, #31\n",
            "vqadd.s32 q",
            $acc,
            ", q",
            $acc,
            ", q4\n",
            requant_q_finish!($acc, $j),
        )
    };
}

/// [`requant_q!`] for a [`super::table_is_plain`] table: no left shift
/// and no mask before the negative-rounding fix (10 instructions per four
/// channels instead of 14).
macro_rules! requant_q_plain {
    ($acc:literal, $j:literal) => {
        concat!(
            "vldrw.u32 q4, [{p}, #",
            $j,
            "*48]\n",
            "vqrdmulh.s32 q",
            $acc,
            ", q",
            $acc,
            ", q4\n",
            "vshr.s32 q4, q",
            $acc,
            ", #31\n",
            "vqadd.s32 q",
            $acc,
            ", q",
            $acc,
            ", q4\n",
            requant_q_finish!($acc, $j),
        )
    };
}

/// What both requantization sequences end with: the rounding shift by
/// the table's negated right shift, the zero point, the clamp and the
/// byte store.
macro_rules! requant_q_finish {
    ($acc:literal, $j:literal) => {
        concat!(
            "vldrw.u32 q4, [{p}, #",
            $j,
            "*48+32]\n",
            "vrshl.s32 q",
            $acc,
            ", q",
            $acc,
            ", q4\n",
            "vqadd.s32 q",
            $acc,
            ", q",
            $acc,
            ", q6\n",
            "vmax.s32 q",
            $acc,
            ", q",
            $acc,
            ", q7\n",
            "vmin.s32 q",
            $acc,
            ", q",
            $acc,
            ", q5\n",
            "vstrb.32 q",
            $acc,
            ", [r0, #",
            $j,
            "*4]\n",
        )
    };
}

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
/// [`super::table_is_plain`]. Returns how many channels it wrote (a
/// multiple of 4); the caller finishes the rest.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_pixel(
    rows: &[&[i8]],
    ptrs: &mut [usize; super::depthwise_conv::MAX_TAPS],
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
        .min(blocks.len() / super::REQUANT_BLOCK_WORDS);
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
                blocks.add(super::REQUANT_BLOCK_WORDS * (c0 / 4)),
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
        || !reach.is_some_and(|r| r <= x.len())
        || w.len() < taps.saturating_mul(c)
        || y.len() < count.saturating_mul(c)
    {
        return 0;
    }
    let n4 = (c / 4)
        .min(fb.len() / 4)
        .min(blocks.len() / super::REQUANT_BLOCK_WORDS);
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

/// Constants of [`fc_row_single`], one vector each.
#[repr(C, align(16))]
struct SingleConsts {
    mult: [i32; 4],
    shift: [i32; 4],
    zp: [i32; 4],
    lo: [i32; 4],
    hi: [i32; 4],
}

/// One fully-connected block with single rounding: [`dot4_block!`], then
/// `$mul` (`VQDMULH` or `VQRDMULH`) by the multiplier, the rounding shift
/// by the (non-positive) shift, zero point, clamp and byte store.
macro_rules! fc_single_block {
    ($mul:literal, $patch:expr, $w0:expr, $k:expr, $ctx:expr) => {
        asm!(
            dot4_block!(),
            "ldr r1, [{ctx}, #4]",
            "vldrw.u32 q1, [r1]",
            concat!($mul, " q0, q0, q1"),
            "vldrw.u32 q1, [r1, #16]",
            "vrshl.s32 q0, q0, q1",
            "vldrw.u32 q1, [r1, #32]",
            "vqadd.s32 q0, q0, q1",
            "vldrw.u32 q1, [r1, #48]",
            "vmax.s32 q0, q0, q1",
            "vldrw.u32 q1, [r1, #64]",
            "vmin.s32 q0, q0, q1",
            "ldr r1, [{ctx}, #12]",
            "vstrb.32 q0, [r1]",
            w0 = inout(reg) $w0 => _,
            w1 = out(reg) _,
            w2 = out(reg) _,
            w3 = out(reg) _,
            ctx = in(reg) $ctx,
            inout("lr") $k => _,
            inout("r1") $patch => _,
            out("r0") _, out("r2") _, out("r4") _, out("r8") _,
            out("q0") _, out("q1") _,
            options(nostack),
        )
    };
}

/// One fully-connected row times the weight rows `w = [n, k]` with
/// TFLite's single-rounding requantization for the whole tensor
/// (`mult`, `shift`): blocks of four outputs, each one `asm!` from the
/// folded bias ([`dot4_block!`]) to the stored bytes.
/// The exact `(x·m + 2^(t−1)) >> t`, `t = 31 − shift`, is computed in
/// 32-bit lanes: for `shift = 0` it is `VQRDMULH`; for `shift < 0`,
/// `VQDMULH` gives `⌊x·m / 2^31⌋` and a rounding shift right by `−shift`
/// adds the half and shifts — the dropped low 31 bits of the product
/// cannot carry past the next multiple of `2^−shift`, so the result is the
/// same. Positive shifts (multipliers above one) are left to the caller:
/// returns 0 then, else how many outputs it wrote.
#[allow(clippy::too_many_arguments)]
pub fn fc_row_single(
    patch: &[i8],
    w: &[i8],
    k: usize,
    fb: &[i32],
    mult: i32,
    shift: i32,
    q: &crate::kernels::QuantIo,
    out: &mut [i8],
) -> usize {
    let n4 = (out.len() / 4)
        .min(fb.len() / 4)
        .min(row_blocks(w.len(), k));
    if patch.len() < k || n4 == 0 || shift > 0 {
        return 0;
    }
    let consts = SingleConsts {
        mult: [mult; 4],
        shift: [shift.max(-31); 4],
        zp: [q.out_zp; 4],
        lo: [q.act_min; 4],
        hi: [q.act_max; 4],
    };
    let mut ctx = BlockCtx {
        bias: fb.as_ptr(),
        params: &consts as *const SingleConsts as *const i32,
        consts: core::ptr::null(),
        out: out.as_mut_ptr(),
    };
    for b in 0..n4 {
        // SAFETY: block `b < n4` reads `patch[..k]`, `w[4bk..4bk+4k]`,
        // `fb[4b..4b+4]` and `consts` (80 bytes, 16-byte aligned) and
        // writes `out[4b..4b+4]`, all in bounds by the `n4` limits; only
        // the declared registers are written. Compiled only with the `mve` feature on 32-bit Arm.
        unsafe {
            ctx.bias = fb.as_ptr().add(4 * b);
            ctx.out = out.as_mut_ptr().add(4 * b);
            let (x, w0, ctxp) = (
                patch.as_ptr(),
                w.as_ptr().add(4 * k * b),
                &ctx as *const BlockCtx,
            );
            if shift == 0 {
                fc_single_block!("vqrdmulh.s32", x, w0, k, ctxp);
            } else {
                fc_single_block!("vqdmulh.s32", x, w0, k, ctxp);
            }
        }
    }
    4 * n4
}

/// Gathers `rows` runs of `run` bytes, the first at `x[base..]` and each
/// next `stride` bytes further, one after another into `dst` (the
/// receptive field of a window that lies inside the input), sixteen bytes
/// per tail-predicated `VLDRB`/`VSTRB` pair, all rows in one `asm!`.
/// Returns the field (`dst[..rows·run]`), or `None` when a slice is too
/// short (nothing is written then).
pub fn gather_rows<'a>(
    x: &[i8],
    base: usize,
    stride: usize,
    run: usize,
    rows: usize,
    dst: &'a mut [i8],
) -> Option<&'a [i8]> {
    let total = rows.checked_mul(run)?;
    let end = rows
        .checked_sub(1)?
        .checked_mul(stride)?
        .checked_add(base)?
        .checked_add(run)?;
    if end > x.len() || total > dst.len() || run == 0 {
        return None;
    }
    // SAFETY: row `r < rows` reads `x[base + r·stride..][..run]`, inside
    // `x` (`base + (rows − 1)·stride + run ≤ x.len()`), and writes
    // `dst[r·run..][..run]`, inside `dst` (`rows·run ≤ dst.len()`); the
    // predicated loads and stores touch no byte past each run. Only the
    // declared registers are written. Compiled only with the `mve`
    // feature on 32-bit Arm.
    unsafe {
        asm!(
            "3:",
            "mov {s}, {src}",
            "mov lr, {run}",
            "dlstp.8 lr, lr",
            "2:",
            "vldrb.u8 q0, [{s}], #16",
            "vstrb.8 q0, [{d}], #16",
            "letp lr, 2b",
            "sub {d}, {d}, {pad}",
            "add {src}, {src}, {stride}",
            "subs {n}, {n}, #1",
            "bne 3b",
            src = inout(reg) x.as_ptr().add(base) => _,
            s = out(reg) _,
            d = inout(reg) dst.as_mut_ptr() => _,
            run = in(reg) run,
            pad = in(reg) run.next_multiple_of(16) - run,
            stride = in(reg) stride,
            n = inout(reg) rows => _,
            out("lr") _,
            out("q0") _,
            options(nostack),
        );
    }
    Some(&dst[..total])
}

/// One input row of at most 16 bytes (`k ≤ 16`) times the filter rows,
/// requantized, all blocks of four channels in one `asm!`: the input row
/// stays in `q0` (loaded under a `VCTP.8 k` predicate, which also guards
/// every weight load and `VMLADAVA`, so no byte past a row is read or
/// summed), the output constants stay in `q5..q7`, and each block costs four
/// predicated weight loads, four multiply-accumulates and the
/// requantization (the byte store's base is the low register `r1`).
/// Returns how many channels it wrote.
#[allow(clippy::too_many_arguments)]
pub fn row_times_filters_short(
    patch: &[i8],
    w: &[i8],
    k: usize,
    fb: &[i32],
    blocks: &[i32],
    q: &crate::kernels::QuantIo,
    out: &mut [i8],
) -> usize {
    let n4 = filter_blocks(patch, w, k, fb, blocks, out);
    if k > 16 || n4 == 0 {
        return 0;
    }
    let consts = out_consts(q, false);
    // SAFETY: the input load reads `patch[..k]` (lanes past `k` are
    // predicated off: no access); block `b < n4` reads the filter rows
    // `w[4bk..4bk+4k]` the same way (`n4·4k ≤ w.len()`), the bias words
    // `fb[4b..4b+4]` and the table words `blocks[12b..12b+12]`, and
    // writes `out[4b..4b+4]`, all inside their slices by the `n4` limits;
    // `consts` and the `i32` slices are aligned for `VLDRW`/`LDRD`. Only
    // the declared registers are written; the predicate register is
    // clobbered (`VCTP`), which `asm!` allows without declaring.
    // Compiled only with the `mve` feature on 32-bit Arm.
    unsafe {
        asm!(
            "vldrw.u32 q5, [{k}]",
            "vldrw.u32 q6, [{k}, #16]",
            "vldrw.u32 q7, [{k}, #32]",
            "vctp.8 {len}",
            "vpst",
            "vldrbt.u8 q0, [{x}]",
            "dls lr, lr",
            "2:",
            "ldrd r0, r2, [{bias}], #8",
            "ldrd r4, r8, [{bias}], #8",
            "vpst",
            "vldrbt.u8 q1, [{w}]",
            "add {w}, {w}, {len}",
            "vpst",
            "vldrbt.u8 q2, [{w}]",
            "add {w}, {w}, {len}",
            "vpst",
            "vldrbt.u8 q3, [{w}]",
            "add {w}, {w}, {len}",
            "vpst",
            "vldrbt.u8 q4, [{w}]",
            "add {w}, {w}, {len}",
            "vpstttt",
            "vmladavat.s8 r0, q0, q1",
            "vmladavat.s8 r2, q0, q2",
            "vmladavat.s8 r4, q0, q3",
            "vmladavat.s8 r8, q0, q4",
            "vmov q1[2], q1[0], r0, r4",
            "vmov q1[3], q1[1], r2, r8",
            "vldrw.u32 q2, [{p}], #48",
            "vldrw.u32 q3, [{p}, #-32]",
            "vldrw.u32 q4, [{p}, #-16]",
            "vshl.s32 q1, q1, q3",
            "vqrdmulh.s32 q1, q1, q2",
            "vand q2, q1, q4",
            "vshr.s32 q2, q2, #31",
            "vqadd.s32 q1, q1, q2",
            "vrshl.s32 q1, q1, q4",
            "vqadd.s32 q1, q1, q5",
            "vmax.s32 q1, q1, q6",
            "vmin.s32 q1, q1, q7",
            "vstrb.32 q1, [r1], #4",
            "le lr, 2b",
            k = in(reg) &consts as *const OutConsts,
            len = in(reg) k,
            x = in(reg) patch.as_ptr(),
            w = inout(reg) w.as_ptr() => _,
            bias = inout(reg) fb.as_ptr() => _,
            p = inout(reg) blocks.as_ptr() => _,
            inout("r1") out.as_mut_ptr() => _,
            inout("lr") n4 => _,
            out("r0") _, out("r2") _, out("r4") _, out("r8") _,
            out("q0") _, out("q1") _, out("q2") _, out("q3") _,
            out("q4") _, out("q5") _, out("q6") _, out("q7") _,
            options(nostack),
        );
    }
    4 * n4
}

/// Copies `src` into `dst[..src.len()]` (the shorter of the two lengths),
/// sixteen bytes per tail-predicated `VLDRB`/`VSTRB` pair: a few
/// instructions for the short runs of a padded receptive field, where a
/// `memcpy` call costs tens.
#[inline(always)]
pub fn copy_bytes(dst: &mut [i8], src: &[i8]) {
    let n = dst.len().min(src.len());
    if n == 0 {
        return;
    }
    // SAFETY: reads `src[..n]` and writes `dst[..n]` (`n` is at most both
    // lengths; the predicated accesses touch no byte past `n`); only the
    // declared registers are written. Compiled only with the `mve`
    // feature on 32-bit Arm.
    unsafe {
        asm!(
            "dlstp.8 lr, lr",
            "2:",
            "vldrb.u8 q0, [{s}], #16",
            "vstrb.8 q0, [{d}], #16",
            "letp lr, 2b",
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            inout("lr") n => _,
            out("q0") _,
            options(nostack, preserves_flags),
        );
    }
}

/// Fills `dst` with `v`, sixteen bytes per tail-predicated `VSTRB` (see
/// [`copy_bytes`]).
#[inline(always)]
pub fn fill_bytes(dst: &mut [i8], v: i8) {
    if dst.is_empty() {
        return;
    }
    // SAFETY: writes `dst[..len]` (the predicated stores touch no byte
    // past it); only the declared registers are written. Compiled only
    // with the `mve` feature on 32-bit Arm.
    unsafe {
        asm!(
            "vdup.8 q0, {v}",
            "dlstp.8 lr, lr",
            "2:",
            "vstrb.8 q0, [{d}], #16",
            "letp lr, 2b",
            v = in(reg) v as i32,
            d = inout(reg) dst.as_mut_ptr() => _,
            inout("lr") dst.len() => _,
            out("q0") _,
            options(nostack, preserves_flags),
        );
    }
}

/// Adds the column sums of channels `c0..c0 + 16·b` over every pixel of
/// `image` (`c` channels per pixel) to `acc[..16·b]`, for the largest
/// `b` that fits `acc`: 16 channels per pass, four widening loads and four
/// adds per pixel. Returns how many channels it summed (`16·b`).
pub fn column_sums16(image: &[i8], c: usize, c0: usize, acc: &mut [i32]) -> usize {
    let pixels = image.len().checked_div(c).unwrap_or(0);
    let n = acc.len().min(c.saturating_sub(c0)) / 16 * 16;
    if pixels == 0 || n == 0 || pixels.saturating_mul(c) > image.len() {
        return 0;
    }
    for (j, a) in acc[..n].chunks_exact_mut(16).enumerate() {
        // SAFETY: pixel `p < pixels` reads `image[p·c + c0 + 16j..][..16]`,
        // inside `image` (`c0 + 16j + 16 ≤ c0 + n ≤ c` and `pixels·c ≤
        // image.len()`); `a` is 16 words, read and written with `VLDRW`
        // (4-byte aligned `i32`s). Only the declared registers are
        // written. Compiled only with the `mve` feature on 32-bit Arm.
        unsafe {
            asm!(
                "vldrw.u32 q0, [{a}]",
                "vldrw.u32 q1, [{a}, #16]",
                "vldrw.u32 q2, [{a}, #32]",
                "vldrw.u32 q3, [{a}, #48]",
                "dls lr, lr",
                "2:",
                "vldrb.s32 q4, [r0]",
                "vadd.i32 q0, q0, q4",
                "vldrb.s32 q4, [r0, #4]",
                "vadd.i32 q1, q1, q4",
                "vldrb.s32 q4, [r0, #8]",
                "vadd.i32 q2, q2, q4",
                "vldrb.s32 q4, [r0, #12]",
                "vadd.i32 q3, q3, q4",
                "add r0, r0, {c}",
                "le lr, 2b",
                "vstrw.32 q0, [{a}]",
                "vstrw.32 q1, [{a}, #16]",
                "vstrw.32 q2, [{a}, #32]",
                "vstrw.32 q3, [{a}, #48]",
                a = in(reg) a.as_mut_ptr(),
                c = in(reg) c,
                inout("r0") image.as_ptr().add(c0 + 16 * j) => _,
                inout("lr") pixels => _,
                out("q0") _, out("q1") _, out("q2") _, out("q3") _, out("q4") _,
                options(nostack, preserves_flags),
            );
        }
    }
    n
}
