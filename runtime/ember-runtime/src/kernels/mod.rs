//! Portable reference kernels: the specification every optimized kernel must
//! match bit for bit (int8) or within a stated tolerance (f32).
//!
//! One file per operator. Kernels are safe Rust, do not allocate and never
//! panic: each checks its slice lengths against its shapes on entry and
//! returns [`Error::ShapeMismatch`] instead of indexing out of range.
//! Layouts: activations NHWC, conv filters `[Co, Kh, Kw, Ci/groups]`,
//! depthwise filters `[1, Kh, Kw, Co]`, fully-connected weights `[N, K]`.

use crate::error::{Error, Result};

pub mod attention;
pub mod broadcast;
pub mod clamp;
pub mod concat;
pub mod conv;
pub mod conv_transpose;
pub mod depthwise_conv;
pub mod dynamic_fc;
pub mod elementwise;
mod erf_table;
pub mod fully_connected;
pub mod gather;
pub mod half;
pub mod index;
pub mod layer_norm;
pub mod logic;
pub mod matmul;
pub mod opt;
pub mod pad;
pub mod pool;
pub mod quant;
pub mod quantize;
pub mod reduce;
pub mod resize;
pub mod slice;
pub mod softmax;
pub mod transpose;
pub mod unary;

/// A 4-D NHWC shape (or `[Co, Kh, Kw, Ci]` for filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Shape4 {
    /// Batch (or output channels for a filter).
    pub n: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

impl Shape4 {
    /// Builds a shape from `[n, h, w, c]`.
    pub const fn new(n: usize, h: usize, w: usize, c: usize) -> Self {
        Shape4 { n, h, w, c }
    }

    /// Number of elements, `None` on overflow.
    pub fn numel(&self) -> Option<usize> {
        self.n
            .checked_mul(self.h)?
            .checked_mul(self.w)?
            .checked_mul(self.c)
    }
}

/// Geometry of a convolution or pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Window {
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical dilation (1 for pooling).
    pub dil_h: usize,
    /// Horizontal dilation (1 for pooling).
    pub dil_w: usize,
    /// Rows of implicit padding above.
    pub pad_top: usize,
    /// Columns of implicit padding on the left.
    pub pad_left: usize,
    /// Rows of implicit padding below.
    pub pad_bottom: usize,
    /// Columns of implicit padding on the right.
    pub pad_right: usize,
}

impl Window {
    /// Whether either dilation differs from 1.
    pub fn is_dilated(&self) -> bool {
        self.dil_h != 1 || self.dil_w != 1
    }

    /// Output height and width for an `in_h × in_w` input and a `kh × kw`
    /// kernel under this window; `None` when the window does not fit.
    pub fn out_hw(&self, in_h: usize, in_w: usize, kh: usize, kw: usize) -> Option<(usize, usize)> {
        Some((
            Window::out_dim(
                in_h,
                kh,
                self.stride_h,
                self.dil_h,
                self.pad_top,
                self.pad_bottom,
            )?,
            Window::out_dim(
                in_w,
                kw,
                self.stride_w,
                self.dil_w,
                self.pad_left,
                self.pad_right,
            )?,
        ))
    }

    /// Output extent along one axis for an input extent, kernel extent,
    /// stride, dilation and paddings; `None` when the window does not fit
    /// or a parameter is zero.
    pub fn out_dim(
        input: usize,
        kernel: usize,
        stride: usize,
        dil: usize,
        pad_a: usize,
        pad_b: usize,
    ) -> Option<usize> {
        if kernel == 0 || stride == 0 || dil == 0 {
            return None;
        }
        let padded = input.checked_add(pad_a)?.checked_add(pad_b)?;
        let eff = (kernel - 1).checked_mul(dil)?.checked_add(1)?;
        if padded < eff {
            return None;
        }
        Some((padded - eff) / stride + 1)
    }
}

/// How an integer kernel turns an int32 accumulator into the output scale.
#[derive(Clone, Copy, Debug)]
pub enum Requant<'a> {
    /// TFLite fixed point with double rounding (convolutions):
    /// `pairs = [mult0, shift0, mult1, shift1, ..]`, one pair per channel
    /// or a single pair for the whole tensor.
    Fixed(&'a [i32]),
    /// TFLite fixed point with single rounding (fully connected); same
    /// layout as [`Requant::Fixed`].
    FixedSingle(&'a [i32]),
    /// [`Requant::Fixed`] (per channel, double rounding) plus the blocked
    /// table of the optimized epilogues ([`opt::requant_blocks`]); same
    /// results.
    FixedBlocked {
        /// `[mult, shift]` per channel.
        pairs: &'a [i32],
        /// Blocks of `[mult ×4, left ×4, −right ×4]`.
        blocks: &'a [i32],
    },
    /// onnxruntime: one real scale per channel (or one for the tensor);
    /// `round_half_even(acc as f32 * scale)`.
    Float(&'a [f32]),
}

impl Requant<'_> {
    /// Number of channels described (1 = per-tensor).
    pub fn channels(&self) -> usize {
        match self {
            Requant::Fixed(p) | Requant::FixedSingle(p) => p.len() / 2,
            Requant::FixedBlocked { pairs, .. } => pairs.len() / 2,
            Requant::Float(s) => s.len(),
        }
    }

    /// Requantizes `acc` for output channel `ch` (channel 0 when per-tensor).
    /// Returns the value before adding the output zero point.
    #[inline(always)]
    pub fn apply(&self, acc: i32, ch: usize) -> i32 {
        match *self {
            Requant::Fixed(p) | Requant::FixedBlocked { pairs: p, .. } => {
                let i = if p.len() == 2 { 0 } else { ch * 2 };
                match (p.get(i), p.get(i + 1)) {
                    (Some(&m), Some(&s)) => quant::multiply_by_quantized_multiplier(acc, m, s),
                    _ => 0,
                }
            }
            Requant::FixedSingle(p) => {
                let i = if p.len() == 2 { 0 } else { ch * 2 };
                match (p.get(i), p.get(i + 1)) {
                    (Some(&m), Some(&s)) => {
                        quant::multiply_by_quantized_multiplier_single_rounding(acc, m, s)
                    }
                    _ => 0,
                }
            }
            Requant::Float(s) => {
                let i = if s.len() == 1 { 0 } else { ch };
                match s.get(i) {
                    Some(&scale) => quant::round_half_even_to_i32(acc as f32 * scale),
                    None => 0,
                }
            }
        }
    }
}

/// Zero points and clamping bounds of an int8 op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantIo {
    /// Input zero point (subtracted from every input value).
    pub in_zp: i32,
    /// Output zero point (added after requantization).
    pub out_zp: i32,
    /// Lowest output value (quantized; includes a fused ReLU).
    pub act_min: i32,
    /// Highest output value (quantized; includes a fused ReLU6/Clip).
    pub act_max: i32,
}

/// `Ok` when a slice length equals the element count computed from a shape
/// (`None` = the count overflowed), else [`Error::ShapeMismatch`].
pub(crate) fn check_len(got: usize, want: Option<usize>, what: &'static str) -> Result<()> {
    if Some(got) == want {
        Ok(())
    } else {
        Err(Error::ShapeMismatch(what))
    }
}

/// Checks that a [`Requant`] describes either one channel or exactly
/// `channels` channels (and that a fixed-point table has whole pairs).
pub(crate) fn check_requant(rq: &Requant<'_>, channels: usize, what: &'static str) -> Result<()> {
    let ok = match rq {
        Requant::Fixed(p) | Requant::FixedSingle(p) => {
            p.len() == 2 || Some(p.len()) == channels.checked_mul(2)
        }
        Requant::FixedBlocked { pairs, blocks } => {
            Some(pairs.len()) == channels.checked_mul(2)
                && Some(blocks.len()) == (channels / 4).checked_mul(quant::REQUANT_BLOCK_WORDS)
        }
        Requant::Float(s) => s.len() == 1 || s.len() == channels,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::ShapeMismatch(what))
    }
}

/// Clamps an int32 result to the activation range `[lo, hi]` (TFLite
/// order: `max` with `lo`, then `min` with `hi`) and then to the int8 range,
/// so out-of-range bounds can never wrap.
#[inline(always)]
pub(crate) fn sat_i8(v: i32, lo: i32, hi: i32) -> i8 {
    v.max(lo).min(hi).clamp(i8::MIN as i32, i8::MAX as i32) as i8
}

/// Clamps an f32 result to `[lo, hi]` (as TFLite's
/// `ActivationFunctionWithMinMax` for numbers); a NaN stays NaN.
#[inline(always)]
pub(crate) fn clamp_f32(v: f32, lo: f32, hi: f32) -> f32 {
    // Comparisons, not `f32::max`/`min`: those return the other operand
    // for NaN, which would turn a NaN into a plausible bound.
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// Advances the row-major multi-index `idx` over `dims` (the last axis
/// fastest), wrapping to all zeros after the last element.
#[inline]
/// Index of the first NaN or infinity in `x`, if any: the check a firmware
/// can run on float sensor data before an inference (a non-finite input
/// gives plausible-looking garbage, not an error).
pub fn first_non_finite(x: &[f32]) -> Option<usize> {
    x.iter().position(|v| !v.is_finite())
}

pub(crate) fn next_index(idx: &mut [usize], dims: &[usize]) {
    for d in (0..dims.len().min(idx.len())).rev() {
        idx[d] += 1;
        if idx[d] < dims[d] {
            return;
        }
        idx[d] = 0;
    }
}

/// Kernel taps along one axis that land inside the input.
///
/// For output position `o`, tap `k` reads padded coordinate
/// `o·stride + k·dil`, i.e. input coordinate `o·stride + k·dil − pad`.
/// Returns `(k0, k1, first)`: taps `k0..k1` are inside `0..input`, and tap
/// `k` (for `k` in that range) reads input coordinate
/// `first + (k − k0)·dil`. The range is empty when the whole window lies in
/// the padding.
///
/// Callers must have validated the geometry with [`Window::out_dim`]
/// (`o` below the output extent, `stride`/`dil` non-zero), which bounds
/// every intermediate value by the padded extent: nothing here overflows.
#[inline(always)]
pub(crate) fn taps(
    o: usize,
    stride: usize,
    dil: usize,
    pad: usize,
    kernel: usize,
    input: usize,
) -> (usize, usize, usize) {
    let dil = dil.max(1);
    let p0 = o.saturating_mul(stride); // padded coordinate of tap 0
    let end = pad.saturating_add(input); // first padded coordinate past the image
    let k1 = if p0 >= end {
        0
    } else {
        (end - p0).div_ceil(dil).min(kernel)
    };
    let k0 = if p0 >= pad {
        0
    } else {
        (pad - p0).div_ceil(dil)
    }
    .min(k1);
    let first = p0
        .saturating_add(k0.saturating_mul(dil))
        .saturating_sub(pad);
    (k0, k1, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_match_brute_force() {
        for input in 0..6 {
            for kernel in 1..5 {
                for stride in 1..4 {
                    for dil in 1..4 {
                        for pad in 0..5 {
                            let Some(out) = Window::out_dim(input, kernel, stride, dil, pad, pad)
                            else {
                                continue;
                            };
                            for o in 0..out {
                                let inside = |k: usize| {
                                    let p = o * stride + k * dil;
                                    p >= pad && p < pad + input
                                };
                                let (k0, k1, first) = taps(o, stride, dil, pad, kernel, input);
                                for k in 0..kernel {
                                    assert_eq!((k0..k1).contains(&k), inside(k));
                                }
                                if k0 < k1 {
                                    assert_eq!(first, o * stride + k0 * dil - pad);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn requant_and_clamp_helpers() {
        assert!(check_requant(&Requant::Fixed(&[1, 0]), 4, "").is_ok());
        assert!(check_requant(&Requant::Fixed(&[1, 0, 1, 0]), 2, "").is_ok());
        assert!(check_requant(&Requant::Fixed(&[1, 0, 1]), 1, "").is_err());
        assert!(check_requant(&Requant::FixedSingle(&[1, 0, 1, 0]), 3, "").is_err());
        assert!(check_requant(&Requant::Float(&[1.0; 3]), 3, "").is_ok());
        assert!(check_requant(&Requant::Float(&[]), 0, "").is_ok());
        assert!(check_requant(&Requant::Float(&[1.0; 2]), 3, "").is_err());
        assert_eq!(sat_i8(300, -128, 127), 127);
        assert_eq!(sat_i8(5, 0, 6), 5);
        assert_eq!(sat_i8(5, 10, 6), 6); // inverted bounds: hi wins, as in TFLite
        assert_eq!(sat_i8(-5, -1000, 1000), -5);
        assert_eq!(sat_i8(i32::MIN, -1000, 1000), -128);
        assert_eq!(clamp_f32(7.0, 0.0, 6.0), 6.0);
        assert_eq!(clamp_f32(-7.0, 0.0, 6.0), 0.0);
    }
}
