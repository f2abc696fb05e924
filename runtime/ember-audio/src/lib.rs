//! Ember's audio front end: the features the voice models were trained on,
//! computed on the device with no heap.
//!
//! [`KwsMfcc`] reproduces the MLPerf Tiny keyword-spotting MFCCs: 16 kHz,
//! 1 s, samples scaled by the clip's maximum, 480-sample periodic Hann
//! frames every 320 samples, 512-point FFT magnitude, 40 HTK mel bands
//! 20–4000 Hz, `ln(mel + 1e-6)`, DCT-II scaled by `1/√80`, 10 coefficients.
#![no_std]
#![deny(missing_docs)]

pub mod fft;
pub mod wav;

use fft::Fft;

/// Samples per clip.
pub const KWS_SAMPLES: usize = 16_000;
/// Frames per clip.
pub const KWS_FRAMES: usize = 49;
/// Coefficients per frame.
pub const KWS_COEFFS: usize = 10;
/// Labels of the MLPerf Tiny keyword-spotting model, in output order.
pub const KWS_LABELS: [&str; 12] = [
    "down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence", "unknown",
];

const FRAME: usize = 480;
const STEP: usize = 320;
const NFFT: usize = 512;
const BINS: usize = NFFT / 2 + 1;
const MELS: usize = 40;

fn hz_to_mel(f: f64) -> f64 {
    1127.0 * libm::log1p(f / 700.0)
}

/// Keyword-spotting MFCC extractor (state: tables only, about 9 KiB).
#[derive(Clone)]
pub struct KwsMfcc {
    fft: Fft,
    window: [f32; FRAME],
    /// For each FFT bin: the mel band whose rising edge it is on (band
    /// `lower[b]`, weight `w_lo[b]`) and the band whose falling edge it is
    /// on (band `lower[b] - 1`, weight `w_hi[b]`); `u8::MAX` = none.
    band: [u8; BINS],
    w_up: [f32; BINS],
    w_down: [f32; BINS],
    dct: [[f32; MELS]; KWS_COEFFS],
}

impl Default for KwsMfcc {
    fn default() -> Self {
        Self::new()
    }
}

impl KwsMfcc {
    /// Builds the tables.
    pub fn new() -> Self {
        let mut window = [0f32; FRAME];
        for (n, w) in window.iter_mut().enumerate() {
            *w = (0.5 - 0.5 * libm::cos(2.0 * core::f64::consts::PI * n as f64 / FRAME as f64))
                as f32;
        }
        let (lo, hi) = (hz_to_mel(20.0), hz_to_mel(4000.0));
        let edge = |i: usize| lo + (hi - lo) * i as f64 / (MELS + 1) as f64;
        let mut band = [u8::MAX; BINS];
        let mut w_up = [0f32; BINS];
        let mut w_down = [0f32; BINS];
        // Bin 0 (DC) contributes to no band.
        for b in 1..BINS {
            let m = hz_to_mel(8000.0 * b as f64 / (BINS - 1) as f64);
            // Band k spans edges k..k+2 with its peak at edge k+1.
            for k in 0..=MELS {
                if m > edge(k) && m <= edge(k + 1) {
                    band[b] = k as u8; // rising edge of band k, falling edge of band k-1
                    let t = ((m - edge(k)) / (edge(k + 1) - edge(k))) as f32;
                    w_up[b] = if k < MELS { t } else { 0.0 };
                    w_down[b] = if k > 0 { 1.0 - t } else { 0.0 };
                }
            }
        }
        let mut dct = [[0f32; MELS]; KWS_COEFFS];
        let scale = 1.0 / libm::sqrt(2.0 * MELS as f64);
        for (k, row) in dct.iter_mut().enumerate() {
            for (n, v) in row.iter_mut().enumerate() {
                let a = core::f64::consts::PI * k as f64 * (2 * n + 1) as f64 / (2 * MELS) as f64;
                *v = (2.0 * libm::cos(a) * scale) as f32;
            }
        }
        KwsMfcc {
            fft: Fft::pow2(NFFT.trailing_zeros()),
            window,
            band,
            w_up,
            w_down,
            dct,
        }
    }

    /// MFCCs of one clip (shorter clips are zero-padded, longer ones cut).
    pub fn compute(&self, samples: &[i16], out: &mut [[f32; KWS_COEFFS]; KWS_FRAMES]) {
        let n = samples.len().min(KWS_SAMPLES);
        let max = samples[..n].iter().copied().max().unwrap_or(0);
        let scale = if max > 0 { 1.0 / max as f32 } else { 0.0 };
        let sample = |i: usize| {
            if i < n {
                samples[i] as f32 * scale
            } else {
                0.0
            }
        };
        let mut re = [0f32; NFFT];
        let mut im = [0f32; NFFT];
        for (f, coeffs) in out.iter_mut().enumerate() {
            for i in 0..NFFT {
                re[i] = if i < FRAME {
                    sample(f * STEP + i) * self.window[i]
                } else {
                    0.0
                };
                im[i] = 0.0;
            }
            self.fft.forward(&mut re, &mut im);
            let mut mel = [0f32; MELS];
            for b in 1..BINS {
                let k = self.band[b] as usize;
                if k == u8::MAX as usize {
                    continue;
                }
                let mag = libm::sqrtf(re[b] * re[b] + im[b] * im[b]);
                if k < MELS {
                    mel[k] += mag * self.w_up[b];
                }
                if k > 0 {
                    mel[k - 1] += mag * self.w_down[b];
                }
            }
            for m in mel.iter_mut() {
                *m = libm::logf(*m + 1e-6);
            }
            for (c, row) in coeffs.iter_mut().zip(&self.dct) {
                *c = row.iter().zip(&mel).map(|(a, b)| a * b).sum();
            }
        }
    }

    /// The model's int8 input: `round_half_away(x / scale) + zero_point`, clamped.
    pub fn quantize(
        mfcc: &[[f32; KWS_COEFFS]; KWS_FRAMES],
        scale: f32,
        zero_point: i32,
        out: &mut [i8],
    ) {
        for (o, &v) in out.iter_mut().zip(mfcc.iter().flatten()) {
            *o = (libm::roundf(v / scale) as i32 + zero_point).clamp(-128, 127) as i8;
        }
    }
}
