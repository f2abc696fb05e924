//! Image preprocessing for vision models, on the device: no heap, no
//! panics, fixed-size state.
//!
//! A frame from a camera (RGB888, RGB565 or 8-bit grayscale, any size) is
//! cropped to the model's aspect ratio, resized bilinearly to the model's
//! input size as RGB888, and quantized to the model's int8 input with the
//! normalisation the model was trained with (a table of 256 entries, so the
//! per-pixel cost is one lookup):
//!
//! ```text
//! let frame = ImageRef::new(&camera_buf, 160, 120, PixelFormat::Rgb565)?;
//! let square = frame.center_crop_to_aspect(1, 1)?;
//! resize_bilinear_rgb888(&square, &mut rgb, 96, 96)?;
//! let lut = QuantLut::new(&Normalize { pixel_scale: 1.0 / 255.0, pixel_offset: 0.0 }, scale, zero_point);
//! lut.apply(&rgb, &mut model_input)?;
//! ```
#![cfg_attr(not(feature = "png"), no_std)]
#![deny(missing_docs)]

#[cfg(feature = "png")]
pub mod png;

use core::fmt;

/// Pixel layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// 3 bytes per pixel: R, G, B.
    Rgb888,
    /// 2 bytes per pixel, RGB565 big-endian (as camera modules send it).
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

/// What can go wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VisionError {
    /// A buffer is shorter than the geometry needs.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// Zero width or height, a stride shorter than a row, or a crop outside
    /// the image.
    BadGeometry,
}

impl fmt::Display for VisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VisionError::BufferTooSmall { needed, got } => {
                write!(f, "buffer too small: {got} bytes, {needed} needed")
            }
            VisionError::BadGeometry => write!(f, "bad image geometry or crop"),
        }
    }
}

/// A borrowed image (or a window of one).
#[derive(Clone, Copy, Debug)]
pub struct ImageRef<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
    format: PixelFormat,
}

impl<'a> ImageRef<'a> {
    /// A tightly packed `width`×`height` image.
    pub fn new(
        data: &'a [u8],
        width: usize,
        height: usize,
        format: PixelFormat,
    ) -> Result<Self, VisionError> {
        Self::with_stride(
            data,
            width,
            height,
            width * format.bytes_per_pixel(),
            format,
        )
    }

    /// An image whose rows are `stride` bytes apart.
    pub fn with_stride(
        data: &'a [u8],
        width: usize,
        height: usize,
        stride: usize,
        format: PixelFormat,
    ) -> Result<Self, VisionError> {
        let row = width
            .checked_mul(format.bytes_per_pixel())
            .ok_or(VisionError::BadGeometry)?;
        if width == 0 || height == 0 || stride < row {
            return Err(VisionError::BadGeometry);
        }
        let needed = stride
            .checked_mul(height - 1)
            .and_then(|v| v.checked_add(row))
            .ok_or(VisionError::BadGeometry)?;
        if data.len() < needed {
            return Err(VisionError::BufferTooSmall {
                needed,
                got: data.len(),
            });
        }
        Ok(ImageRef {
            data,
            width,
            height,
            stride,
            format,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Pixel layout.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The `w`×`h` window at (`x`, `y`) (no copy).
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Result<Self, VisionError> {
        if w == 0 || h == 0 || x + w > self.width || y + h > self.height {
            return Err(VisionError::BadGeometry);
        }
        let start = y * self.stride + x * self.format.bytes_per_pixel();
        ImageRef::with_stride(&self.data[start..], w, h, self.stride, self.format)
    }

    /// The largest centred window with aspect ratio `aw`:`ah`.
    pub fn center_crop_to_aspect(&self, aw: usize, ah: usize) -> Result<Self, VisionError> {
        if aw == 0 || ah == 0 {
            return Err(VisionError::BadGeometry);
        }
        // Width limited by the height, or height limited by the width.
        let (w, h) = if self.width * ah > self.height * aw {
            ((self.height * aw / ah).max(1), self.height)
        } else {
            (self.width, (self.width * ah / aw).max(1))
        };
        self.crop((self.width - w) / 2, (self.height - h) / 2, w, h)
    }

    /// Pixel (`x`, `y`) as R, G, B (the caller keeps `x`, `y` in range).
    #[inline]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let i = y * self.stride + x * self.format.bytes_per_pixel();
        match self.format {
            PixelFormat::Rgb888 => [self.data[i], self.data[i + 1], self.data[i + 2]],
            PixelFormat::Rgb565 => {
                rgb565_to_rgb888(u16::from_be_bytes([self.data[i], self.data[i + 1]]))
            }
            PixelFormat::Gray8 => [self.data[i]; 3],
        }
    }
}

/// RGB565 to RGB888, replicating the top bits into the bottom ones so that
/// full scale maps to 255.
pub fn rgb565_to_rgb888(p: u16) -> [u8; 3] {
    let r = ((p >> 11) & 0x1f) as u8;
    let g = ((p >> 5) & 0x3f) as u8;
    let b = (p & 0x1f) as u8;
    [
        (r << 3) | (r >> 2),
        (g << 2) | (g >> 4),
        (b << 3) | (b >> 2),
    ]
}

/// Luma of an RGB pixel (ITU-R BT.601 weights in 8-bit fixed point).
pub fn rgb_to_gray(p: [u8; 3]) -> u8 {
    ((77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32 + 128) >> 8) as u8
}

/// Resizes `src` (any format) to `dw`×`dh` RGB888 in `dst` with bilinear
/// interpolation on pixel centres (`x_src = (x + 0.5)·w_src/w_dst − 0.5`,
/// clamped at the edges). Equal sizes copy the pixels exactly.
pub fn resize_bilinear_rgb888(
    src: &ImageRef<'_>,
    dst: &mut [u8],
    dw: usize,
    dh: usize,
) -> Result<(), VisionError> {
    let needed = dw
        .checked_mul(dh)
        .and_then(|v| v.checked_mul(3))
        .ok_or(VisionError::BadGeometry)?;
    if dw == 0 || dh == 0 {
        return Err(VisionError::BadGeometry);
    }
    if dst.len() < needed {
        return Err(VisionError::BufferTooSmall {
            needed,
            got: dst.len(),
        });
    }
    if src.width == dw && src.height == dh && src.format == PixelFormat::Rgb888 {
        // Same size: the interpolation weights are all 0, copy the rows.
        for y in 0..dh {
            let s = y * src.stride;
            dst[y * dw * 3..(y + 1) * dw * 3].copy_from_slice(&src.data[s..s + dw * 3]);
        }
        return Ok(());
    }
    let sx = src.width as f32 / dw as f32;
    let sy = src.height as f32 / dh as f32;
    let coord = |d: usize, s: f32, n: usize| -> (usize, usize, f32) {
        let c = ((d as f32 + 0.5) * s - 0.5).max(0.0);
        let i0 = (libm::floorf(c) as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        (i0, i1, c - i0 as f32)
    };
    for y in 0..dh {
        let (y0, y1, fy) = coord(y, sy, src.height);
        for x in 0..dw {
            let (x0, x1, fx) = coord(x, sx, src.width);
            let (a, b, c, d) = (
                src.rgb(x0, y0),
                src.rgb(x1, y0),
                src.rgb(x0, y1),
                src.rgb(x1, y1),
            );
            let o = (y * dw + x) * 3;
            for ch in 0..3 {
                let top = a[ch] as f32 + (b[ch] as f32 - a[ch] as f32) * fx;
                let bot = c[ch] as f32 + (d[ch] as f32 - c[ch] as f32) * fx;
                let v = top + (bot - top) * fy;
                dst[o + ch] = libm::roundf(v).clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(())
}

/// How a model was trained to see pixels: `value = pixel · pixel_scale +
/// pixel_offset` (vww: 1/255 and 0; ic: 1 and 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    /// Multiplier applied to the 0..255 pixel value.
    pub pixel_scale: f32,
    /// Added after scaling.
    pub pixel_offset: f32,
}

/// A 256-entry table from pixel value to the model's int8 input:
/// `clamp(round_half_away(value / scale) + zero_point, -128, 127)`.
pub struct QuantLut {
    table: [i8; 256],
}

impl QuantLut {
    /// Builds the table for input quantization `scale`, `zero_point`.
    pub fn new(norm: &Normalize, scale: f32, zero_point: i32) -> Self {
        let mut table = [0i8; 256];
        for (p, t) in table.iter_mut().enumerate() {
            let v = p as f32 * norm.pixel_scale + norm.pixel_offset;
            let q = if scale > 0.0 {
                libm::roundf(v / scale) as i32 + zero_point
            } else {
                zero_point
            };
            *t = q.clamp(-128, 127) as i8;
        }
        QuantLut { table }
    }

    /// The quantized value of pixel value `p`.
    pub fn get(&self, p: u8) -> i8 {
        self.table[p as usize]
    }

    /// Quantizes `src` (interleaved channels, any count) into `dst`.
    pub fn apply(&self, src: &[u8], dst: &mut [i8]) -> Result<(), VisionError> {
        if dst.len() < src.len() {
            return Err(VisionError::BufferTooSmall {
                needed: src.len(),
                got: dst.len(),
            });
        }
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = self.table[s as usize];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_resize_is_a_copy() {
        let px: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let img = ImageRef::new(&px, 2, 2, PixelFormat::Rgb888).unwrap();
        let mut out = [0u8; 12];
        resize_bilinear_rgb888(&img, &mut out, 2, 2).unwrap();
        assert_eq!(out, px);
    }

    #[test]
    fn downscale_by_two_averages_pairs() {
        // 4×1 gray ramp → 2×1: centres fall between pixel pairs.
        let px = [0u8, 100, 200, 250];
        let img = ImageRef::new(&px, 4, 1, PixelFormat::Gray8).unwrap();
        let mut out = [0u8; 6];
        resize_bilinear_rgb888(&img, &mut out, 2, 1).unwrap();
        assert_eq!(out, [50, 50, 50, 225, 225, 225]);
    }

    #[test]
    fn rgb565_full_scale_and_gray() {
        assert_eq!(rgb565_to_rgb888(0xffff), [255, 255, 255]);
        assert_eq!(rgb565_to_rgb888(0xf800), [255, 0, 0]);
        assert_eq!(rgb_to_gray([255, 255, 255]), 255);
        assert_eq!(rgb_to_gray([0, 0, 0]), 0);
    }

    #[test]
    fn center_crop_and_bad_geometry() {
        let px = [0u8; 6 * 4 * 3];
        let img = ImageRef::new(&px, 6, 4, PixelFormat::Rgb888).unwrap();
        let sq = img.center_crop_to_aspect(1, 1).unwrap();
        assert_eq!((sq.width(), sq.height()), (4, 4));
        assert_eq!(img.crop(4, 0, 3, 1).unwrap_err(), VisionError::BadGeometry);
        assert!(matches!(
            ImageRef::new(&px[..10], 6, 4, PixelFormat::Rgb888),
            Err(VisionError::BufferTooSmall { .. })
        ));
        let mut small = [0u8; 5];
        assert!(resize_bilinear_rgb888(&img, &mut small, 2, 2).is_err());
    }

    #[test]
    fn lut_matches_the_models_preprocessing() {
        // vww: pixel/255 with scale 1/255, zero point -128 → pixel - 128.
        let l = QuantLut::new(
            &Normalize {
                pixel_scale: 1.0 / 255.0,
                pixel_offset: 0.0,
            },
            1.0 / 255.0,
            -128,
        );
        for p in 0..=255u8 {
            assert_eq!(l.get(p) as i32, p as i32 - 128);
        }
        // ic: raw pixels with scale 1, zero point -128.
        let l = QuantLut::new(
            &Normalize {
                pixel_scale: 1.0,
                pixel_offset: 0.0,
            },
            1.0,
            -128,
        );
        assert_eq!(l.get(255), 127);
        assert_eq!(l.get(0), -128);
    }
}
