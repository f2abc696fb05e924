//! Convolution: receptive fields widened to halfword pairs
//! ([`widen_slot`]) and multiplied two pixels at a time by pairs of filter
//! rows (2×2 `SMLAD` blocks), from the int8 filter or the compiler's
//! widened copy; and the convolution loop that drives them ([`run`]).

use super::shared::{requant4, sxtb16, sxtb16_ror8, word, OutBounds};
use crate::kernels::opt::dsp_weights_len;
use crate::kernels::opt::epilogue::{store4, Epilogue};
use crate::kernels::opt::im2col::field;
use crate::kernels::opt::rows::row_times_filters;
use crate::kernels::opt::REQUANT_BLOCK_WORDS;
use crate::kernels::{Shape4, Window};
use core::arch::asm;

/// Words one widened field of `k` values takes ([`widen_slot`] writes two).
pub const fn packed_words(k: usize) -> usize {
    k / 2 + 4
}

/// Widens one input row (`src`, `k` values) into slot `slot` (0 or 1) of
/// a two-row buffer the way [`dot2x2_pair`] reads it: for each group of
/// four values `[a, b, c, d]` of row 0, the halfword pairs `(a, c)` and
/// `(b, d)` (the pairs `SXTB16` makes of a weight word), then row 1's; after the groups, row 0's last `k % 4` values one
/// per word, then row 1's. `dst` holds at least `2·`[`packed_words`]`(k)`
/// words.
#[inline]
pub fn widen_slot(src: &[i8], slot: usize, dst: &mut [u32]) {
    let k = src.len();
    let body = k & !3;
    let slot = slot.min(1);
    for (a, d) in src[..body].chunks_exact(4).zip(dst.chunks_exact_mut(4)) {
        let v = word(a);
        d[2 * slot] = sxtb16(v);
        d[2 * slot + 1] = sxtb16_ror8(v);
    }
    let at = body + slot * (k - body);
    for (d, &s) in dst.iter_mut().skip(at).zip(&src[body..]) {
        *d = s as i32 as u32;
    }
}

/// One group of four values of [`dot2x2_pair`] and [`dot2x2_rows`]: the
/// widened pairs of both input rows at `{p}` (the first one read twice),
/// the weight word of each filter row (`{wr} + {gap}`, then `{wr}`) split
/// by `SXTB16`, and eight `SMLAD`s into `{a00}`, `{a01}`, `{a10}`, `{a11}`.
macro_rules! dot2x2_group {
    () => {
        concat!(
            "ldrd {xa}, {xb}, [{p}], #8\n",
            "ldr {v}, [{wr}, {gap}]\n",
            "sxtb16 {t}, {v}\n",
            "smlad {a01}, {xa}, {t}, {a01}\n",
            "sxtb16 {t}, {v}, ror #8\n",
            "smlad {a01}, {xb}, {t}, {a01}\n",
            "ldrd {xa}, {xb}, [{p}], #8\n",
            "smlad {a11}, {xb}, {t}, {a11}\n",
            "sxtb16 {t}, {v}\n",
            "smlad {a11}, {xa}, {t}, {a11}\n",
            "ldr {v}, [{wr}], #4\n",
            "sxtb16 {t}, {v}\n",
            "smlad {a10}, {xa}, {t}, {a10}\n",
            "sxtb16 {t}, {v}, ror #8\n",
            "smlad {a10}, {xb}, {t}, {a10}\n",
            "ldrd {xa}, {xb}, [{p}, #-16]\n",
            "smlad {a00}, {xb}, {t}, {a00}\n",
            "sxtb16 {t}, {v}\n",
            "smlad {a00}, {xa}, {t}, {a00}\n",
        )
    };
}

/// Two input rows widened by [`widen_slot`] (`xs`) against two weight rows
/// `w0`, `w1`: `[x0·w0, x0·w1, x1·w0, x1·w1]` over `k` values. The groups
/// of four run in one `asm!` with every value in a register: per group
/// three `LDRD`s of input pairs (one re-read), two weight words, six
/// `SXTB16` and eight `SMLAD`s — 21 instructions for 16
/// multiply-accumulates, where LLVM's loop spilled to the stack and took
/// 30.
pub fn dot2x2_pair(xs: &[u32], k: usize, w0: &[i8], w1: &[i8]) -> [i32; 4] {
    let body = k & !3;
    let groups = body / 4;
    let (mut a00, mut a01, mut a10, mut a11) = (0i32, 0i32, 0i32, 0i32);
    let rows_ok = w0.len() >= k && w1.len() >= k;
    let xs_ok = xs.len() >= body + 2 * (k - body);
    if !rows_ok || !xs_ok {
        return [0; 4];
    }
    // Row 1 is reached from row 0's pointer by this offset (bytes).
    let gap = (w1.as_ptr() as usize).wrapping_sub(w0.as_ptr() as usize);
    if groups > 0 {
        // SAFETY: group `g < groups` reads the words `xs[4g..4g+4]` (inside
        // `xs`: `4·groups = body ≤ xs.len()`, 4-byte aligned as `u32`s
        // for `LDRD`) and the four bytes at `w0[4g..]` and at `w0 + gap +
        // 4g = w1[4g..]` (`4g + 4 ≤ body ≤ k ≤` both lengths; unaligned
        // word loads are fine on these cores). Only the declared
        // registers and the flags are written.
        unsafe {
            asm!(
                "2:",
                dot2x2_group!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                p = inout(reg) xs.as_ptr() => _,
                wr = inout(reg) w0.as_ptr() => _,
                gap = in(reg) gap,
                n = inout(reg) groups => _,
                xa = out(reg) _,
                xb = out(reg) _,
                v = out(reg) _,
                t = out(reg) _,
                a00 = inout(reg) a00,
                a01 = inout(reg) a01,
                a10 = inout(reg) a10,
                a11 = inout(reg) a11,
                options(nostack, readonly),
            );
        }
    }
    let (tail0, tail1) = xs[body..body + 2 * (k - body)].split_at(k - body);
    for (j, (&u, &v)) in (body..k).zip(tail0.iter().zip(tail1)) {
        let (u, v) = (u as i32, v as i32);
        let (p, q) = (w0[j] as i32, w1[j] as i32);
        a00 = a00.wrapping_add(u.wrapping_mul(p));
        a01 = a01.wrapping_add(u.wrapping_mul(q));
        a10 = a10.wrapping_add(v.wrapping_mul(p));
        a11 = a11.wrapping_add(v.wrapping_mul(q));
    }
    [a00, a01, a10, a11]
}

/// What [`dot2x2_rows`]'s `asm!` keeps in memory between row pairs (it
/// has no register left for it), in the order the code reads it.
#[repr(C)]
#[allow(dead_code)] // read and written by the asm only
struct RowsCtx {
    /// First word of the widened input pair.
    xs: *const u32,
    /// Groups of four values per row.
    groups: usize,
    /// Folded bias of the next row pair.
    fb: *const i32,
    /// Pixel 0's next sums.
    acc0: *mut i32,
    /// Pixel 1's next sums.
    acc1: *mut i32,
    /// Bytes from the end of a row's groups to the next pair's first row.
    advance: usize,
    /// Row pairs left.
    pairs: usize,
}

/// The `asm!` of [`dot2x2_rows`] and [`dot2x2_rows_wide`]: per row pair,
/// the bias into the four sums, the `$group` body (an odd group first,
/// then two per iteration), the sums stored, `$next` (reload the pair
/// count into `{n}`, stepping the weight pointer where the layout needs
/// it), the next pair. The context pointer rides in the block's own 8
/// bytes of stack; `$extra` are further operands.
macro_rules! rows_2x2_asm {
    ($ctx:expr, $w:expr, $group:ident, [$($next:literal),*], $($extra:tt)*) => {
        asm!(
            "sub sp, sp, #8",
            "str {n}, [sp]",
            "3:",
            "ldr {t}, [sp]",
            "ldr {v}, [{t}, #8]",
            "ldrd {a00}, {a01}, [{v}], #8",
            "str {v}, [{t}, #8]",
            "mov {a10}, {a00}",
            "mov {a11}, {a01}",
            "ldrd {p}, {n}, [{t}]",
            "tst {n}, #1",
            "beq 4f",
            $group!(),
            "4:",
            "lsrs {n}, {n}, #1",
            "beq 5f",
            "2:",
            $group!(),
            $group!(),
            "subs {n}, {n}, #1",
            "bne 2b",
            "5:",
            "ldr {t}, [sp]",
            "ldr {v}, [{t}, #12]",
            "strd {a00}, {a01}, [{v}], #8",
            "str {v}, [{t}, #12]",
            "ldr {v}, [{t}, #16]",
            "strd {a10}, {a11}, [{v}], #8",
            "str {v}, [{t}, #16]",
            $($next,)*
            "subs {n}, {n}, #1",
            "str {n}, [{t}, #24]",
            "bne 3b",
            "add sp, sp, #8",
            n = inout(reg) $ctx => _,
            wr = inout(reg) $w => _,
            p = out(reg) _,
            xa = out(reg) _,
            xb = out(reg) _,
            v = out(reg) _,
            t = out(reg) _,
            a00 = out(reg) _,
            a01 = out(reg) _,
            a10 = out(reg) _,
            a11 = out(reg) _,
            $($extra)*
        )
    };
}

/// [`dot2x2_pair`] for every pair of consecutive weight rows `w[2j·k..]`,
/// `w[(2j+1)·k..]` of `w` (`2·pairs` rows of `k` values), in one `asm!`:
/// the sums of rows `2j` and `2j + 1` start from `fb[2j..2j + 2]` and land
/// in `acc0[2j..2j + 2]` (input row 0 of `xs`) and `acc1[2j..2j + 2]` (row
/// 1). The group body of [`dot2x2_pair`], two groups per iteration (20
/// instructions per 16 multiply-accumulates); between row pairs about
/// twenty instructions instead of a call, the bias additions and the spills
/// around it. Values past the last whole group of four
/// (`k % 4`) are left to the caller. Returns the number of rows done
/// (`2·pairs`, or 0 if a slice is too short).
pub fn dot2x2_rows(
    xs: &[u32],
    k: usize,
    w: &[i8],
    pairs: usize,
    fb: &[i32],
    acc0: &mut [i32],
    acc1: &mut [i32],
) -> usize {
    let groups = k / 4;
    let rows = 2 * pairs;
    let fits = rows.checked_mul(k).is_some_and(|n| n <= w.len())
        && fb.len() >= rows
        && acc0.len() >= rows
        && acc1.len() >= rows
        && xs.len() >= 4 * groups;
    if pairs == 0 || groups == 0 || !fits {
        return 0;
    }
    let mut ctx = RowsCtx {
        xs: xs.as_ptr(),
        groups,
        fb: fb.as_ptr(),
        acc0: acc0.as_mut_ptr(),
        acc1: acc1.as_mut_ptr(),
        advance: 2 * k - 4 * groups,
        pairs,
    };
    // SAFETY: pair `j < pairs` reads the words `xs[0..4·groups]` (inside
    // `xs`, 4-byte aligned as `u32`s for `LDRD`), the bytes
    // `w[2jk..2jk + 4·groups]` and `w[(2j+1)k..(2j+1)k + 4·groups]` (the
    // row pointer advances by `4·groups` in the loop and by `advance` after
    // it, so it is at `2jk` when pair `j` starts; `2·pairs·k ≤ w.len()`;
    // unaligned word loads are fine on these cores), `fb[2j..2j + 2]` and
    // writes `acc0[2j..2j + 2]`, `acc1[2j..2j + 2]` (`2·pairs ≤` their
    // lengths, checked above; `LDRD`/`STRD` on `i32`s are word aligned).
    // `ctx` lives across the block and is written only through the pointer
    // the block saves in its own 8 bytes of stack, which it releases
    // before it ends. Only the declared registers and the flags are
    // written.
    unsafe {
        rows_2x2_asm!(
            &mut ctx as *mut RowsCtx,
            w.as_ptr(),
            dot2x2_group,
            ["ldrd {v}, {n}, [{t}, #20]", "add {wr}, {wr}, {v}"],
            gap = in(reg) k,
        );
    }
    rows
}

/// One group of four values of [`dot2x2_rows_wide`]: the weights come
/// widened (`[w0, w2]`, `[w1, w3]` halfword pairs of row 0, then row 1, at
/// `{wr}`), so the group is four `LDRD`s, one re-read of row 0 and eight
/// `SMLAD`s — 13 instructions for 16 multiply-accumulates.
macro_rules! dot2x2_group_wide {
    () => {
        concat!(
            "ldrd {xa}, {xb}, [{p}], #8\n",
            "ldrd {v}, {t}, [{wr}], #16\n",
            "smlad {a00}, {xa}, {v}, {a00}\n",
            "smlad {a00}, {xb}, {t}, {a00}\n",
            "ldrd {v}, {t}, [{wr}, #-8]\n",
            "smlad {a01}, {xa}, {v}, {a01}\n",
            "smlad {a01}, {xb}, {t}, {a01}\n",
            "ldrd {xa}, {xb}, [{p}], #8\n",
            "smlad {a11}, {xa}, {v}, {a11}\n",
            "smlad {a11}, {xb}, {t}, {a11}\n",
            "ldrd {v}, {t}, [{wr}, #-16]\n",
            "smlad {a10}, {xa}, {v}, {a10}\n",
            "smlad {a10}, {xb}, {t}, {a10}\n",
        )
    };
}

/// [`dot2x2_rows`] on the compiler's widened filter `pw`
/// ([`super::super::pack_weights_dsp`]'s layout, from the first row pair of the
/// call on): `2·pairs` rows whose `4·⌊k/4⌋` values come as int16 pairs
/// ready for `SMLAD`, so no weight is sign-extended per pixel pair (13
/// instructions per 16 multiply-accumulates instead of 20). Values past
/// the last whole group are left to the caller, as there. Returns the
/// number of rows done (`2·pairs`, or 0 if a slice is too short).
pub fn dot2x2_rows_wide(
    xs: &[u32],
    k: usize,
    pw: &[i16],
    pairs: usize,
    fb: &[i32],
    acc0: &mut [i32],
    acc1: &mut [i32],
) -> usize {
    let groups = k / 4;
    let rows = 2 * pairs;
    let fits = rows.checked_mul(4 * groups).is_some_and(|n| n <= pw.len())
        && fb.len() >= rows
        && acc0.len() >= rows
        && acc1.len() >= rows
        && xs.len() >= 4 * groups;
    if pairs == 0 || groups == 0 || !fits {
        return 0;
    }
    let mut ctx = RowsCtx {
        xs: xs.as_ptr(),
        groups,
        fb: fb.as_ptr(),
        acc0: acc0.as_mut_ptr(),
        acc1: acc1.as_mut_ptr(),
        advance: 0,
        pairs,
    };
    // `LDRD` needs word alignment (the compiler's filter is a 4-byte
    // aligned tensor and callers start at a multiple of four halfwords).
    if !(pw.as_ptr() as usize).is_multiple_of(4) {
        return 0;
    }
    // SAFETY: pair `j < pairs` reads the words `xs[0..4·groups]` (inside
    // `xs`, 4-byte aligned as `u32`s) and the `8·groups` halfwords
    // `pw[8j·groups..]` (the pointer advances 16 bytes per group, so it is
    // there when pair `j` starts; `2·pairs·4·groups ≤ pw.len()`; word
    // aligned, checked above), `fb[2j..2j + 2]` and writes
    // `acc0[2j..2j + 2]`, `acc1[2j..2j + 2]` (`2·pairs ≤` their lengths,
    // checked above; `LDRD`/`STRD` on `i32`s are word aligned). `ctx`
    // lives across the block and is written only through the pointer the
    // block saves in its own 8 bytes of stack, which it releases before it
    // ends. Only the declared registers and the flags are written.
    unsafe {
        rows_2x2_asm!(
            &mut ctx as *mut RowsCtx,
            pw.as_ptr(),
            dot2x2_group_wide,
            ["ldr {n}, [{t}, #24]"],
        );
    }
    rows
}

/// Output channels per [`dot2x2_rows`] call (two pixels'
/// sums on the stack: 512 bytes).
const DSP_ROWS: usize = 64;

/// The DSP convolution: two output pixels per pass over the filters, their
/// receptive fields (gathered into `patch`, `Kh·Kw·Ci` bytes or none for a
/// pointwise convolution) widened to halfword pairs in `wide`, the scratch
/// after it ([`super::super::conv::conv2d_s8_opt_scratch_size`] with
/// `wide`); the filter is the compiler's widened copy `packed` when the
/// blob has one ([`dsp_weights_len`] elements), else `w`. Returns `false`,
/// having written nothing, when `wide` cannot hold two widened fields (a
/// blob planned without it): the caller then runs the portable loop.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<E: Epilogue>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    packed: &[i16],
    folded_bias: &[i32],
    e: E,
    zp: i8,
    win: &Window,
    patch: &mut [i8],
    wide: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> bool {
    let co = ws.n;
    let k = ws.h * ws.w * xs.c;
    let npix = ys.n * ys.h * ys.w;
    let patch_len = patch.len();
    // The compiler's int16 filter for the DSP kernels, when the blob has
    // one (a NEON-layout filter has another length and is not used here).
    let wide_w = (!packed.is_empty() && packed.len() == dsp_weights_len(co, k)).then_some(packed);
    let off = patch_len.next_multiple_of(4) - patch_len;
    let words = packed_words(k);
    let wide = wide
        .get_mut(off..off + 8 * words)
        .and_then(|b| bytemuck::try_cast_slice_mut::<i8, u32>(b).ok());
    if let Some(wide) = wide {
        let xs2 = &mut wide[..2 * words];
        // The blocked table's epilogue bounds, read once for the layer.
        let table_bounds = e.blocks().map(|(blocks, q)| {
            let b = OutBounds::for_table(q.out_zp, q.act_min, q.act_max, blocks);
            (blocks, b)
        });
        // The sums of up to `DSP_ROWS` channels of both pixels
        // (cleared once: each pass writes what it reads back).
        let mut acc = [[0i32; DSP_ROWS]; 2];
        let mut pix = 0;
        while pix + 2 <= npix {
            let f0 = field(x, xs, ws, win, zp, ys, pix, patch);
            widen_slot(f0, 0, xs2);
            let f1 = field(x, xs, ws, win, zp, ys, pix + 1, patch);
            widen_slot(f1, 1, xs2);
            let (o0, o1) = y[pix * co..(pix + 2) * co].split_at_mut(co);
            let row = |c: usize| &w[c * k..(c + 1) * k];
            let mut oc = 0;
            // Fixed-point blocked requantization: up to `DSP_ROWS`
            // output channels of both pixels in one `asm!`, then
            // requantized four at a time from the sums.
            if let Some((blocks, bounds)) = &table_bounds {
                let body = k & !3;
                let (tail0, tail1) = xs2[body..body + 2 * (k - body)].split_at(k - body);
                while oc + 4 <= co {
                    let n = (co - oc).min(DSP_ROWS) & !3;
                    let [a0, a1] = &mut acc;
                    let (a0, a1) = (&mut a0[..n], &mut a1[..n]);
                    let fb = &folded_bias[oc..oc + n];
                    let done = match wide_w {
                        Some(pw) => {
                            dot2x2_rows_wide(xs2, k, &pw[oc * (k / 4 * 4)..], n / 2, fb, a0, a1)
                        }
                        None => dot2x2_rows(xs2, k, &w[oc * k..], n / 2, fb, a0, a1),
                    };
                    if done != n {
                        break;
                    }
                    // Skipped as a whole when `k % 4 = 0`: the per-row
                    // slicing alone cost 15 instructions a row.
                    if body < k {
                        for (r, (s0, s1)) in a0.iter_mut().zip(a1.iter_mut()).enumerate() {
                            let wt = &w[(oc + r) * k + body..(oc + r + 1) * k];
                            for ((&u, &v), &t) in tail0.iter().zip(tail1).zip(wt) {
                                *s0 = s0.wrapping_add((u as i32).wrapping_mul(t as i32));
                                *s1 = s1.wrapping_add((v as i32).wrapping_mul(t as i32));
                            }
                        }
                    }
                    let table = blocks.chunks_exact(REQUANT_BLOCK_WORDS).skip(oc / 4);
                    let outs = o0[oc..oc + n]
                        .chunks_exact_mut(4)
                        .zip(o1[oc..oc + n].chunks_exact_mut(4));
                    for (((p, (y0, y1)), s0), s1) in table
                        .zip(outs)
                        .zip(a0.chunks_exact(4))
                        .zip(a1.chunks_exact(4))
                    {
                        let (Ok(p), Ok(s0), Ok(s1), Ok(y0), Ok(y1)) = (
                            <&[i32; 12]>::try_from(p),
                            <&[i32; 4]>::try_from(s0),
                            <&[i32; 4]>::try_from(s1),
                            <&mut [i8; 4]>::try_from(y0),
                            <&mut [i8; 4]>::try_from(y1),
                        ) else {
                            continue;
                        };
                        requant4(s0, p, bounds, y0);
                        requant4(s1, p, bounds, y1);
                    }
                    oc += n;
                }
            }
            while oc + 4 <= co {
                let a = dot2x2_pair(xs2, k, row(oc), row(oc + 1));
                let b = dot2x2_pair(xs2, k, row(oc + 2), row(oc + 3));
                store4(e, [a[0], a[1], b[0], b[1]], folded_bias, oc, o0);
                store4(e, [a[2], a[3], b[2], b[3]], folded_bias, oc, o1);
                oc += 4;
            }
            while oc < co {
                // A last odd channel pairs with itself.
                let oc1 = (oc + 1).min(co - 1);
                let a = dot2x2_pair(xs2, k, row(oc), row(oc1));
                o0[oc] = e.apply(a[0].wrapping_add(folded_bias[oc]), oc);
                o1[oc] = e.apply(a[2].wrapping_add(folded_bias[oc]), oc);
                if oc1 != oc {
                    o0[oc1] = e.apply(a[1].wrapping_add(folded_bias[oc1]), oc1);
                    o1[oc1] = e.apply(a[3].wrapping_add(folded_bias[oc1]), oc1);
                }
                oc += 2;
            }
            pix += 2;
        }
        if pix < npix {
            let f = field(x, xs, ws, win, zp, ys, pix, patch);
            row_times_filters(f, w, k, folded_bias, e, &mut y[pix * co..(pix + 1) * co]);
        }
        return true;
    }
    false
}
