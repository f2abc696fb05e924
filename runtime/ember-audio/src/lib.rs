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
pub mod mel;
pub mod resample;
pub mod sww;
pub mod vad;
pub mod wav;

use mel::MelBank;

use fft::RealFft;

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

/// Keyword-spotting MFCC extractor (state: tables only, about 9 KiB).
#[derive(Clone)]
pub struct KwsMfcc {
    fft: RealFft,
    window: [f32; FRAME],
    mel: MelBank<BINS, MELS>,
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
        let mel = MelBank::new(20.0, 4000.0, 16_000.0);
        let mut dct = [[0f32; MELS]; KWS_COEFFS];
        let scale = 1.0 / libm::sqrt(2.0 * MELS as f64);
        for (k, row) in dct.iter_mut().enumerate() {
            for (n, v) in row.iter_mut().enumerate() {
                let a = core::f64::consts::PI * k as f64 * (2 * n + 1) as f64 / (2 * MELS) as f64;
                *v = (2.0 * libm::cos(a) * scale) as f32;
            }
        }
        KwsMfcc {
            fft: RealFft::pow2(NFFT.trailing_zeros()),
            window,
            mel,
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
        let mut x = [0f32; NFFT];
        let (mut re, mut im) = ([0f32; NFFT / 2], [0f32; NFFT / 2]);
        let mut power = [0f32; BINS];
        for (f, coeffs) in out.iter_mut().enumerate() {
            for (i, (v, w)) in x.iter_mut().zip(&self.window).enumerate() {
                *v = sample(f * STEP + i) * w;
            }
            self.fft.power(&x, &mut re, &mut im, &mut power);
            let mut mel = [0f32; MELS];
            self.mel.apply(&power, fft::sqrt, &mut mel);
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
