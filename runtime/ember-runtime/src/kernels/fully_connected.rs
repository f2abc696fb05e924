//! Fully connected: `y[r, j] = Σ_k x[r, k] · w[j, k] + b[j]`, weights `[N, K]`.

use super::{check_len, QuantIo, Requant};
use crate::error::{Error, Result};

/// int8 fully connected, TFLite semantics (input and weight zero points,
/// int32 bias, per-tensor or per-output-channel requantization).
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_s8(
    x: &[i8],
    rows: usize,
    k: usize,
    w: &[i8],
    n: usize,
    w_zp: i32,
    bias: Option<&[i32]>,
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
    if bias.is_some_and(|b| b.len() != n) || (rq.channels() != 1 && rq.channels() != n) {
        return Err(Error::ShapeMismatch(
            "fully connected: bias or requant length",
        ));
    }
    if k == 0 {
        return Err(Error::ShapeMismatch("fully connected: K is zero"));
    }
    for (xr, yr) in x.chunks_exact(k).zip(y.chunks_exact_mut(n.max(1))) {
        for (j, (wr, out)) in w.chunks_exact(k).zip(yr.iter_mut()).enumerate() {
            let mut acc: i32 = 0;
            for (&xv, &wv) in xr.iter().zip(wr) {
                acc = acc.wrapping_add((xv as i32 - q.in_zp) * (wv as i32 - w_zp));
            }
            if let Some(b) = bias {
                acc = acc.wrapping_add(b[j]);
            }
            let v = rq.apply(acc, j).saturating_add(q.out_zp);
            *out = v.clamp(q.act_min, q.act_max) as i8;
        }
    }
    Ok(())
}

/// f32 fully connected, clamped to `[act_min, act_max]`.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_f32(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    act_min: f32,
    act_max: f32,
    y: &mut [f32],
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
    if bias.is_some_and(|b| b.len() != n) || k == 0 {
        return Err(Error::ShapeMismatch("fully connected: bias length or K"));
    }
    for (xr, yr) in x.chunks_exact(k).zip(y.chunks_exact_mut(n.max(1))) {
        for (j, (wr, out)) in w.chunks_exact(k).zip(yr.iter_mut()).enumerate() {
            let mut acc = 0f64;
            for (&xv, &wv) in xr.iter().zip(wr) {
                acc += xv as f64 * wv as f64;
            }
            let mut acc = acc as f32;
            if let Some(b) = bias {
                acc += b[j];
            }
            *out = acc.max(act_min).min(act_max);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_small() {
        let x = [1.0, 2.0, 3.0, -1.0, 0.0, 1.0];
        let w = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5];
        let mut y = [0f32; 4];
        fully_connected_f32(&x, 2, 3, &w, 2, Some(&[1.0, 0.0]), -100.0, 100.0, &mut y).unwrap();
        assert_eq!(y, [-1.0, 3.0, -1.0, 0.0]);
    }

    #[test]
    fn s8_with_zero_points() {
        let x = [3i8, 5];
        let w = [2i8, 4];
        let q = QuantIo {
            in_zp: 1,
            out_zp: -3,
            act_min: -128,
            act_max: 127,
        };
        let mut y = [0i8; 1];
        // (3-1)(2-1) + (5-1)(4-1) = 2 + 12 = 14; +bias 6 = 20; ×0.5 = 10; -3 = 7
        fully_connected_s8(
            &x,
            1,
            2,
            &w,
            1,
            1,
            Some(&[6]),
            Requant::Fixed(&[1 << 30, 0]),
            q,
            &mut y,
        )
        .unwrap();
        assert_eq!(y, [7]);
        assert!(fully_connected_s8(
            &x,
            1,
            2,
            &w,
            2,
            1,
            None,
            Requant::Fixed(&[1 << 30, 0]),
            q,
            &mut y
        )
        .is_err());
    }
}
