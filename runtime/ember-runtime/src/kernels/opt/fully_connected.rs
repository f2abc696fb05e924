//! int8 fully connected with the input zero point folded into the bias
//! (weights symmetric, zero point 0): four outputs per pass over the input
//! row.

use super::super::{check_len, check_requant, QuantIo, Requant};
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
use super::for_each_dot;
use super::Epilogue;
use crate::error::Result;

/// Scratch bytes [`fully_connected_s8_opt`] needs (none).
pub fn fully_connected_s8_opt_scratch_size() -> usize {
    0
}

/// Bit-exact with [`crate::kernels::fully_connected::fully_connected_s8`]
/// for weight zero point 0, given `folded_bias = fold_bias(bias, w, n,
/// in_zp)`. `x` is `[rows, k]`, `w` `[n, k]`, `y` `[rows, n]`. `packed`
/// is empty or the compiler's [`super::pack_weights_dsp`] copy of `w`
/// (read by the Cortex-M DSP build).
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_s8_opt(
    x: &[i8],
    rows: usize,
    k: usize,
    w: &[i8],
    packed: &[i16],
    n: usize,
    folded_bias: &[i32],
    rq: Requant<'_>,
    q: QuantIo,
    y: &mut [i8],
) -> Result<()> {
    fully_connected_s8_opt_for::<true>(x, rows, k, w, packed, n, folded_bias, rq, q, y)
}

/// [`fully_connected_s8_opt`] without the fixed-point per-channel epilogue
/// unless `FIXED` (the runtime passes TFLite's single multiplier as
/// `Requant::FixedSingle`, so it only needs the general one).
#[allow(clippy::too_many_arguments)]
pub(crate) fn fully_connected_s8_opt_for<const FIXED: bool>(
    x: &[i8],
    rows: usize,
    k: usize,
    w: &[i8],
    packed: &[i16],
    n: usize,
    folded_bias: &[i32],
    rq: Requant<'_>,
    q: QuantIo,
    y: &mut [i8],
) -> Result<()> {
    check_len(
        x.len(),
        rows.checked_mul(k),
        "fully connected: input length",
    )?;
    check_len(w.len(), n.checked_mul(k), "fully connected: weight length")?;
    check_len(
        y.len(),
        rows.checked_mul(n),
        "fully connected: output length",
    )?;
    check_len(
        folded_bias.len(),
        Some(n),
        "fully connected: folded bias length",
    )?;
    check_requant(&rq, n, "fully connected: requant channels")?;
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    if let Requant::FixedSingle(pairs) = rq {
        // Whole blocks of four outputs in vector registers, the rest below.
        for r in 0..rows {
            let (xr, yr) = (&x[r * k..(r + 1) * k], &mut y[r * n..(r + 1) * n]);
            // SAFETY: NEON is enabled for the whole build (the cfg above).
            let done = unsafe {
                super::neon::fully_connected::fc_row_single(xr, w, k, folded_bias, pairs, &q, yr)
            };
            finish_row(xr, w, k, folded_bias, rq, &q, done, yr);
        }
        return Ok(());
    }
    // Helium: TFLite's one multiplier for the tensor in the fused asm
    // block (when it is at most one), the outputs past the last block below.
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    if let Requant::FixedSingle(&[mult, shift]) = rq {
        for r in 0..rows {
            let (xr, yr) = (&x[r * k..(r + 1) * k], &mut y[r * n..(r + 1) * n]);
            let done = super::mve::fully_connected::fc_row_single(
                xr,
                w,
                k,
                folded_bias,
                mult,
                shift,
                &q,
                yr,
            );
            finish_row(xr, w, k, folded_bias, rq, &q, done, yr);
        }
        return Ok(());
    }
    with_epilogue!(rq, q, fixed: FIXED, any: true, e => run(x, rows, k, w, packed, n, folded_bias, e, y));
    Ok(())
}

/// Outputs `from..` of one row, one dot product at a time (the ones a
/// vector block did not cover).
#[cfg(any(
    all(target_arch = "aarch64", target_feature = "neon"),
    all(feature = "mve", target_arch = "arm")
))]
#[allow(clippy::too_many_arguments)]
fn finish_row(
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
        let acc = super::dot::dot_s8(xr, &w[c * k..(c + 1) * k]).wrapping_add(folded_bias[c]);
        *o = super::super::sat_i8(
            rq.apply(acc, c).saturating_add(q.out_zp),
            q.act_min,
            q.act_max,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn run<E: Epilogue>(
    x: &[i8],
    rows: usize,
    k: usize,
    w: &[i8],
    packed: &[i16],
    n: usize,
    folded_bias: &[i32],
    e: E,
    y: &mut [i8],
) {
    // DSP: the compiler's widened weights, four rows per pass.
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    if !packed.is_empty() && packed.len() == super::dsp_weights_len(n, k) {
        for r in 0..rows {
            let (xr, yr) = (&x[r * k..(r + 1) * k], &mut y[r * n..(r + 1) * n]);
            let done = dsp_row(xr, w, packed, k, folded_bias, e, yr);
            for (c, o) in yr.iter_mut().enumerate().skip(done) {
                let acc = super::dot::dot_s8(xr, &w[c * k..(c + 1) * k]);
                *o = e.apply(acc.wrapping_add(folded_bias[c]), c);
            }
        }
        return;
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    let _ = packed;
    // NEON: four input rows by four weight rows per block.
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    for_each_dot(x, rows, k, w, n, |r, c, a| {
        y[r * n + c] = e.apply(a.wrapping_add(folded_bias[c]), c);
    });
    // Elsewhere a row at a time, four weight rows per pass with the
    // four-channel epilogue (Helium: the fused asm block).
    #[cfg(not(all(target_arch = "aarch64", target_feature = "neon")))]
    for r in 0..rows {
        let (xr, yr) = (&x[r * k..(r + 1) * k], &mut y[r * n..(r + 1) * n]);
        super::rows::row_times_filters(xr, w, k, folded_bias, e, yr);
    }
}

/// One input row times the weights, four outputs per pass, on the
/// compiler's widened weights `packed` ([`super::pack_weights_dsp`]): the
/// sums of up to 64 outputs at a time into a stack buffer
/// ([`super::dsp::fully_connected::dot4_rows_wide`], plus the `k % 4` last values from
/// `w`), then the epilogue four at a time. Returns how many outputs it
/// wrote (whole blocks of four); the caller finishes the rest.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
fn dsp_row<E: Epilogue>(
    xr: &[i8],
    w: &[i8],
    packed: &[i16],
    k: usize,
    fb: &[i32],
    e: E,
    yr: &mut [i8],
) -> usize {
    let n = yr.len();
    let body = k & !3;
    let mut acc = [0i32; 64];
    let mut oc = 0;
    while oc + 4 <= n {
        let quads = ((n - oc) / 4).min(acc.len() / 4);
        let a = &mut acc[..4 * quads];
        let pw = packed.get(oc * body..).unwrap_or(&[]);
        let fbs = fb.get(oc..oc + 4 * quads).unwrap_or(&[]);
        if super::dsp::fully_connected::dot4_rows_wide(xr, k, pw, quads, fbs, a) != 4 * quads {
            break;
        }
        if body < k {
            for (r, s) in a.iter_mut().enumerate() {
                let wr = &w[(oc + r) * k + body..(oc + r + 1) * k];
                for (&u, &v) in xr[body..].iter().zip(wr) {
                    *s = s.wrapping_add((u as i32).wrapping_mul(v as i32));
                }
            }
        }
        for (j, (a4, o4)) in a
            .chunks_exact(4)
            .zip(yr[oc..oc + 4 * quads].chunks_exact_mut(4))
            .enumerate()
        {
            if let (Ok(a4), Ok(o4)) = (<[i32; 4]>::try_from(a4), <&mut [i8; 4]>::try_from(o4)) {
                e.apply4(a4, oc + 4 * j, o4);
            }
        }
        oc += 4 * quads;
    }
    oc
}
