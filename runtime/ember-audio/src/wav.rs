//! Minimal RIFF/WAVE reader (zero-copy, no allocation): integer PCM at 8,
//! 16, 24 or 32 bits and 32-bit IEEE float, plain or WAVE_FORMAT_EXTENSIBLE;
//! samples are delivered as `i16`.

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
    /// An encoding other than integer PCM (8/16/24/32-bit) or 32-bit float
    /// (format tag, bits per sample).
    UnsupportedFormat(u16, u16),
    /// Zero channels or a zero sample rate.
    BadHeader,
    /// A `fmt ` or `data` chunk appears twice (which one is meant?).
    DuplicateChunk(&'static str),
    /// The `data` chunk holds no whole frame.
    NoSamples,
}

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WavError::NotWav => write!(f, "not a RIFF/WAVE file"),
            WavError::Truncated => write!(f, "WAV file truncated"),
            WavError::MissingChunk(c) => write!(f, "WAV file has no '{c}' chunk"),
            WavError::UnsupportedFormat(tag, bits) => write!(
                f,
                "unsupported WAV encoding (format tag {tag}, {bits} bits per sample); integer PCM at 8, 16, 24 or 32 bits and 32-bit float are supported"
            ),
            WavError::BadHeader => write!(f, "WAV header has zero channels or a zero sample rate"),
            WavError::DuplicateChunk(c) => write!(f, "WAV file has two '{c}' chunks"),
            WavError::NoSamples => write!(f, "WAV file holds no samples"),
        }
    }
}

/// How samples are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Unsigned 8-bit (128 = silence).
    U8,
    /// Signed 16-bit little-endian.
    I16,
    /// Signed 24-bit little-endian.
    I24,
    /// Signed 32-bit little-endian.
    I32,
    /// 32-bit IEEE float, full scale ±1.0.
    F32,
}

impl Encoding {
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            Encoding::U8 => 1,
            Encoding::I16 => 2,
            Encoding::I24 => 3,
            Encoding::I32 | Encoding::F32 => 4,
        }
    }

    fn from_header(tag: u16, bits: u16) -> Option<Self> {
        match (tag, bits) {
            (1, 8) => Some(Encoding::U8),
            (1, 16) => Some(Encoding::I16),
            (1, 24) => Some(Encoding::I24),
            (1, 32) => Some(Encoding::I32),
            (3, 32) => Some(Encoding::F32),
            _ => None,
        }
    }
}

/// A parsed WAV, borrowing the file's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Wav<'a> {
    /// Samples per second.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// Sample encoding.
    pub encoding: Encoding,
    data: &'a [u8],
}

impl<'a> Wav<'a> {
    /// Parses `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Wav<'a>, WavError> {
        if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
            return Err(WavError::NotWav);
        }
        let mut i = 12usize;
        let mut fmt_chunk: Option<(Encoding, u16, u32)> = None;
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
                let mut tag = u16::from_le_bytes([b[0], b[1]]);
                let channels = u16::from_le_bytes([b[2], b[3]]);
                let rate = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                let bits = u16::from_le_bytes([b[14], b[15]]);
                // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes
                // of the sub-format GUID at offset 24.
                if tag == 0xFFFE {
                    let sub = b.get(24..26).ok_or(WavError::Truncated)?;
                    tag = u16::from_le_bytes([sub[0], sub[1]]);
                }
                let encoding = Encoding::from_header(tag, bits)
                    .ok_or(WavError::UnsupportedFormat(tag, bits))?;
                if channels == 0 || rate == 0 {
                    return Err(WavError::BadHeader);
                }
                if fmt_chunk.replace((encoding, channels, rate)).is_some() {
                    return Err(WavError::DuplicateChunk("fmt "));
                }
            } else if id == b"data" {
                // Tolerate a data chunk whose declared length overruns the file.
                if data.replace(body.unwrap_or(&bytes[i + 8..])).is_some() {
                    return Err(WavError::DuplicateChunk("data"));
                }
            }
            i = i
                .saturating_add(8)
                .saturating_add(len)
                .saturating_add(len & 1);
        }
        let (encoding, channels, sample_rate) = fmt_chunk.ok_or(WavError::MissingChunk("fmt "))?;
        let data = data.ok_or(WavError::MissingChunk("data"))?;
        let wav = Wav {
            sample_rate,
            channels,
            encoding,
            data,
        };
        if wav.frames() == 0 {
            return Err(WavError::NoSamples);
        }
        Ok(wav)
    }

    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.data.len() / (self.encoding.bytes() * self.channels as usize)
    }

    /// Sample `i` of `channel` as 16-bit (0 past the end). Wider integers keep
    /// their top 16 bits; floats are scaled by 32768, rounded and clamped.
    pub fn sample(&self, i: usize, channel: u16) -> i16 {
        let n = self.encoding.bytes();
        let k = (i * self.channels as usize + channel as usize) * n;
        let Some(b) = self.data.get(k..k + n) else {
            return 0;
        };
        match self.encoding {
            Encoding::U8 => ((b[0] as i16) - 128) << 8,
            Encoding::I16 => i16::from_le_bytes([b[0], b[1]]),
            Encoding::I24 => (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 16) as i16,
            Encoding::I32 => (i32::from_le_bytes([b[0], b[1], b[2], b[3]]) >> 16) as i16,
            Encoding::F32 => {
                let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if x.is_nan() {
                    0
                } else {
                    libm::roundf(x * 32768.0).clamp(-32768.0, 32767.0) as i16
                }
            }
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

    /// A one-channel WAV header at 16 kHz with `tag`, `bits` and `data`.
    fn wav(tag: u16, bits: u16, data: &[u8]) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(b"RIFF");
        h[8..12].copy_from_slice(b"WAVE");
        h[12..16].copy_from_slice(b"fmt ");
        h[16] = 16;
        h[20..22].copy_from_slice(&tag.to_le_bytes());
        h[22] = 1;
        h[24..28].copy_from_slice(&16000u32.to_le_bytes());
        h[34..36].copy_from_slice(&bits.to_le_bytes());
        h[36..40].copy_from_slice(b"data");
        h[40..44].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[44..44 + data.len()].copy_from_slice(data);
        h
    }

    #[test]
    fn refuses_two_data_chunks_and_no_samples() {
        let h = wav(1, 16, &[1, 0, 2, 0]);
        assert!(Wav::parse(&h[..48]).is_ok());
        assert_eq!(Wav::parse(&h[..44]).err(), Some(WavError::NoSamples));
        assert_eq!(
            Wav::parse(&wav(1, 16, &[])[..44]).err(),
            Some(WavError::NoSamples)
        );
        // A second data chunk after the first.
        let mut two = h[..48].to_vec();
        two.extend_from_slice(b"data");
        two.extend_from_slice(&2u32.to_le_bytes());
        two.extend_from_slice(&[9, 0]);
        assert_eq!(
            Wav::parse(&two).err(),
            Some(WavError::DuplicateChunk("data"))
        );
        // A second fmt chunk.
        let mut fmt2 = h[..48].to_vec();
        fmt2.extend_from_slice(&h[12..36]);
        assert_eq!(
            Wav::parse(&fmt2).err(),
            Some(WavError::DuplicateChunk("fmt "))
        );
    }

    #[test]
    fn refuses_non_pcm_and_garbage() {
        assert_eq!(Wav::parse(b"hello").unwrap_err(), WavError::NotWav);
        let h = wav(2, 4, &[]); // MS ADPCM
        assert_eq!(
            Wav::parse(&h[..44]).unwrap_err(),
            WavError::UnsupportedFormat(2, 4)
        );
        let h = wav(1, 12, &[]);
        assert_eq!(
            Wav::parse(&h[..44]).unwrap_err(),
            WavError::UnsupportedFormat(1, 12)
        );
        let h = wav(1, 16, &[0, 0]);
        let w = Wav::parse(&h[..46]).unwrap();
        assert_eq!((w.sample_rate, w.channels, w.frames()), (16000, 1, 1));
        assert_eq!(Wav::parse(&h[..30]).unwrap_err(), WavError::Truncated);
    }

    #[test]
    fn every_encoding_reads_as_16_bit() {
        // Full scale negative, zero, and about +0.5 in each encoding.
        let cases: [(u16, u16, &[u8]); 5] = [
            (1, 8, &[0, 128, 192]),
            (1, 16, &[0x00, 0x80, 0, 0, 0x00, 0x40]),
            (1, 24, &[0, 0x00, 0x80, 0, 0, 0, 0, 0x00, 0x40]),
            (1, 32, &[0, 0, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x40]),
            (
                3,
                32,
                &[0x00, 0x00, 0x80, 0xBF, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x3F],
            ),
        ];
        for (tag, bits, data) in cases {
            let h = wav(tag, bits, data);
            let w = Wav::parse(&h[..44 + data.len()]).unwrap();
            assert_eq!(w.frames(), 3, "{tag}/{bits}");
            let got = [w.sample(0, 0), w.sample(1, 0), w.sample(2, 0)];
            assert_eq!(got, [-32768, 0, 16384], "{tag}/{bits}");
            assert_eq!(w.sample(3, 0), 0);
        }
        // WAVE_FORMAT_EXTENSIBLE with a float sub-format.
        let mut h = [0u8; 80];
        h[0..4].copy_from_slice(b"RIFF");
        h[8..12].copy_from_slice(b"WAVE");
        h[12..16].copy_from_slice(b"fmt ");
        h[16] = 40;
        h[20..22].copy_from_slice(&0xFFFEu16.to_le_bytes());
        h[22] = 1;
        h[24..28].copy_from_slice(&16000u32.to_le_bytes());
        h[34] = 32;
        h[44] = 3; // sub-format GUID starts with the tag
        h[60..64].copy_from_slice(b"data");
        h[64..68].copy_from_slice(&4u32.to_le_bytes());
        h[68..72].copy_from_slice(&0.25f32.to_le_bytes());
        let w = Wav::parse(&h[..72]).unwrap();
        assert_eq!((w.encoding, w.sample(0, 0)), (Encoding::F32, 8192));
    }
}
