//! Triangular mel filterbanks on the HTK mel scale, laid out as
//! `tf.signal.linear_to_mel_weight_matrix` defines them: band edges equally
//! spaced in mel between the lower and upper edge frequencies, weights
//! interpolated in mel, the DC bin in no band. Stored sparsely: each FFT bin
//! lies on the rising edge of at most one band and the falling edge of the
//! band below it.

/// HTK mel of a frequency in Hz.
pub fn hz_to_mel(f: f64) -> f64 {
    1127.0 * libm::log1p(f / 700.0)
}

/// A filterbank of `MELS` bands over the `BINS` bins of a real FFT.
#[derive(Clone)]
pub struct MelBank<const BINS: usize, const MELS: usize> {
    /// For each bin, the band whose rising edge it is on (`u8::MAX` = none);
    /// it is also on the falling edge of the band below.
    band: [u8; BINS],
    w_up: [f32; BINS],
    w_down: [f32; BINS],
}

impl<const BINS: usize, const MELS: usize> MelBank<BINS, MELS> {
    /// Bands from `lo_hz` to `hi_hz` for an FFT of `2·(BINS−1)` points at
    /// `sample_rate` Hz. `MELS` must be below 255.
    pub fn new(lo_hz: f64, hi_hz: f64, sample_rate: f64) -> Self {
        let (lo, hi) = (hz_to_mel(lo_hz), hz_to_mel(hi_hz));
        let edge = |i: usize| lo + (hi - lo) * i as f64 / (MELS + 1) as f64;
        let mut band = [u8::MAX; BINS];
        let mut w_up = [0f32; BINS];
        let mut w_down = [0f32; BINS];
        let nyquist = sample_rate / 2.0;
        for b in 1..BINS {
            let m = hz_to_mel(nyquist * b as f64 / (BINS - 1) as f64);
            // Band k spans edges k..k+2 with its peak at edge k+1.
            for k in 0..=MELS {
                if m > edge(k) && m <= edge(k + 1) {
                    band[b] = k as u8;
                    let t = ((m - edge(k)) / (edge(k + 1) - edge(k))) as f32;
                    w_up[b] = if k < MELS { t } else { 0.0 };
                    w_down[b] = if k > 0 { 1.0 - t } else { 0.0 };
                }
            }
        }
        MelBank { band, w_up, w_down }
    }

    /// Band energies of the spectrum `map(power[b])` (bin 0, DC, is in
    /// no band), accumulated into `out`.
    #[inline]
    pub fn apply(&self, power: &[f32; BINS], map: impl Fn(f32) -> f32, out: &mut [f32; MELS]) {
        // Band k's rising edge adds into acc[k + 1], the falling edge of
        // band k − 1 into acc[k]: no branches, and the u8 band index keeps
        // every access inside the 256-entry array (so no bounds checks).
        let mut acc = [0f32; 257];
        for (((&k, &up), &down), &p) in self
            .band
            .iter()
            .zip(&self.w_up)
            .zip(&self.w_down)
            .zip(power)
            .skip(1)
        {
            let v = map(p);
            let k = k as usize;
            acc[k + 1] += v * up;
            acc[k] += v * down;
        }
        for (o, a) in out.iter_mut().zip(&acc[1..]) {
            *o = *a;
        }
    }
}
