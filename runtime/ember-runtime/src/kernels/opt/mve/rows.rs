use crate::kernels::opt::REQUANT_BLOCK_WORDS;
use core::arch::asm;

/// Accumulators one pixel's pass keeps: channels are handled in groups of
/// this many (a multiple of four), so the buffer stays on the stack.
pub const GROUP: usize = 64;

/// Bytes of the input row held in `q4..q7` per pass.
const CHUNK: usize = 64;

/// One filter row's sum into `$acc`: the full 16-byte vectors of the
/// row (`x` registers listed), the first one without accumulating.
macro_rules! row_full {
    ($acc:literal; $first:literal $(, $rest:literal)*) => {
        concat!(
            "vldrb.u8 q1, [{w}], #16\n",
            "vmladav.s8 ", $acc, ", ", $first, ", q1\n",
            $("vldrb.u8 q1, [{w}], #16\n",
            "vmladava.s8 ", $acc, ", ", $rest, ", q1\n",)*
        )
    };
}

/// The predicated tail vector of a filter row (lanes past the tail are
/// not loaded, and read as zero), then the step to the next row.
macro_rules! row_tail {
    ($acc:literal, $x:literal, $op:literal) => {
        concat!(
            "vpst\n",
            "vldrbt.u8 q1, [{w}]\n",
            $op,
            " ",
            $acc,
            ", ",
            $x,
            ", q1\n",
            "add {w}, {w}, {rest}\n",
        )
    };
}

/// The block loop around four row sums: accumulators `r0, r2, r4, r8`
/// (`VMLADAV` writes even registers) gathered into `q0`, plus the four
/// words at `{src}`, stored at `{dst}`.
macro_rules! block_loop {
    ($r0:expr, $r2:expr, $r4:expr, $r8:expr) => {
        concat!(
            "dls lr, lr\n",
            "2:\n",
            $r0,
            $r2,
            $r4,
            $r8,
            "vmov q0[2], q0[0], r0, r4\n",
            "vmov q0[3], q0[1], r2, r8\n",
            "vldrw.u32 q1, [{src}], #16\n",
            "vadd.i32 q0, q0, q1\n",
            "vstrw.32 q0, [{dst}], #16\n",
            "le lr, 2b\n",
        )
    };
}

/// Defines a pass over `nb` blocks of four filter rows for one row
/// length: `$x` lists the full vectors of the row (loaded from `x` at the
/// offsets `$off`), `$tail` (if present) the register of its predicated
/// tail.
macro_rules! pass_fn {
    // Full vectors only; `contiguous`: the chunk is the whole row, rows
    // back to back.
    ($name:ident, contiguous, [$($x:literal),+], [$($off:literal),+]) => {
        /// # Safety
        /// See [`pass`].
        unsafe fn $name(x: *const i8, _t: usize, w: *const i8, _rest: usize,
                        src: *const i32, dst: *mut i32, nb: usize) {
            asm!(
                $(concat!("vldrb.u8 ", $x, ", [{x}, #", $off, "]"),)+
                block_loop!(row_full!("r0"; $($x),+), row_full!("r2"; $($x),+),
                            row_full!("r4"; $($x),+), row_full!("r8"; $($x),+)),
                x = in(reg) x,
                w = inout(reg) w => _,
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                inout("lr") nb => _,
                out("r0") _, out("r2") _, out("r4") _, out("r8") _,
                out("q0") _, out("q1") _, out("q4") _, out("q5") _, out("q6") _, out("q7") _,
                options(nostack),
            );
        }
    };
    // Full vectors only, the next row `rest` bytes after the chunk.
    ($name:ident, strided, [$($x:literal),+], [$($off:literal),+]) => {
        /// # Safety
        /// See [`pass`].
        unsafe fn $name(x: *const i8, _t: usize, w: *const i8, rest: usize,
                        src: *const i32, dst: *mut i32, nb: usize) {
            asm!(
                $(concat!("vldrb.u8 ", $x, ", [{x}, #", $off, "]"),)+
                block_loop!(
                    concat!(row_full!("r0"; $($x),+), "add {w}, {w}, {rest}\n"),
                    concat!(row_full!("r2"; $($x),+), "add {w}, {w}, {rest}\n"),
                    concat!(row_full!("r4"; $($x),+), "add {w}, {w}, {rest}\n"),
                    concat!(row_full!("r8"; $($x),+), "add {w}, {w}, {rest}\n")),
                x = in(reg) x,
                w = inout(reg) w => _,
                rest = in(reg) rest,
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                inout("lr") nb => _,
                out("r0") _, out("r2") _, out("r4") _, out("r8") _,
                out("q0") _, out("q1") _, out("q4") _, out("q5") _, out("q6") _, out("q7") _,
                options(nostack),
            );
        }
    };
    // Full vectors and a predicated tail of `t` bytes in `$tail`.
    ($name:ident, tail, [$($x:literal),+], [$($off:literal),+], $tail:literal, $toff:literal) => {
        /// # Safety
        /// See [`pass`].
        unsafe fn $name(x: *const i8, t: usize, w: *const i8, rest: usize,
                        src: *const i32, dst: *mut i32, nb: usize) {
            asm!(
                $(concat!("vldrb.u8 ", $x, ", [{x}, #", $off, "]"),)+
                "vctp.8 {t}",
                "vpst",
                concat!("vldrbt.u8 ", $tail, ", [{x}, #", $toff, "]"),
                block_loop!(
                    concat!(row_full!("r0"; $($x),+), row_tail!("r0", $tail, "vmladava.s8")),
                    concat!(row_full!("r2"; $($x),+), row_tail!("r2", $tail, "vmladava.s8")),
                    concat!(row_full!("r4"; $($x),+), row_tail!("r4", $tail, "vmladava.s8")),
                    concat!(row_full!("r8"; $($x),+), row_tail!("r8", $tail, "vmladava.s8"))),
                x = in(reg) x,
                t = in(reg) t,
                w = inout(reg) w => _,
                rest = in(reg) rest,
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                inout("lr") nb => _,
                out("r0") _, out("r2") _, out("r4") _, out("r8") _,
                out("q0") _, out("q1") _, out("q4") _, out("q5") _, out("q6") _, out("q7") _,
                options(nostack),
            );
        }
    };
    // Only a predicated tail (a last chunk shorter than 16 bytes).
    ($name:ident, tail_only) => {
        /// # Safety
        /// See [`pass`].
        unsafe fn $name(x: *const i8, t: usize, w: *const i8, rest: usize,
                        src: *const i32, dst: *mut i32, nb: usize) {
            asm!(
                "vctp.8 {t}",
                "vpst",
                "vldrbt.u8 q4, [{x}]",
                block_loop!(row_tail!("r0", "q4", "vmladav.s8"),
                            row_tail!("r2", "q4", "vmladav.s8"),
                            row_tail!("r4", "q4", "vmladav.s8"),
                            row_tail!("r8", "q4", "vmladav.s8")),
                x = in(reg) x,
                t = in(reg) t,
                w = inout(reg) w => _,
                rest = in(reg) rest,
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                inout("lr") nb => _,
                out("r0") _, out("r2") _, out("r4") _, out("r8") _,
                out("q0") _, out("q1") _, out("q4") _,
                options(nostack),
            );
        }
    };
}

pass_fn!(pass_c2, contiguous, ["q4", "q5"], ["0", "16"]);
pass_fn!(pass_c3, contiguous, ["q4", "q5", "q6"], ["0", "16", "32"]);
pass_fn!(
    pass_c4,
    contiguous,
    ["q4", "q5", "q6", "q7"],
    ["0", "16", "32", "48"]
);
pass_fn!(pass_s1, strided, ["q4"], ["0"]);
pass_fn!(pass_s2, strided, ["q4", "q5"], ["0", "16"]);
pass_fn!(pass_s3, strided, ["q4", "q5", "q6"], ["0", "16", "32"]);
pass_fn!(
    pass_s4,
    strided,
    ["q4", "q5", "q6", "q7"],
    ["0", "16", "32", "48"]
);
pass_fn!(pass_t0, tail_only);
pass_fn!(pass_t1, tail, ["q4"], ["0"], "q5", "16");
pass_fn!(pass_t2, tail, ["q4", "q5"], ["0", "16"], "q6", "32");
pass_fn!(
    pass_t3,
    tail,
    ["q4", "q5", "q6"],
    ["0", "16", "32"],
    "q7",
    "48"
);

/// Adds the products of the chunk `x[..kc]` (`0 < kc ≤ 64`) with the
/// same-length pieces of `4·nb` filter rows, the first starting at `w`
/// and each `k` bytes after the previous, to the `4·nb` words at `src`,
/// writing the sums to `dst` (which may be `src`).
///
/// # Safety
/// `x[..kc]` is readable; for every row `r < 4·nb`, the `kc` bytes at
/// `w + r·k` are readable; `src` and `dst` are 4-byte aligned and hold
/// `4·nb` words (readable, writable); `nb > 0`. Compiled only with the
/// `mve` feature on 32-bit Arm. The tail variants set the vector
/// predicate (`VCTP`), which `asm!` lets a block clobber without
/// declaring it.
unsafe fn pass(
    x: *const i8,
    kc: usize,
    w: *const i8,
    k: usize,
    src: *const i32,
    dst: *mut i32,
    nb: usize,
) {
    let (nf, t) = (kc / 16, kc % 16);
    // After the chunk's loads the filter pointer is `16·nf` bytes into
    // its piece (the tail load does not move it); `rest` more bytes reach
    // the next row's piece.
    let rest = k - 16 * nf;
    match (nf, t, rest == 0) {
        (2, 0, true) => pass_c2(x, t, w, rest, src, dst, nb),
        (3, 0, true) => pass_c3(x, t, w, rest, src, dst, nb),
        (4, 0, true) => pass_c4(x, t, w, rest, src, dst, nb),
        (1, 0, _) => pass_s1(x, t, w, rest, src, dst, nb),
        (2, 0, _) => pass_s2(x, t, w, rest, src, dst, nb),
        (3, 0, _) => pass_s3(x, t, w, rest, src, dst, nb),
        (4, 0, _) => pass_s4(x, t, w, rest, src, dst, nb),
        (0, _, _) => pass_t0(x, t, w, rest, src, dst, nb),
        (1, _, _) => pass_t1(x, t, w, rest, src, dst, nb),
        (2, _, _) => pass_t2(x, t, w, rest, src, dst, nb),
        _ => pass_t3(x, t, w, rest, src, dst, nb),
    }
}

/// Requantizes `nb` blocks of four accumulators at `acc` with the blocked
/// table at `p` (`[mult ×4, left ×4, −right ×4]` per block; the sequence
/// of [`super::shared::requant4`]), adds the output zero point `zp`,
/// clamps to `[lo, hi]` and stores the int8 results at `out`. `plain`:
/// the table is [`super::super::table_is_plain`], so the left shift and the
/// mask are left out (11 instructions per block instead of 15).
///
/// # Safety
/// `acc` holds `4·nb` words and `p` `12·nb`, both 4-byte aligned; `out`
/// has room for `4·nb` bytes; `nb > 0`. Compiled only with the `mve`
/// feature on 32-bit Arm.
unsafe fn requant_run(
    acc: *const i32,
    p: *const i32,
    zp_lo_hi: [i32; 3],
    plain: bool,
    out: *mut i8,
    nb: usize,
) {
    macro_rules! requant_loop {
        ($($shift:literal),*; $($sign:literal),*) => {
            asm!(
                "vdup.32 q5, {zp}",
                "vdup.32 q6, {lo}",
                "vdup.32 q7, {hi}",
                "dls lr, lr",
                "2:",
                "vldrw.u32 q0, [{acc}], #16",
                $($shift,)*
                "vldrw.u32 q1, [{p}], #48",
                "vqrdmulh.s32 q0, q0, q1",
                "vldrw.u32 q2, [{p}, #-16]",
                $($sign,)*
                "vqadd.s32 q0, q0, q1",
                "vrshl.s32 q0, q0, q2",
                "vqadd.s32 q0, q0, q5",
                "vmax.s32 q0, q0, q6",
                "vmin.s32 q0, q0, q7",
                "vstrb.32 q0, [r0], #4",
                "le lr, 2b",
                zp = in(reg) zp_lo_hi[0],
                lo = in(reg) zp_lo_hi[1],
                hi = in(reg) zp_lo_hi[2],
                acc = inout(reg) acc => _,
                p = inout(reg) p => _,
                inout("r0") out => _,
                inout("lr") nb => _,
                out("q0") _, out("q1") _, out("q2") _, out("q5") _, out("q6") _, out("q7") _,
                options(nostack),
            )
        };
    }
    if plain {
        // Every right shift is at least one: the sign of `x` alone says
        // whether to lower it before the rounding shift.
        requant_loop!(; "vshr.s32 q1, q0, #31");
    } else {
        requant_loop!(
            "vldrw.u32 q1, [{p}, #16]", "vshl.s32 q0, q0, q1";
            "vand q1, q0, q2", "vshr.s32 q1, q1, #31"
        );
    }
}

/// The frame both row kernels share: the whole blocks of four channels
/// that `out`, `fb`, `blocks` and `w` (`[Co, k]`) all hold, in groups of
/// at most [`GROUP`] channels; per group `sums(b0, nb, acc)` writes the
/// `4·nb` sums (folded bias included) of channels `4·b0..` to `acc` (a
/// `GROUP`-word buffer), which [`requant_run`] then requantizes into
/// `out`. `sums` is called only with `patch.len() ≥ k > 0`, `4·(b0 + nb)
/// ≤ fb.len()` and `4·(b0 + nb)·k ≤ w.len()`. Returns how many channels
/// were written.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn by_groups(
    patch: &[i8],
    w: &[i8],
    k: usize,
    fb: &[i32],
    blocks: &[i32],
    q: &crate::kernels::QuantIo,
    plain: bool,
    out: &mut [i8],
    mut sums: impl FnMut(usize, usize, *mut i32),
) -> usize {
    if k == 0 || patch.len() < k {
        return 0;
    }
    let n4 = (out.len() / 4)
        .min(fb.len() / 4)
        .min(blocks.len() / REQUANT_BLOCK_WORDS);
    if n4.checked_mul(4 * k).is_none_or(|b| b > w.len()) {
        return 0;
    }
    // Written by each group's sums before anything reads it (no zeroing
    // per pixel).
    let mut acc = core::mem::MaybeUninit::<[i32; GROUP]>::uninit();
    let acc = acc.as_mut_ptr().cast::<i32>();
    let mut b0 = 0;
    while b0 < n4 {
        let nb = (n4 - b0).min(GROUP / 4);
        sums(b0, nb, acc);
        // SAFETY: `acc` holds the `4·nb` sums; the table words of blocks
        // `b0..b0 + nb` are inside `blocks` (`n4` bound) and `out` has
        // room for channels `4·b0 .. 4·(b0 + nb)`; `i32` data is aligned.
        unsafe {
            requant_run(
                acc,
                blocks.as_ptr().add(REQUANT_BLOCK_WORDS * b0),
                [q.out_zp, q.act_min, q.act_max],
                plain,
                out.as_mut_ptr().add(4 * b0),
                nb,
            );
        }
        b0 += nb;
    }
    4 * n4
}

/// Whether [`row_times_filters`] beats [`row_times_filters_stream`] for rows of `k`
/// bytes and `co` output channels (measured on the MLPerf Tiny models):
/// each 64-byte chunk of the row costs a pass over the filters with its
/// own setup, which needs enough channels to pay off.
pub fn suits(k: usize, co: usize) -> bool {
    let chunks = k.div_ceil(CHUNK);
    k > 16 && chunks <= 2 && co >= 32 * chunks * chunks
}

/// One input row `patch[..k]` (`k > 0`) times the filter rows
/// `w = [Co, k]`, plus the folded bias `fb`, requantized with the blocked
/// table `blocks` (`plain`: see [`requant_run`]) and the output
/// constants of `q`, into `out`: whole
/// blocks of four channels, in groups of [`GROUP`], each group summed in
/// passes over 64-byte chunks of the row, then requantized. Returns how
/// many channels it wrote; the caller finishes the rest.
#[allow(clippy::too_many_arguments)]
pub fn row_times_filters(
    patch: &[i8],
    w: &[i8],
    k: usize,
    fb: &[i32],
    blocks: &[i32],
    q: &crate::kernels::QuantIo,
    plain: bool,
    out: &mut [i8],
) -> usize {
    by_groups(patch, w, k, fb, blocks, q, plain, out, |b0, nb, acc| {
        let mut start = 0;
        if k <= CHUNK {
            // SAFETY: as below, with the one chunk `patch[..k]` and the
            // folded bias as `src`.
            unsafe {
                pass(
                    patch.as_ptr(),
                    k,
                    w.as_ptr().add(4 * b0 * k),
                    k,
                    fb[4 * b0..].as_ptr(),
                    acc,
                    nb,
                )
            };
            start = k;
        }
        while start < k {
            let kc = (k - start).min(CHUNK);
            let src = if start == 0 {
                fb[4 * b0..].as_ptr()
            } else {
                acc.cast_const()
            };
            // SAFETY: [`by_groups`]'s bounds: the chunk `patch[start..start
            // + kc]` is inside `patch[..k]`; rows `4·b0 .. 4·(b0 + nb)` are
            // within the rows `w` holds, so each row's piece `[start, start
            // + kc)` is inside `w`; `src` is the folded bias from channel
            // `4·b0` (inside `fb`) or `acc`, which holds `GROUP ≥ 4·nb`
            // words (the first pass writes them all before a later one
            // reads them); both are `i32` data, so aligned.
            unsafe {
                pass(
                    patch.as_ptr().add(start),
                    kc,
                    w.as_ptr().add(4 * b0 * k + start),
                    k,
                    src,
                    acc,
                    nb,
                );
            }
            start += kc;
        }
    })
}
