//! Voice activity detection with a model that reads raw audio: chunking
//! with context, and speech segments from per-chunk probabilities.
//!
//! Silero VAD's 16 kHz models take the waveform itself (their first layer
//! is an STFT as a convolution): each invoke reads [`VAD_INPUT`] samples,
//! the new [`VAD_CHUNK`] preceded by the previous chunk's last
//! [`VAD_CONTEXT`] (zeros before the start), scaled to `[-1, 1)`, and the
//! model keeps its LSTM state between invokes. [`VadFramer`] builds those
//! inputs from audio arriving in pieces of any size; [`Segmenter`] turns
//! the probabilities into speech segments with hysteresis.

/// Sample rate the models read.
pub const VAD_SAMPLE_RATE: usize = 16_000;
/// New samples per invoke (32 ms).
pub const VAD_CHUNK: usize = 512;
/// Samples of the previous chunk in front of each chunk.
pub const VAD_CONTEXT: usize = 64;
/// Samples per model input.
pub const VAD_INPUT: usize = VAD_CHUNK + VAD_CONTEXT;

/// Cuts 16-bit PCM into the model's inputs: chunk after chunk, each with
/// the context of the one before, as f32 in `[-1, 1)`.
pub struct VadFramer {
    buf: [f32; VAD_INPUT],
    filled: usize,
}

impl Default for VadFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl VadFramer {
    /// A framer at the start of a recording (context zero).
    pub fn new() -> Self {
        VadFramer {
            buf: [0.0; VAD_INPUT],
            filled: VAD_CONTEXT,
        }
    }

    /// Feeds `pcm`; calls `f` with every model input completed.
    pub fn push(&mut self, pcm: &[i16], mut f: impl FnMut(&[f32; VAD_INPUT])) {
        for &s in pcm {
            self.buf[self.filled] = f32::from(s) / 32768.0;
            self.filled += 1;
            if self.filled == VAD_INPUT {
                f(&self.buf);
                self.buf.copy_within(VAD_CHUNK.., 0);
                self.filled = VAD_CONTEXT;
            }
        }
    }
}

/// A stretch of speech, in chunks: `start` is the first chunk of it,
/// `end` the first chunk after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First chunk of speech.
    pub start: usize,
    /// First chunk after the speech.
    pub end: usize,
}

impl Segment {
    /// Start in seconds.
    pub fn start_s(&self) -> f32 {
        (self.start * VAD_CHUNK) as f32 / VAD_SAMPLE_RATE as f32
    }

    /// End in seconds.
    pub fn end_s(&self) -> f32 {
        (self.end * VAD_CHUNK) as f32 / VAD_SAMPLE_RATE as f32
    }
}

/// Speech segments from per-chunk speech probabilities: speech starts at
/// a chunk at or above `threshold`, and ends once the probability has
/// stayed below `threshold − 0.15` for `min_silence` chunks (the end is
/// the first of those chunks); segments shorter than `min_speech` chunks
/// are dropped. These are the defaults of Silero's own segmentation
/// (0.5, 100 ms of silence, 250 ms of speech), without its padding.
pub struct Segmenter {
    threshold: f32,
    min_silence: usize,
    min_speech: usize,
    start: Option<usize>,
    quiet_since: Option<usize>,
    chunk: usize,
}

impl Default for Segmenter {
    fn default() -> Self {
        Self::new(0.5)
    }
}

impl Segmenter {
    /// A segmenter with speech threshold `threshold`, 100 ms of silence
    /// to end a segment and 250 ms of speech to keep one.
    pub fn new(threshold: f32) -> Self {
        let chunks = |ms: usize| (ms * VAD_SAMPLE_RATE / 1000).div_ceil(VAD_CHUNK);
        Segmenter {
            threshold,
            min_silence: chunks(100),
            min_speech: chunks(250),
            start: None,
            quiet_since: None,
            chunk: 0,
        }
    }

    /// Feeds the next chunk's probability; returns a segment when one
    /// ends here.
    pub fn push(&mut self, p: f32) -> Option<Segment> {
        let k = self.chunk;
        self.chunk += 1;
        let Some(start) = self.start else {
            if p >= self.threshold {
                self.start = Some(k);
            }
            return None;
        };
        if p >= self.threshold {
            self.quiet_since = None;
            return None;
        }
        if p >= self.threshold - 0.15 {
            return None;
        }
        let quiet = *self.quiet_since.get_or_insert(k);
        if k + 1 - quiet < self.min_silence {
            return None;
        }
        self.start = None;
        self.quiet_since = None;
        (quiet - start >= self.min_speech).then_some(Segment { start, end: quiet })
    }

    /// Ends the recording: the segment still open, if long enough.
    pub fn finish(&mut self) -> Option<Segment> {
        let start = self.start.take()?;
        let end = self.quiet_since.take().unwrap_or(self.chunk);
        (end - start >= self.min_speech).then_some(Segment { start, end })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn inputs_carry_the_previous_chunks_tail() {
        let pcm: Vec<i16> = (0..3 * VAD_CHUNK as i32 + 100).map(|v| v as i16).collect();
        let mut fr = VadFramer::new();
        let mut got = Vec::new();
        // Pieces of odd sizes, as from a microphone driver.
        for piece in pcm.chunks(77) {
            fr.push(piece, |x| got.push(*x));
        }
        assert_eq!(got.len(), 3);
        for (k, x) in got.iter().enumerate() {
            for (j, &v) in x.iter().enumerate() {
                let n = (k * VAD_CHUNK + j) as i64 - VAD_CONTEXT as i64;
                let want = if n < 0 { 0.0 } else { n as f32 / 32768.0 };
                assert_eq!(v, want, "input {k} sample {j}");
            }
        }
    }

    fn segments(p: &[f32]) -> Vec<Segment> {
        let mut s = Segmenter::default();
        let mut out: Vec<Segment> = p.iter().filter_map(|&v| s.push(v)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn hysteresis_minimum_lengths_and_the_open_end() {
        // 10 chunks of speech, a dip into the hysteresis band (kept), two
        // quiet chunks (too short to end it), then silence.
        let mut p = [0.9f32; 10].to_vec();
        p.extend([0.4, 0.1, 0.1, 0.9, 0.9]);
        p.extend([0.0; 6]);
        assert_eq!(segments(&p), [Segment { start: 0, end: 15 }]);
        // 7 chunks (224 ms) are too short; 8 (256 ms) are enough.
        let mut q = [0.0f32; 3].to_vec();
        q.extend([0.8; 7]);
        q.extend([0.0; 5]);
        q.extend([0.8; 8]);
        q.extend([0.0; 5]);
        assert_eq!(segments(&q), [Segment { start: 15, end: 23 }]);
        // Speech to the end of the recording.
        let r = [0.0, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7];
        assert_eq!(segments(&r), [Segment { start: 1, end: 10 }]);
        assert_eq!(Segment { start: 1, end: 10 }.end_s(), 0.32);
    }
}
