//! A row times filter rows, the product every convolution and fully
//! connected kernel ends in: one input row against `[Co, k]` filter rows
//! with the epilogue ([`row_times_filters`]), and blocks of four input rows
//! by four filter rows ([`for_each_dot`]).

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
    let mut oc = 0;
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    if let Some((blocks, q)) = e.blocks() {
        oc = if k <= 16 {
            super::mve::stream::row_times_filters_short(patch, w, k, fb, blocks, q, out)
        } else if super::mve::rows::suits(k, co) {
            super::mve::rows::row_times_filters(patch, w, k, fb, blocks, q, e.plain_table(), out)
        } else {
            super::mve::stream::row_times_filters_stream(
                patch,
                w,
                k,
                fb,
                blocks,
                q,
                e.plain_table(),
                out,
            )
        };
    }
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

/// [`row_times_filters`] for `P` input rows at once (`P` output pixels):
/// each filter vector is loaded once for all of them. The rows hold at
/// least `len >= k` bytes, zeros past `k`: the vector kernel multiplies
/// `len` bytes (reading past the end of a filter row, times zero) where
/// the filter allows it. NEON only.
///
/// `paired`: the filter holds no −128, so the `SMULL`/`SMLAL2` pairing is
/// exact (cores without `SDOT`).
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn rows_times_filters<E: Epilogue, const P: usize>(
    p: [&[i8]; P],
    w: &[i8],
    k: usize,
    len: usize,
    fb: &[i32],
    e: E,
    out: [&mut [i8]; P],
    paired: bool,
) {
    let co = out.iter().map(|o| o.len()).min().unwrap_or(0);
    let mut out = out;
    let mut oc = 0;
    if let (Some((blocks, q)), true) = (e.blocks(), k > 0) {
        let o = out.each_mut().map(|o| &mut **o);
        // SAFETY: NEON is enabled for the whole build (the cfg above) and
        // `SDOT` only after `has_dotprod` found it on this core.
        oc = unsafe {
            if dot::has_dotprod() {
                super::neon::conv::rows_times_filters_dotprod(p, w, k, len, fb, blocks, q, o)
            } else if paired {
                super::neon::conv::rows_times_filters_paired(p, w, k, len, fb, blocks, q, o)
            } else {
                super::neon::conv::rows_times_filters(p, w, k, len, fb, blocks, q, o)
            }
        };
    }
    for (f, o) in p.iter().zip(out.iter_mut()) {
        let f = &f[..k.min(f.len())];
        if oc == 0 {
            row_times_filters(f, w, k, fb, e, o);
            continue;
        }
        for c in oc..co {
            let r = &w[c * k..(c + 1) * k];
            o[c] = e.apply(dot_s8(f, r).wrapping_add(fb[c]), c);
        }
    }
}

/// [`rows_times_filters`] with the filter packed by [`pack_weights_s16`]
/// (lanes are output channels: no horizontal sums). Channels the packed
/// kernel does not cover are computed from `w`. NEON only.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn packed_rows_times_filters<E: Epilogue, const P: usize>(
    p: [&[i8]; P],
    packed: &[i16],
    w: &[i8],
    k: usize,
    fb: &[i32],
    e: E,
    out: [&mut [i8]; P],
) {
    let co = out.iter().map(|o| o.len()).min().unwrap_or(0);
    let mut out = out;
    let done = match e.blocks() {
        Some((blocks, q)) => {
            let o = out.each_mut().map(|o| &mut **o);
            // SAFETY: NEON is enabled for the whole build (the cfg above).
            unsafe { super::neon::conv::packed_times_filters(p, packed, k, fb, blocks, q, o) }
        }
        None => 0,
    };
    if done == 0 {
        return rows_times_filters(p, w, k, k, fb, e, out, false);
    }
    for (f, o) in p.iter().zip(out.iter_mut()) {
        let f = &f[..k.min(f.len())];
        for c in done..co {
            let r = &w[c * k..(c + 1) * k];
            o[c] = e.apply(dot_s8(f, r).wrapping_add(fb[c]), c);
        }
    }
}
