//! int8 global average pooling (the window is the whole image, no
//! padding, one output pixel): channel sums accumulated row by row in a
//! vectorizable loop, then one rounding division per channel.

use super::super::pool::div_round;
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
    let count = pixels as i64;
    let zp_total = zero_point as i64 * count;
    for b in 0..xs.n {
        let image = &x[b * pixels * c..(b + 1) * pixels * c];
        let mut c0 = 0;
        while c0 < c {
            let n = CHUNK.min(c - c0);
            let mut acc = [0i32; CHUNK];
            let acc = &mut acc[..n];
            for px in image.chunks_exact(c) {
                for (a, &v) in acc.iter_mut().zip(&px[c0..c0 + n]) {
                    *a += v as i32;
                }
            }
            for (o, &s) in y[b * c + c0..b * c + c0 + n].iter_mut().zip(acc.iter()) {
                let avg = div_round(s as i64 - zp_total, count, round_half_even);
                let v = avg
                    .saturating_add(zero_point as i64)
                    .clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                *o = sat_i8(v, act_min, act_max);
            }
            c0 += n;
        }
    }
    Ok(())
}
