//! Choosing quantization: each activation's range from what calibration saw
//! (min/max, percentile, least squared error, least KL divergence), the
//! int8 scale and zero point of a range, and each weight channel's scale by
//! least squared error.

use super::observe::{Stats, BINS};
use super::RangeMethod;

/// The fraction of values a percentile range leaves out at each end.
const PERCENTILE_TAIL: f64 = 1e-4;

/// Candidate shrink factors of a range's ends, 1.0 (no clipping) first:
/// steps of 1/75 down to 0.2, then geometric steps down to 0.01 (a few
/// outliers can stretch a range fifty times).
fn shrinks() -> impl Iterator<Item = f64> + Clone {
    let linear = (0..=60).map(|k| 1.0 - k as f64 / 75.0);
    let geometric = (1..=20).map(|k| 0.2 * 0.05f64.powf(k as f64 / 20.0));
    linear.chain(geometric)
}

/// The real range `[lo, hi]` to quantize a tensor into, by `method`.
pub(super) fn choose(s: &Stats, method: RangeMethod) -> (f32, f32) {
    let (lo, hi) = (s.min.min(0.0), s.max.max(0.0));
    if hi <= lo || hi.is_nan() || lo.is_nan() {
        return (lo, hi);
    }
    match method {
        RangeMethod::MinMax => (lo, hi),
        RangeMethod::Percentile => percentile(s),
        RangeMethod::Mse | RangeMethod::Auto => least_error(s, mse),
        RangeMethod::Entropy => least_error(s, kl),
    }
}

/// The range that leaves [`PERCENTILE_TAIL`] of the values out at each
/// end (zero kept inside).
fn percentile(s: &Stats) -> (f32, f32) {
    let total: u64 = s.hist.iter().sum();
    let cut = (total as f64 * PERCENTILE_TAIL) as u64;
    let (mut acc, mut lo_bin) = (0u64, 0);
    for (i, &c) in s.hist.iter().enumerate() {
        acc += c;
        if acc > cut {
            lo_bin = i;
            break;
        }
    }
    let (mut acc, mut hi_bin) = (0u64, BINS - 1);
    for (i, &c) in s.hist.iter().enumerate().rev() {
        acc += c;
        if acc > cut {
            hi_bin = i;
            break;
        }
    }
    let w = (s.max as f64 - s.min as f64) / BINS as f64;
    let lo = s.min as f64 + lo_bin as f64 * w;
    let hi = s.min as f64 + (hi_bin + 1) as f64 * w;
    ((lo as f32).min(0.0), (hi as f32).max(0.0))
}

/// The candidate range (both ends shrunk towards zero independently) with
/// the least `cost`.
fn least_error(s: &Stats, cost: impl Fn(&Stats, f64, f64) -> f64) -> (f32, f32) {
    let (lo, hi) = (s.min.min(0.0) as f64, s.max.max(0.0) as f64);
    let mut best = (f64::INFINITY, lo, hi);
    let lows: Vec<f64> = if lo < 0.0 {
        shrinks().map(|a| lo * a).collect()
    } else {
        vec![0.0]
    };
    let highs: Vec<f64> = if hi > 0.0 {
        shrinks().map(|a| hi * a).collect()
    } else {
        vec![0.0]
    };
    for &l in &lows {
        for &h in &highs {
            let c = cost(s, l, h);
            // Strictly better only: ties keep the wider range.
            if c < best.0 {
                best = (c, l, h);
            }
        }
    }
    (best.1 as f32, best.2 as f32)
}

/// Expected squared error of quantizing the histogram's values into
/// `[lo, hi]` with 256 levels: clipping error outside, a uniform rounding
/// error of step²/12 inside.
fn mse(s: &Stats, lo: f64, hi: f64) -> f64 {
    let step = (hi - lo) / 255.0;
    let inside = step * step / 12.0;
    let mut e = 0.0;
    for (i, &c) in s.hist.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let x = s.center(i);
        let d = if x < lo {
            (x - lo) * (x - lo)
        } else if x > hi {
            (x - hi) * (x - hi)
        } else {
            inside
        };
        e += c as f64 * d;
    }
    e
}

/// Sub-bins per quantization level when measuring KL divergence.
const KL_SUB: usize = 8;

/// KL divergence between the values clipped to `[lo, hi]` and their
/// quantization to 256 levels. The histogram is first re-binned onto
/// `256 · KL_SUB` bins over `[lo, hi]` (counts spread in proportion to
/// overlap), so that every candidate range is measured at the same
/// resolution; the outliers are piled into the end bins of the clipped
/// distribution but not of the quantized one (each level's in-range mass
/// spread evenly over its non-empty bins), so clipping them costs.
fn kl(s: &Stats, lo: f64, hi: f64) -> f64 {
    let m = 256 * KL_SUB;
    let w = (s.max as f64 - s.min as f64) / BINS as f64;
    let dw = (hi - lo) / m as f64;
    if dw.is_nan() || dw <= 0.0 || w.is_nan() || w <= 0.0 {
        return f64::INFINITY;
    }
    let mut inside = vec![0f64; m];
    let (mut below, mut above) = (0f64, 0f64);
    for (i, &c) in s.hist.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let a = s.min as f64 + i as f64 * w;
        let b = a + w;
        let c = c as f64;
        // The part of the bin below lo and above hi.
        if a < lo {
            below += c * ((lo.min(b) - a) / w);
        }
        if b > hi {
            above += c * ((b - hi.max(a)) / w);
        }
        let (ia, ib) = (a.max(lo), b.min(hi));
        if ib <= ia {
            continue;
        }
        let (j0, j1) = (
            (((ia - lo) / dw) as usize).min(m - 1),
            (((ib - lo) / dw) as usize).min(m - 1),
        );
        for (j, slot) in inside.iter_mut().enumerate().take(j1 + 1).skip(j0) {
            let (da, db) = (lo + j as f64 * dw, lo + (j + 1) as f64 * dw);
            let overlap = (ib.min(db) - ia.max(da)).max(0.0);
            *slot += c * overlap / w;
        }
    }
    let mut p = inside.clone();
    p[0] += below;
    p[m - 1] += above;
    let (p_total, in_total): (f64, f64) = (p.iter().sum(), inside.iter().sum());
    if p_total <= 0.0 || in_total <= 0.0 {
        return f64::INFINITY;
    }
    let mut q = vec![0.0; m];
    for l in 0..256 {
        let r = l * KL_SUB..(l + 1) * KL_SUB;
        let mass: f64 = inside[r.clone()].iter().sum();
        let nz = inside[r.clone()].iter().filter(|&&c| c > 0.0).count();
        for k in r {
            if inside[k] > 0.0 {
                q[k] = mass / nz as f64;
            }
        }
    }
    p.iter()
        .zip(&q)
        .filter(|(&pi, _)| pi > 0.0)
        .map(|(&pi, &qi)| {
            let (pn, qn) = (pi / p_total, (qi / in_total).max(1e-12));
            pn * (pn / qn).ln()
        })
        .sum()
}

/// int8 scale and zero point of the real range `[lo, hi]` (widened to hold
/// zero). A range of zero width (a constant-zero tensor) gets scale 1.
pub(super) fn int8_params(lo: f32, hi: f32) -> (f32, i8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = (hi - lo) / 255.0;
    if scale.is_nan() || scale <= 0.0 || !scale.is_finite() {
        return (1.0, 0);
    }
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0);
    (scale, zp as i8)
}

/// Symmetric int8 quantization of one weight channel (values in
/// `[-127, 127]`): the scale with the least squared error among clipping
/// the channel's largest magnitude by up to half. (Weighting each weight's
/// error by its input's mean square, the error it adds to the output, did
/// worse on three of the five MLPerf Tiny models.) An all-zero channel
/// gets scale 1.
pub(super) fn weight_scale(w: &[f32]) -> f32 {
    let m = w.iter().fold(0f32, |a, &x| a.max(x.abs()));
    if m.is_nan() || m <= 0.0 || !m.is_finite() {
        return 1.0;
    }
    let err = |scale: f32| -> f64 {
        w.iter()
            .map(|&x| {
                let q = (x / scale).round().clamp(-127.0, 127.0);
                let d = (x - q * scale) as f64;
                d * d
            })
            .sum()
    };
    let mut best = (err(m / 127.0), m / 127.0);
    for k in 1..=50 {
        let s = m * (1.0 - k as f32 / 100.0) / 127.0;
        let e = err(s);
        if e < best.0 {
            best = (e, s);
        }
    }
    best.1
}

/// `x` quantized with `scale` to symmetric int8.
pub(super) fn quantize_weight(x: f32, scale: f32) -> i8 {
    (x / scale).round().clamp(-127.0, 127.0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f32]) -> Stats {
        let min = values.iter().copied().fold(f32::INFINITY, f32::min);
        let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut hist = vec![0; BINS];
        let w = (max as f64 - min as f64) / BINS as f64;
        for &x in values {
            hist[(((x as f64 - min as f64) / w) as usize).min(BINS - 1)] += 1;
        }
        Stats {
            min,
            max,
            hist,
            len: values.len(),
        }
    }

    #[test]
    fn an_outlier_is_clipped_by_percentile() {
        // 10 000 values in [-1, 1] and one at 50.
        let mut v: Vec<f32> = (0..10_000).map(|i| (i as f32 / 5000.0) - 1.0).collect();
        v.push(50.0);
        let s = stats(&v);
        assert_eq!(choose(&s, RangeMethod::MinMax), (-1.0, 50.0));
        let (lo, hi) = choose(&s, RangeMethod::Percentile);
        assert!((0.9..25.0).contains(&hi), "hi {hi}");
        assert!((-1.01..=-0.5).contains(&lo), "lo {lo}");
    }

    #[test]
    fn least_squares_and_entropy_clip_a_long_tail() {
        // Laplacian-like magnitudes: -ln(u) for u evenly spread over (0, 1).
        let v: Vec<f32> = (1..20_000).map(|i| -((i as f32) / 20_000.0).ln()).collect();
        let s = stats(&v);
        let (lo, hi) = choose(&s, RangeMethod::Mse);
        assert_eq!(lo, 0.0);
        assert!(hi < s.max, "hi {hi} of {}", s.max);
        assert!(mse(&s, 0.0, hi as f64) < mse(&s, 0.0, s.max as f64));
        // KL divergence measures the shape lost inside levels: on this
        // peaked distribution it clips too, and keeps zero in range.
        let (lo, hi) = choose(&s, RangeMethod::Entropy);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.0 && hi < s.max, "hi {hi} of {}", s.max);
    }

    #[test]
    fn zero_is_exact_and_constant_tensors_get_a_scale() {
        let (s, zp) = int8_params(0.0, 6.0);
        assert_eq!(zp, -128);
        assert!((s - 6.0 / 255.0).abs() < 1e-7);
        let (s, zp) = int8_params(-1.0, 1.0);
        assert_eq!(((0.0 / s).round() as i32 + zp as i32), zp as i32);
        assert_eq!(int8_params(0.0, 0.0), (1.0, 0));
        assert_eq!(weight_scale(&[0.0; 8]), 1.0);
        let st = stats(&[0.0; 16]);
        assert_eq!(choose(&st, RangeMethod::Mse), (0.0, 0.0));
    }

    #[test]
    fn weight_clipping_never_does_worse_than_max() {
        let w: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 32.0) / 10.0)
            .collect();
        let m = w.iter().fold(0f32, |a, &x| a.max(x.abs()));
        let s = weight_scale(&w);
        let err = |s: f32| -> f32 {
            w.iter()
                .map(|&x| (x - quantize_weight(x, s) as f32 * s).powi(2))
                .sum()
        };
        assert!(s <= m / 127.0 && err(s) <= err(m / 127.0));
    }
}
