//! Peripheral interfaces of the voice and vision apps. The apps are written
//! against these traits; each board supplies implementations (real drivers
//! on `embedded-hal` 1.0 buses, or embedded test data in the simulator).

use embedded_hal::spi::{Operation, SpiDevice};

/// A mono 16-bit PCM audio source (PDM/I2S microphone, or a clip).
pub trait Microphone {
    /// Error of the underlying peripheral.
    type Error: core::fmt::Debug;

    /// Sample rate in Hz.
    fn sample_rate_hz(&self) -> u32;

    /// Fills the front of `buf` with the next samples and returns how many it
    /// wrote; 0 means the stream has ended.
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, Self::Error>;
}

/// Pixel layout of a captured frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum PixelFormat {
    /// 3 bytes per pixel, R, G, B.
    Rgb888,
    /// 2 bytes per pixel, big-endian RGB565 (as camera modules send it).
    Rgb565,
    /// 1 byte per pixel.
    Gray8,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb888 => 3,
            PixelFormat::Rgb565 => 2,
            PixelFormat::Gray8 => 1,
        }
    }
}

/// Frame geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub struct FrameFormat {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Pixel layout.
    pub pixels: PixelFormat,
}

impl FrameFormat {
    /// Bytes in one frame.
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * self.pixels.bytes_per_pixel()
    }
}

/// Errors of a frame capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum CameraError<E> {
    /// `buf` is not exactly one frame long.
    WrongBufferSize {
        /// Bytes a frame takes.
        needed: usize,
        /// Bytes offered.
        got: usize,
    },
    /// The bus failed.
    Bus(E),
}

/// A camera or any other frame source.
pub trait Camera {
    /// Error of the underlying bus.
    type Error: core::fmt::Debug;

    /// Geometry of the frames it delivers.
    fn format(&self) -> FrameFormat;

    /// Captures one frame into `buf` (exactly [`FrameFormat::frame_bytes`]).
    fn capture(&mut self, buf: &mut [u8]) -> Result<(), CameraError<Self::Error>>;
}

/// A recorded clip played as a microphone (simulated boards, tests).
pub struct ClipMicrophone<'a> {
    samples: &'a [i16],
    rate_hz: u32,
    pos: usize,
}

impl<'a> ClipMicrophone<'a> {
    /// Plays `samples` at `rate_hz`.
    pub fn new(samples: &'a [i16], rate_hz: u32) -> Self {
        ClipMicrophone {
            samples,
            rate_hz,
            pos: 0,
        }
    }
}

impl Microphone for ClipMicrophone<'_> {
    type Error = core::convert::Infallible;

    fn sample_rate_hz(&self) -> u32 {
        self.rate_hz
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, Self::Error> {
        let rest = self.samples.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// A stored frame served as a camera (simulated boards, tests).
pub struct StillCamera<'a> {
    frame: &'a [u8],
    format: FrameFormat,
}

impl<'a> StillCamera<'a> {
    /// Serves `frame`, which must hold one frame of `format`.
    pub fn new(frame: &'a [u8], format: FrameFormat) -> Option<Self> {
        (frame.len() == format.frame_bytes()).then_some(StillCamera { frame, format })
    }
}

impl Camera for StillCamera<'_> {
    type Error = core::convert::Infallible;

    fn format(&self) -> FrameFormat {
        self.format
    }

    fn capture(&mut self, buf: &mut [u8]) -> Result<(), CameraError<Self::Error>> {
        if buf.len() != self.frame.len() {
            return Err(CameraError::WrongBufferSize {
                needed: self.frame.len(),
                got: buf.len(),
            });
        }
        buf.copy_from_slice(self.frame);
        Ok(())
    }
}

/// A camera module with a frame FIFO read over SPI (ArduCAM-style: a
/// single-byte burst-read command followed by the frame), on any
/// `embedded-hal` 1.0 [`SpiDevice`]. The sensor is configured beforehand (over
/// I2C, by the board); this type only moves frames.
pub struct SpiFifoCamera<S> {
    spi: S,
    format: FrameFormat,
    burst_read: u8,
}

impl<S: SpiDevice> SpiFifoCamera<S> {
    /// A camera delivering `format` frames, read with command `burst_read`.
    pub fn new(spi: S, format: FrameFormat, burst_read: u8) -> Self {
        SpiFifoCamera {
            spi,
            format,
            burst_read,
        }
    }
}

impl<S: SpiDevice> Camera for SpiFifoCamera<S> {
    type Error = S::Error;

    fn format(&self) -> FrameFormat {
        self.format
    }

    fn capture(&mut self, buf: &mut [u8]) -> Result<(), CameraError<Self::Error>> {
        let needed = self.format.frame_bytes();
        if buf.len() != needed {
            return Err(CameraError::WrongBufferSize {
                needed,
                got: buf.len(),
            });
        }
        self.spi
            .transaction(&mut [Operation::Write(&[self.burst_read]), Operation::Read(buf)])
            .map_err(CameraError::Bus)
    }
}
