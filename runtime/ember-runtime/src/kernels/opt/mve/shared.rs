//! What every Helium kernel shares and nothing operator-specific: the
//! requantization epilogue ([`requant4`] and the `requant_q!` macros), the
//! four-row multiply-accumulate loop (`dot4_loop!`, `dot4_block!`), the
//! output constants, block counts, and short byte copies.
//!
//! The requantization: four accumulators of four consecutive output
//! channels requantized, offset, clamped and stored as int8 in 16 vector
//! instructions, against ~45 scalar instructions per output.
//!
//! Per channel block the compiler stores `[mult ×4, left shift ×4,
//! −right shift ×4]` (see [`crate::kernels::opt::requant_blocks`]). The sequence is
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

/// Whole blocks of four `k`-byte filter rows in `w_len` bytes (no limit
/// when `k = 0`: nothing is read then).
pub(super) fn row_blocks(w_len: usize, k: usize) -> usize {
    match k.checked_mul(4) {
        Some(0) => usize::MAX,
        Some(b) => w_len / b,
        None => 0,
    }
}

/// Whole blocks of four channels a row-times-filters kernel can write:
/// present in the output, the folded bias, the requantization table and
/// the filter (`[Co, k]`); 0 when the input row is shorter than `k`.
pub(super) fn filter_blocks(
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
        .min(blocks.len() / super::super::REQUANT_BLOCK_WORDS)
        .min(row_blocks(w.len(), k))
}

/// Output constants of the kernels that keep them in memory, one vector
/// each.
#[repr(C, align(16))]
pub(super) struct OutConsts {
    zp: [i32; 4],
    lo: [i32; 4],
    hi: [i32; 4],
    /// The table is [`super::super::table_is_plain`] (the depthwise blocks then
    /// requantize with [`requant_q_plain!`]).
    pub(super) plain: bool,
}

/// The multiply-accumulate loop of a four-channel block (after a
/// `DLSTP.8` on the row length): per 16 bytes one input load from `r1`,
/// one load from each filter row `{w0}`..`{w3}` and four `VMLADAVA.S8`
/// into `r0, r2, r4, r8` (`VMLADAVA` takes even registers); then the four
/// sums gathered into `q0`. Shared with [`super::rows`].
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
pub(super) fn out_consts(q: &crate::kernels::QuantIo, plain: bool) -> OutConsts {
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

/// [`requant_q!`] for a [`super::super::table_is_plain`] table: no left shift
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
