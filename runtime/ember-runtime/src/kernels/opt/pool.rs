//! int8 global average pooling (the window is the whole image, no
//! padding, one output pixel): channel sums accumulated row by row in a
//! vectorizable loop, then one rounding division per channel.

use super::super::{check_len, sat_i8, Shape4};
use crate::error::{Error, Result};

/// Channels summed per pass (the accumulators live on the stack).
const CHUNK: usize = 64;

/// Scratch bytes [`global_avg_pool_s8_opt`] needs (none).
pub fn global_avg_pool_s8_opt_scratch_size() -> usize {
    0
}

/// Bit-exact with [`crate::kernels::pool::avg_pool_s8_zp`] for a window
/// covering the whole `[N, H, W, C]` input without padding (`ys = [N, 1,
/// 1, C]`): `round(Σ (x − zero_point) / (H·W)) + zero_point`, clamped.
#[allow(clippy::too_many_arguments)]
pub fn global_avg_pool_s8_opt(
    x: &[i8],
    xs: Shape4,
    round_half_even: bool,
    zero_point: i32,
    act_min: i32,
    act_max: i32,
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    if ys.n != xs.n || ys.h != 1 || ys.w != 1 || ys.c != xs.c {
        return Err(Error::ShapeMismatch("global pool: output shape"));
    }
    check_len(x.len(), xs.numel(), "global pool: input length")?;
    check_len(y.len(), ys.numel(), "global pool: output length")?;
    let (c, pixels) = (xs.c, xs.h * xs.w);
    // Σ x fits i32: at most 2^31 / 128 pixels, and the count must too.
    if pixels == 0 || pixels > (1 << 23) {
        return Err(Error::ShapeMismatch("global pool: window size"));
    }
    let count = pixels as i32;
    // The zero point is an int8 value (validated), so this fits i32.
    let zp_total = zero_point.wrapping_mul(count);
    for b in 0..xs.n {
        let image = &x[b * pixels * c..(b + 1) * pixels * c];
        let mut c0 = 0;
        while c0 < c {
            let n = CHUNK.min(c - c0);
            let mut acc = [0i32; CHUNK];
            let acc = &mut acc[..n];
            // The one place pooling picks its instruction set: Helium
            // sums 16 channels per step, the loop below the rest.
            let done = by_isa!(mve: super::mve::pool::column_sums16(image, c, c0, acc), else: 0);
            for px in image.chunks_exact(c) {
                for (a, &v) in acc[done..].iter_mut().zip(&px[c0 + done..c0 + n]) {
                    *a += v as i32;
                }
            }
            for (o, &s) in y[b * c + c0..b * c + c0 + n].iter_mut().zip(acc.iter()) {
                // |Σx − zp·count| ≤ 255·2^23 and the rounding term adds at
                // most 2^22: i32 holds it (hardware division on Cortex-M).
                let avg = div_round_i32(s.wrapping_sub(zp_total), count, round_half_even);
                *o = sat_i8(avg.saturating_add(zero_point), act_min, act_max);
            }
            c0 += n;
        }
    }
    Ok(())
}

/// [`crate::kernels::pool`]'s rounding division in i32, for operands whose
/// i64 computation cannot leave the i32 range (so the results agree):
/// half away from zero, or half to even.
fn div_round_i32(num: i32, den: i32, half_even: bool) -> i32 {
    if half_even {
        let q = num.div_euclid(den);
        let r = num.rem_euclid(den);
        if r > den - r || (r == den - r && q % 2 != 0) {
            q + 1
        } else {
            q
        }
    } else if num > 0 {
        (num + den / 2) / den
    } else {
        (num - den / 2) / den
    }
}
