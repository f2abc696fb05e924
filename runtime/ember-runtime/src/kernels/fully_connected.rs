//! Fully connected: `y[r, j] = Σ_k x[r, k] · w[j, k] + b[j]`, weights `[N, K]`.

use super::{check_len, check_requant, clamp_f32, sat_i8, QuantIo, Requant};
use crate::error::{Error, Result};

fn check_shapes(
    x: usize,
    rows: usize,
    k: usize,
    w: usize,
    n: usize,
    y: usize,
    bias: Option<usize>,
) -> Result<()> {
    check_len(x, rows.checked_mul(k), "fully connected: input length")?;
    check_len(w, n.checked_mul(k), "fully connected: weight length")?;
    check_len(y, rows.checked_mul(n), "fully connected: output length")?;
    if bias.is_some_and(|b| b != n) {
        return Err(Error::ShapeMismatch("fully connected: bias length"));
    }
    Ok(())
}

/// int8 fully connected, TFLite `FullyConnected` (integer ops) semantics:
/// with `acc = Σ_k (x[r, k] − in_zp)·(w[j, k] − w_zp) + bias[j]`, the output
/// is `y[r, j] = clamp(requant(acc, j) + out_zp)`. `x` is `[rows, k]`, `w`
/// is `[n, k]`, `y` is `[rows, n]`; `rq` is per tensor or per output
/// feature. TFLite requantizes fully connected layers with single rounding
/// ([`Requant::FixedSingle`]).
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
    check_shapes(x.len(), rows, k, w.len(), n, y.len(), bias.map(|b| b.len()))?;
    check_requant(&rq, n, "fully connected: requant channels")?;
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        for (j, out) in y[r * n..(r + 1) * n].iter_mut().enumerate() {
            let wr = &w[j * k..(j + 1) * k];
            let mut acc: i32 = 0;
            for (&xv, &wv) in xr.iter().zip(wr) {
                let xc = (xv as i32).wrapping_sub(q.in_zp);
                let wc = (wv as i32).wrapping_sub(w_zp);
                acc = acc.wrapping_add(xc.wrapping_mul(wc));
            }
            if let Some(b) = bias {
                acc = acc.wrapping_add(b[j]);
            }
            let v = rq.apply(acc, j).saturating_add(q.out_zp);
            *out = sat_i8(v, q.act_min, q.act_max);
        }
    }
    Ok(())
}

/// f32 fully connected (layouts of [`fully_connected_s8`]), clamped to
/// `[act_min, act_max]`. Products are accumulated in f64, rounded to f32,
/// then the bias is added.
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
    check_shapes(x.len(), rows, k, w.len(), n, y.len(), bias.map(|b| b.len()))?;
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        for (j, out) in y[r * n..(r + 1) * n].iter_mut().enumerate() {
            let wr = &w[j * k..(j + 1) * k];
            let mut acc = 0f64;
            for (&xv, &wv) in xr.iter().zip(wr) {
                acc += xv as f64 * wv as f64;
            }
            let mut acc = acc as f32;
            if let Some(b) = bias {
                acc += b[j];
            }
            *out = clamp_f32(acc, act_min, act_max);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::quant::{
        multiply_by_quantized_multiplier_single_rounding, quantize_multiplier,
    };
    use super::*;

    #[test]
    fn f32_small() {
        let x = [1.0, 2.0, 3.0, -1.0, 0.0, 1.0];
        let w = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5];
        let mut y = [0f32; 4];
        fully_connected_f32(&x, 2, 3, &w, 2, Some(&[1.0, 0.0]), -100.0, 100.0, &mut y).unwrap();
        assert_eq!(y, [-1.0, 3.0, -1.0, 0.0]);
        fully_connected_f32(&x, 2, 3, &w, 2, Some(&[1.0, 0.0]), -0.5, 2.0, &mut y).unwrap();
        assert_eq!(y, [-0.5, 2.0, -0.5, 0.0]);
        // K = 0: the output is the bias.
        fully_connected_f32(&[], 2, 0, &[], 2, Some(&[1.0, -2.0]), -9.0, 9.0, &mut y).unwrap();
        assert_eq!(y, [1.0, -2.0, 1.0, -2.0]);
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
        fully_connected_s8(
            &x,
            1,
            2,
            &w,
            1,
            1,
            Some(&[6]),
            Requant::FixedSingle(&[1 << 30, 0]),
            q,
            &mut y,
        )
        .unwrap();
        assert_eq!(y, [7]);
    }

    #[test]
    fn s8_per_channel_two_rows() {
        // rows = 2, k = 3, n = 2, per-output requantization.
        let x = [10i8, -20, 30, 1, 2, 3];
        let w = [1i8, 2, 3, -4, 5, -6];
        let (m0, s0) = quantize_multiplier(0.05);
        let (m1, s1) = quantize_multiplier(0.3);
        let pairs = [m0, s0, m1, s1];
        let q = QuantIo {
            in_zp: 0,
            out_zp: 10,
            act_min: -128,
            act_max: 127,
        };
        let bias = [7, -9];
        let mut y = [0i8; 4];
        fully_connected_s8(
            &x,
            2,
            3,
            &w,
            2,
            0,
            Some(&bias),
            Requant::FixedSingle(&pairs),
            q,
            &mut y,
        )
        .unwrap();
        let dots = [[10 - 40 + 90, -40 - 100 - 180], [1 + 4 + 9, -4 + 10 - 18]];
        for r in 0..2 {
            for j in 0..2 {
                let acc = dots[r][j] + bias[j];
                let v = multiply_by_quantized_multiplier_single_rounding(
                    acc,
                    pairs[2 * j],
                    pairs[2 * j + 1],
                ) + 10;
                assert_eq!(y[r * 2 + j] as i32, v.clamp(-128, 127));
            }
        }
        // 67·0.05 = 3.35, −329·0.3 = −98.7, 21·0.05 = 1.05, −21·0.3 = −6.3; +10
        assert_eq!(y, [13, -89, 11, 4]);
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let x = [3i8, 5];
        let w = [2i8, 4];
        let q = QuantIo {
            in_zp: 1,
            out_zp: -3,
            act_min: -128,
            act_max: 127,
        };
        let rq = Requant::Fixed(&[1 << 30, 0]);
        let mut y = [0i8; 2];
        assert!(fully_connected_s8(&x, 1, 2, &w, 2, 1, None, rq, q, &mut y).is_err());
        assert!(fully_connected_s8(&x, 1, 2, &w, 1, 1, None, rq, q, &mut y).is_err());
        assert!(fully_connected_s8(&x, 1, 2, &w, 1, 1, Some(&[1, 2]), rq, q, &mut y[..1]).is_err());
        assert!(fully_connected_s8(
            &x,
            1,
            2,
            &w,
            1,
            1,
            None,
            Requant::Fixed(&[1, 2, 3]),
            q,
            &mut y[..1]
        )
        .is_err());
        assert!(fully_connected_s8(&x, usize::MAX, 2, &w, 1, 1, None, rq, q, &mut y[..1]).is_err());
        let q = QuantIo {
            in_zp: i32::MIN,
            out_zp: i32::MAX,
            act_min: 9,
            act_max: -9,
        };
        fully_connected_s8(
            &x,
            1,
            2,
            &w,
            1,
            i32::MAX,
            Some(&[i32::MAX]),
            rq,
            q,
            &mut y[..1],
        )
        .unwrap();
        let mut yf = [0f32; 2];
        assert!(
            fully_connected_f32(&[1.0; 4], 2, 2, &[1.0; 2], 1, None, 0.0, 1.0, &mut yf[..1])
                .is_err()
        );
        assert!(
            fully_connected_f32(&[1.0; 4], 2, 2, &[1.0; 2], 1, Some(&[]), 0.0, 1.0, &mut yf)
                .is_err()
        );
    }
}
