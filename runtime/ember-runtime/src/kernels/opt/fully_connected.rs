//! int8 fully connected with the input zero point folded into the bias
//! (weights symmetric, zero point 0): four outputs per pass over the input
//! row. `fully_connected_s8_opt_for` is the one place it picks its
//! instruction set.

use super::super::{check_len, check_requant, QuantIo, Requant};
use super::epilogue::Epilogue;
use super::rows::{finish_row, row_times_filters};
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
    // Helium and NEON: TFLite's single rounding (Helium: one multiplier
    // for the tensor) in the fused vector kernels, whole blocks of four
    // outputs; the rest of each row one output at a time.
    if let Requant::FixedSingle(pairs) = rq {
        // (Only the Helium and NEON builds read `pairs` here.)
        let vector = by_isa!(
            mve: pairs.len() == 2,
            dsp: {
                let _ = pairs;
                false
            },
            neon: true,
            portable: {
                let _ = pairs;
                false
            },
        );
        if vector {
            for r in 0..rows {
                let (xr, yr) = (&x[r * k..(r + 1) * k], &mut y[r * n..(r + 1) * n]);
                let done = by_isa!(
                    mve: super::mve::fully_connected::fc_row_single(
                        xr,
                        w,
                        k,
                        folded_bias,
                        pairs[0],
                        pairs[1],
                        &q,
                        yr
                    ),
                    dsp: 0,
                    // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
                    // condition for this arm).
                    neon: unsafe {
                        super::neon::fully_connected::fc_row_single(xr, w, k, folded_bias, pairs, &q, yr)
                    },
                    portable: 0,
                );
                finish_row(xr, w, k, folded_bias, rq, &q, done, yr);
            }
            return Ok(());
        }
    }
    with_epilogue!(rq, q, fixed: FIXED, any: true, e => run(x, rows, k, w, packed, n, folded_bias, e, y));
    Ok(())
}

/// The other requantizations with this build's instruction set: the DSP
/// kernel on the compiler's widened weights, NEON four input rows by four
/// weight rows per block, elsewhere a row at a time, four weight rows per
/// pass with the four-channel epilogue (Helium: the fused asm block).
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
    let done = by_isa!(
        mve: false,
        dsp: super::dsp::fully_connected::run(x, rows, k, w, packed, n, folded_bias, e, y),
        neon: {
            super::rows::for_each_dot(x, rows, k, w, n, |r, c, a| {
                y[r * n + c] = e.apply(a.wrapping_add(folded_bias[c]), c);
            });
            true
        },
        portable: false,
    );
    let _ = packed;
    if done {
        return;
    }
    for r in 0..rows {
        let (xr, yr) = (&x[r * k..(r + 1) * k], &mut y[r * n..(r + 1) * n]);
        row_times_filters(xr, w, k, folded_bias, e, yr);
    }
}
