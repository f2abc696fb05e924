//! Sample-rate conversion by band-limited interpolation: each output sample
//! is the input convolved with a Hann-windowed sinc centred on its position,
//! with the cut-off at the lower of the two Nyquist frequencies (so
//! downsampling does not alias). No allocation: the caller gives the output
//! buffer ([`resampled_len`] long).

/// Input samples on each side of an output position.
const HALF_TAPS: i64 = 16;

/// Output length for `n` input samples converted from `from` Hz to `to` Hz.
pub fn resampled_len(n: usize, from: u32, to: u32) -> usize {
    if from == 0 {
        return 0;
    }
    ((n as u64 * to as u64).div_ceil(from as u64)) as usize
}

/// Converts `input` from `from` Hz to `to` Hz into `out`; returns the number
/// of samples written (`resampled_len`, or fewer if `out` is shorter).
pub fn resample(input: &[i16], from: u32, to: u32, out: &mut [i16]) -> usize {
    if from == 0 || to == 0 || input.is_empty() {
        return 0;
    }
    let n = resampled_len(input.len(), from, to).min(out.len());
    if from == to {
        out[..n].copy_from_slice(&input[..n]);
        return n;
    }
    // Cut-off relative to the input rate, and the kernel's reach in input
    // samples (wider when downsampling).
    let fc = (to as f64 / from as f64).min(1.0);
    let reach = libm::ceil(HALF_TAPS as f64 / fc) as i64;
    for (i, o) in out[..n].iter_mut().enumerate() {
        let t = i as f64 * from as f64 / to as f64;
        let centre = libm::floor(t) as i64;
        let (mut acc, mut norm) = (0f64, 0f64);
        for k in centre - reach + 1..=centre + reach {
            let d = t - k as f64;
            let x = d * fc;
            let sinc = if x.abs() < 1e-12 {
                1.0
            } else {
                libm::sin(core::f64::consts::PI * x) / (core::f64::consts::PI * x)
            };
            let w = 0.5 + 0.5 * libm::cos(core::f64::consts::PI * d / reach as f64);
            let h = sinc * w;
            norm += h;
            if k >= 0 && (k as usize) < input.len() {
                acc += input[k as usize] as f64 * h;
            }
        }
        let v = if norm != 0.0 { acc / norm } else { 0.0 };
        *o = libm::round(v).clamp(i16::MIN as f64, i16::MAX as f64) as i16;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, n: usize) -> [i16; 4000] {
        let mut v = [0i16; 4000];
        for (i, s) in v.iter_mut().enumerate().take(n) {
            *s = (10000.0 * libm::sin(2.0 * core::f64::consts::PI * hz * i as f64 / rate as f64))
                as i16;
        }
        v
    }

    #[test]
    fn lengths_and_identity() {
        assert_eq!(resampled_len(16000, 8000, 16000), 32000);
        assert_eq!(resampled_len(44100, 44100, 16000), 16000);
        let x = tone(16000, 440.0, 100);
        let mut y = [0i16; 100];
        assert_eq!(resample(&x[..100], 16000, 16000, &mut y), 100);
        assert_eq!(&y[..], &x[..100]);
    }

    #[test]
    fn a_tone_keeps_its_shape_across_rates() {
        // 440 Hz at 44.1 kHz → 16 kHz: compare with the tone made at 16 kHz,
        // away from the edges.
        let x = tone(44100, 440.0, 4000);
        let mut y = [0i16; 1500];
        let n = resample(&x, 44100, 16000, &mut y);
        assert_eq!(n, 1452);
        let want = tone(16000, 440.0, 1452);
        let worst = (50..1400)
            .map(|i| (y[i] as i32 - want[i] as i32).abs())
            .max()
            .unwrap();
        assert!(worst < 60, "worst error {worst} of 10000");
    }
}
