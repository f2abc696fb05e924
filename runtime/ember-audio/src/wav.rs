//! Minimal RIFF/WAVE reader for 16-bit PCM (zero-copy, no allocation).

use core::fmt;

/// Why a WAV file was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WavError {
    /// Not a RIFF/WAVE file.
    NotWav,
    /// A chunk runs past the end of the file.
    Truncated,
    /// No `fmt ` or no `data` chunk.
    MissingChunk(&'static str),
    /// Not 16-bit integer PCM (format tag, bits per sample).
    UnsupportedFormat(u16, u16),
    /// Zero channels or a zero sample rate.
    BadHeader,
}

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WavError::NotWav => write!(f, "not a RIFF/WAVE file"),
            WavError::Truncated => write!(f, "WAV file truncated"),
            WavError::MissingChunk(c) => write!(f, "WAV file has no '{c}' chunk"),
            WavError::UnsupportedFormat(tag, bits) => write!(
                f,
                "unsupported WAV encoding (format tag {tag}, {bits} bits per sample); 16-bit PCM is supported"
            ),
            WavError::BadHeader => write!(f, "WAV header has zero channels or a zero sample rate"),
        }
    }
}

/// A parsed 16-bit PCM WAV, borrowing the file's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Wav<'a> {
    /// Samples per second.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    data: &'a [u8],
}

impl<'a> Wav<'a> {
    /// Parses `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Wav<'a>, WavError> {
        if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
            return Err(WavError::NotWav);
        }
        let mut i = 12usize;
        let mut fmt_chunk: Option<(u16, u16, u32)> = None;
        let mut data = None;
        while i + 8 <= bytes.len() {
            let id = &bytes[i..i + 4];
            let len = u32::from_le_bytes([bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]])
                as usize;
            let body = bytes.get(i + 8..i + 8 + len);
            if id == b"fmt " {
                let b = body.ok_or(WavError::Truncated)?;
                if b.len() < 16 {
                    return Err(WavError::Truncated);
                }
                let tag = u16::from_le_bytes([b[0], b[1]]);
                let channels = u16::from_le_bytes([b[2], b[3]]);
                let rate = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                let bits = u16::from_le_bytes([b[14], b[15]]);
                // 1 = PCM; 0xFFFE = WAVE_FORMAT_EXTENSIBLE (PCM sub-format assumed).
                if !(tag == 1 || tag == 0xFFFE) || bits != 16 {
                    return Err(WavError::UnsupportedFormat(tag, bits));
                }
                if channels == 0 || rate == 0 {
                    return Err(WavError::BadHeader);
                }
                fmt_chunk = Some((tag, channels, rate));
            } else if id == b"data" {
                // Tolerate a data chunk whose declared length overruns the file.
                data = Some(body.unwrap_or(&bytes[i + 8..]));
            }
            i = i
                .saturating_add(8)
                .saturating_add(len)
                .saturating_add(len & 1);
        }
        let (_, channels, sample_rate) = fmt_chunk.ok_or(WavError::MissingChunk("fmt "))?;
        let data = data.ok_or(WavError::MissingChunk("data"))?;
        Ok(Wav {
            sample_rate,
            channels,
            data,
        })
    }

    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.data.len() / (2 * self.channels as usize)
    }

    /// Sample `i` of `channel` (0 past the end).
    pub fn sample(&self, i: usize, channel: u16) -> i16 {
        let k = (i * self.channels as usize + channel as usize) * 2;
        match self.data.get(k..k + 2) {
            Some(b) => i16::from_le_bytes([b[0], b[1]]),
            None => 0,
        }
    }

    /// Copies channel 0 into `out`; returns how many samples were written.
    pub fn channel0_into(&self, out: &mut [i16]) -> usize {
        let n = self.frames().min(out.len());
        for (i, o) in out.iter_mut().take(n).enumerate() {
            *o = self.sample(i, 0);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_pcm_and_garbage() {
        assert_eq!(Wav::parse(b"hello").unwrap_err(), WavError::NotWav);
        let mut h = [0u8; 44];
        h[0..4].copy_from_slice(b"RIFF");
        h[8..12].copy_from_slice(b"WAVE");
        h[12..16].copy_from_slice(b"fmt ");
        h[16] = 16;
        h[20] = 3; // IEEE float
        h[22] = 1;
        h[24..28].copy_from_slice(&16000u32.to_le_bytes());
        h[34] = 32;
        h[36..40].copy_from_slice(b"data");
        assert_eq!(
            Wav::parse(&h).unwrap_err(),
            WavError::UnsupportedFormat(3, 32)
        );
        h[20] = 1;
        h[34] = 16;
        let w = Wav::parse(&h).unwrap();
        assert_eq!((w.sample_rate, w.channels, w.frames()), (16000, 1, 0));
        assert_eq!(Wav::parse(&h[..30]).unwrap_err(), WavError::Truncated);
    }
}
