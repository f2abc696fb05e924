//! One input row times filter rows streamed from memory, four channels
//! per tail-predicated `VMLADAVA.S8` block: rows of at most 16 bytes with
//! all channel blocks in one predicated loop ([`row_times_filters_short`]),
//! and longer rows [`super::rows::suits`] leaves to it
//! ([`row_times_filters_stream`]).

use super::shared::{filter_blocks, out_consts, OutConsts};
use crate::kernels::opt::REQUANT_BLOCK_WORDS;
use core::arch::asm;

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

/// What [`row_times_filters_stream`]'s `asm!` keeps in memory (its
/// accumulators and filter pointers take the general-purpose registers),
/// at the byte offsets the code reads.
#[repr(C)]
#[allow(dead_code)] // read and written by the asm only
struct StreamCtx {
    /// 0: folded bias of the next block.
    bias: *const i32,
    /// 4: the input row.
    x: *const i8,
    /// 8: requantization table of the next block.
    table: *const i32,
    /// 12: where the next block's four outputs go.
    out: *mut i8,
    /// 16: the fourth filter pointer after the last block's loop.
    end: *const i8,
    /// 20: how far the tail-predicated loop overshoots a row: `k` rounded
    /// up to 16, minus `k`.
    pad: usize,
}

/// The body of [`row_times_filters_stream`]'s `asm!`: per block of four
/// filter rows the bias into `r0, r2, r4, r8`, the tail-predicated
/// `VMLADAVA.S8` loop over the input (one input load per four filter
/// loads), the four sums gathered into `q0` and requantized (the
/// sequence of [`requant_run`]; `$shift` and `$sign` are its two
/// variants' extra steps) and stored, then the next block.
macro_rules! stream_asm {
    ($($shift:literal),*; $($sign:literal),*) => {
        concat!(
            "vdup.32 q5, {w0}\n",
            "vdup.32 q6, {w1}\n",
            "vdup.32 q7, {w2}\n",
            // `{w3}` starts where the loop leaves it: a row start plus `pad`.
            "3:\n",
            "ldr r1, [{ctx}, #20]\n",
            "sub {w0}, {w3}, r1\n",
            "add {w1}, {w0}, {k}\n",
            "add {w2}, {w1}, {k}\n",
            "add {w3}, {w2}, {k}\n",
            "ldr r1, [{ctx}]\n",
            "ldrd r0, r2, [r1], #8\n",
            "ldrd r4, r8, [r1], #8\n",
            "str r1, [{ctx}]\n",
            "ldr r1, [{ctx}, #4]\n",
            "dlstp.8 lr, {k}\n",
            dot4_loop!(),
            "ldr r1, [{ctx}, #8]\n",
            $($shift, "\n",)*
            "vldrw.u32 q1, [r1], #48\n",
            "vqrdmulh.s32 q0, q0, q1\n",
            "vldrw.u32 q2, [r1, #-16]\n",
            "str r1, [{ctx}, #8]\n",
            $($sign, "\n",)*
            "vqadd.s32 q0, q0, q1\n",
            "vrshl.s32 q0, q0, q2\n",
            "vqadd.s32 q0, q0, q5\n",
            "vmax.s32 q0, q0, q6\n",
            "vmin.s32 q0, q0, q7\n",
            "ldr r1, [{ctx}, #12]\n",
            "vstrb.32 q0, [r1], #4\n",
            "str r1, [{ctx}, #12]\n",
            "ldr r1, [{ctx}, #16]\n",
            "cmp {w3}, r1\n",
            "bne 3b\n",
        )
    };
}

/// One input row `patch[..k]` (`k > 0`) times the filter rows `w = [Co,
/// k]`, plus the folded bias `fb`, requantized with the blocked table
/// `blocks` (`plain`: see [`requant_run`]) and the output constants of
/// `q`, into `out`, for rows of any length: every whole block of four
/// channels in one `asm!`, the input streamed from memory rather than held
/// in registers, each block's sums requantized as soon as they are done
/// (about 32 instructions per block besides the multiply-accumulate loop,
/// and no per-call setup beyond a small context). The choice where
/// [`suits`] says no. Returns how many channels it wrote; the caller
/// finishes the rest.
#[allow(clippy::too_many_arguments)]
pub fn row_times_filters_stream(
    patch: &[i8],
    w: &[i8],
    k: usize,
    fb: &[i32],
    blocks: &[i32],
    q: &crate::kernels::QuantIo,
    plain: bool,
    out: &mut [i8],
) -> usize {
    if k == 0 || patch.len() < k {
        return 0;
    }
    let nb = (out.len() / 4)
        .min(fb.len() / 4)
        .min(blocks.len() / REQUANT_BLOCK_WORDS);
    if nb == 0 || nb.checked_mul(4 * k).is_none_or(|b| b > w.len()) {
        return 0;
    }
    let pad = k.next_multiple_of(16) - k;
    let w3 = w.as_ptr().wrapping_add(pad);
    let mut ctx = StreamCtx {
        bias: fb.as_ptr(),
        x: patch.as_ptr(),
        table: blocks.as_ptr(),
        out: out.as_mut_ptr(),
        end: w.as_ptr().wrapping_add(4 * nb * k + pad),
        pad,
    };
    macro_rules! run {
        ($($shift:literal),*; $($sign:literal),*) => {
            // SAFETY: block `b < nb` reads `patch[..k]` (readable, `k ≤
            // patch.len()`), the filter rows `4b .. 4b + 4` (inside `w`:
            // `4·nb·k ≤ w.len()`; the predicated loads touch no byte past
            // a row), the folded bias words `fb[4b..4b + 4]` and the table
            // words `blocks[12b..12b + 12]` (`nb` is bounded by both
            // lengths; `i32` data is 4-byte aligned for `LDRD`/`VLDRW`),
            // and writes `out[4b..4b + 4]` (`4·nb ≤ out.len()`). The loop
            // ends when the fourth filter pointer reaches `end`, which it
            // does after block `nb − 1` (it advances `4k` per block from
            // `w + pad`). `ctx` lives across the block and is written only
            // through `{ctx}`. Only the declared registers, the vector
            // predicate and the flags are written. Compiled only with the
            // `mve` feature on 32-bit Arm.
            unsafe {
                asm!(
                    stream_asm!($($shift),*; $($sign),*),
                    ctx = in(reg) &mut ctx as *mut StreamCtx,
                    k = in(reg) k,
                    w0 = inout(reg) q.out_zp => _,
                    w1 = inout(reg) q.act_min => _,
                    w2 = inout(reg) q.act_max => _,
                    w3 = inout(reg) w3 => _,
                    out("r0") _, out("r1") _, out("r2") _, out("r4") _, out("r8") _,
                    out("lr") _,
                    out("q0") _, out("q1") _, out("q2") _, out("q5") _, out("q6") _,
                    out("q7") _,
                    options(nostack),
                )
            }
        };
    }
    if plain {
        // Every right shift is at least one: the sign of `x` alone says
        // whether to lower it before the rounding shift.
        run!(; "vshr.s32 q1, q0, #31");
    } else {
        run!(
            "vldrw.u32 q1, [r1, #16]", "vshl.s32 q0, q0, q1";
            "vand q1, q0, q2", "vshr.s32 q1, q1, #31"
        );
    }
    4 * nb
}
