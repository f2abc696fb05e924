//! A row times filter rows, the product every convolution and fully
//! connected kernel ends in: one input row against `[Co, k]` filter rows
//! with the epilogue ([`row_times_filters`]), and blocks of four input rows
//! by four filter rows ([`for_each_dot`]), and the scalar rest of a fully
//! connected row ([`finish_row`]).

use super::super::{sat_i8, QuantIo, Requant};
use super::dot::{self, dot4_s8, dot_s8};
use super::epilogue::{store4, Epilogue};

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
pub(crate) fn row_times_filters<E: Epilogue>(
    patch: &[i8],
    w: &[i8],
    k: usize,
    fb: &[i32],
    e: E,
    out: &mut [i8],
) {
    let co = out.len();
    // Helium: the fused asm kernels take the whole blocks of four channels
    // when the epilogue has a blocked table; the loops below do the rest.
    let mut oc = by_isa!(
        mve: match e.blocks() {
            Some((blocks, q)) if k <= 16 => {
                super::mve::stream::row_times_filters_short(patch, w, k, fb, blocks, q, out)
            }
            Some((blocks, q)) if super::mve::rows::suits(k, co) => {
                super::mve::rows::row_times_filters(patch, w, k, fb, blocks, q, e.plain_table(), out)
            }
            Some((blocks, q)) => super::mve::stream::row_times_filters_stream(
                patch,
                w,
                k,
                fb,
                blocks,
                q,
                e.plain_table(),
                out,
            ),
            None => 0,
        },
        else: 0,
    );
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

/// Outputs `from..` of one fully connected row, one dot product at a time
/// with the reference requantization (the ones a vector block did not
/// cover).
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_row(
    xr: &[i8],
    w: &[i8],
    k: usize,
    folded_bias: &[i32],
    rq: Requant<'_>,
    q: &QuantIo,
    from: usize,
    yr: &mut [i8],
) {
    for (c, o) in yr.iter_mut().enumerate().skip(from) {
        let acc = dot_s8(xr, &w[c * k..(c + 1) * k]).wrapping_add(folded_bias[c]);
        *o = sat_i8(
            rq.apply(acc, c).saturating_add(q.out_zp),
            q.act_min,
            q.act_max,
        );
    }
}
