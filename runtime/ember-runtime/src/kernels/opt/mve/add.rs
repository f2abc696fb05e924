//! The int8 Add body, four elements per step.

use core::arch::asm;

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
