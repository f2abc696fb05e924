//! The streaming wake-word (sww) front end and detector.
//!
//! Features, as the MLPerf Tiny model was trained: 16 kHz samples scaled to
//! [-1, 1), pre-emphasis `y[n] = x[n] − (1 − 2⁻⁵)·x[n−1]` (with `x[−1] = 0`),
//! frames of 1024 with a hop of 512 (no padding), symmetric Hamming window,
//! power spectrum `|X|²/1024` (floored at 1e-30), 40 HTK mel bands over
//! 0–8 kHz, `10·log10`, then `(x + 52)/64` clipped to [0, 1].
//!
//! [`SwwLogMel`] consumes audio in chunks of any size and emits a feature
//! frame every 512 samples; [`FeatureWindow`] keeps the last 30 quantized
//! frames for the model; [`Detector`] turns the model's class-0 posteriors
//! into wake-word events.

use crate::fft::RealFft;
use crate::mel::MelBank;

/// Samples per frame.
pub const SWW_FRAME: usize = 1024;
/// Samples between frames.
pub const SWW_HOP: usize = 512;
/// Mel bands per frame.
pub const SWW_MELS: usize = 40;
/// Frames the model sees at once.
pub const SWW_WINDOW_FRAMES: usize = 30;
/// Sample rate the features are defined for.
pub const SWW_SAMPLE_RATE: u32 = 16_000;

const BINS: usize = SWW_FRAME / 2 + 1;
const PREEMPHASIS: f32 = 1.0 - 1.0 / 32.0;
const POWER_OFFSET_DB: f32 = 52.0;
const RANGE_DB: f32 = 64.0;

/// Streaming log-mel front end (state about 20 KiB: tables and one frame).
pub struct SwwLogMel {
    fft: RealFft,
    window: [f32; SWW_FRAME],
    mel: MelBank<BINS, SWW_MELS>,
    /// Pre-emphasised samples of the frame being filled.
    buf: [f32; SWW_FRAME],
    filled: usize,
    prev: f32,
    frames: usize,
}

impl Default for SwwLogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl SwwLogMel {
    /// Builds the tables; the stream starts empty.
    pub fn new() -> Self {
        let mut window = [0f32; SWW_FRAME];
        let n1 = (SWW_FRAME - 1) as f64;
        for (n, w) in window.iter_mut().enumerate() {
            *w = (0.54 - 0.46 * libm::cos(2.0 * core::f64::consts::PI * n as f64 / n1)) as f32;
        }
        SwwLogMel {
            fft: RealFft::pow2(SWW_FRAME.trailing_zeros()),
            window,
            mel: MelBank::new(0.0, 8000.0, SWW_SAMPLE_RATE as f64),
            buf: [0.0; SWW_FRAME],
            filled: 0,
            prev: 0.0,
            frames: 0,
        }
    }

    /// Forgets the audio seen so far.
    pub fn reset(&mut self) {
        self.filled = 0;
        self.prev = 0.0;
        self.frames = 0;
    }

    /// Frames emitted since the start (or the last reset).
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Feeds samples; `emit` receives each feature frame as soon as its last
    /// sample has arrived.
    pub fn push(&mut self, samples: &[i16], mut emit: impl FnMut(&[f32; SWW_MELS])) {
        for &s in samples {
            let x = s as f32 / 32768.0;
            self.buf[self.filled] = x - PREEMPHASIS * self.prev;
            self.prev = x;
            self.filled += 1;
            if self.filled == SWW_FRAME {
                let mut out = [0f32; SWW_MELS];
                self.frame(&mut out);
                emit(&out);
                self.frames += 1;
                self.buf.copy_within(SWW_HOP.., 0);
                self.filled = SWW_FRAME - SWW_HOP;
            }
        }
    }

    fn frame(&self, out: &mut [f32; SWW_MELS]) {
        let mut x = [0f32; SWW_FRAME];
        for ((v, b), w) in x.iter_mut().zip(&self.buf).zip(&self.window) {
            *v = b * w;
        }
        let (mut re, mut im) = ([0f32; SWW_FRAME / 2], [0f32; SWW_FRAME / 2]);
        let mut power = [0f32; SWW_FRAME / 2 + 1];
        self.fft.power(&x, &mut re, &mut im, &mut power);
        let mut mel = [0f32; SWW_MELS];
        self.mel
            .apply(&power, |p| (p / SWW_FRAME as f32).max(1e-30), &mut mel);
        for (o, m) in out.iter_mut().zip(&mel) {
            let db = 10.0 * libm::log10f(*m);
            *o = ((db + POWER_OFFSET_DB) / RANGE_DB).clamp(0.0, 1.0);
        }
    }

    /// The model's int8 input for one frame as the MLPerf reference harness
    /// makes it: `x / scale + zero_point` truncated toward zero (a C cast,
    /// not rounding: that is what `lfbe_int8` holds), clamped.
    pub fn quantize(
        frame: &[f32; SWW_MELS],
        scale: f32,
        zero_point: i32,
        out: &mut [i8; SWW_MELS],
    ) {
        for (o, &v) in out.iter_mut().zip(frame) {
            let q = if scale > 0.0 {
                v / scale + zero_point as f32
            } else {
                zero_point as f32
            };
            *o = (q as i32).clamp(-128, 127) as i8;
        }
    }
}

/// The last [`SWW_WINDOW_FRAMES`] quantized frames, oldest first.
pub struct FeatureWindow {
    frames: [[i8; SWW_MELS]; SWW_WINDOW_FRAMES],
    next: usize,
    count: usize,
}

impl Default for FeatureWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureWindow {
    /// An empty window.
    pub fn new() -> Self {
        FeatureWindow {
            frames: [[0; SWW_MELS]; SWW_WINDOW_FRAMES],
            next: 0,
            count: 0,
        }
    }

    /// Adds a frame; returns `true` once the window is full.
    pub fn push(&mut self, frame: &[i8; SWW_MELS]) -> bool {
        self.frames[self.next] = *frame;
        self.next = (self.next + 1) % SWW_WINDOW_FRAMES;
        self.count = (self.count + 1).min(SWW_WINDOW_FRAMES);
        self.count == SWW_WINDOW_FRAMES
    }

    /// Copies the window, oldest frame first, into `dst` (the model input,
    /// `SWW_WINDOW_FRAMES × SWW_MELS` bytes); returns `false` if `dst` has
    /// another size.
    pub fn copy_into(&self, dst: &mut [u8]) -> bool {
        if dst.len() != SWW_WINDOW_FRAMES * SWW_MELS {
            return false;
        }
        for i in 0..SWW_WINDOW_FRAMES {
            let f = &self.frames[(self.next + i) % SWW_WINDOW_FRAMES];
            for (d, &v) in dst[i * SWW_MELS..(i + 1) * SWW_MELS].iter_mut().zip(f) {
                *d = v as u8;
            }
        }
        true
    }
}

/// A wake-word event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Index of the first window above the threshold (window `w` covers
    /// frames `w .. w + 30`).
    pub window: usize,
    /// Time at the end of that window, in seconds from the start.
    pub time_s: f32,
    /// Its class-0 posterior.
    pub score: f32,
}

/// Turns per-window posteriors into events: an event starts at a window
/// whose posterior exceeds the threshold after one that did not.
pub struct Detector {
    threshold: f32,
    above: bool,
}

impl Detector {
    /// A detector firing above `threshold` (0.95 for the MLPerf model).
    pub fn new(threshold: f32) -> Self {
        Detector {
            threshold,
            above: false,
        }
    }

    /// The end of window `window` in seconds.
    pub fn window_end_s(window: usize) -> f32 {
        ((window + SWW_WINDOW_FRAMES - 1) * SWW_HOP + SWW_FRAME) as f32 / SWW_SAMPLE_RATE as f32
    }

    /// Feeds the posterior of window `window`; returns an event on a rising
    /// edge.
    pub fn push(&mut self, window: usize, score: f32) -> Option<Detection> {
        let above = score > self.threshold;
        let fired = above && !self.above;
        self.above = above;
        fired.then(|| Detection {
            window,
            time_s: Self::window_end_s(window),
            score,
        })
    }
}
