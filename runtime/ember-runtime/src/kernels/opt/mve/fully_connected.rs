//! Fully connected with TFLite's single rounding: one input row times
//! filter rows, four channels per `VMLADAVA.S8` block.

use super::shared::{row_blocks, OutConsts};
use core::arch::asm;

/// What [`fc_row_single`]'s per-block `asm!` reads from memory (its
/// accumulators and pointers take all the general-purpose registers).
#[repr(C)]
struct BlockCtx {
    bias: *const i32,
    params: *const i32,
    consts: *const OutConsts,
    out: *mut i8,
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
