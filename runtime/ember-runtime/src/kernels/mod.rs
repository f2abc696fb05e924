//! Portable reference kernels: the specification every optimized kernel must
//! match bit for bit (int8) or within a stated tolerance (f32).
//!
//! One file per operator. Kernels are safe Rust, do not allocate and never
//! panic: each checks its slice lengths against its shapes on entry and
//! returns [`Error::ShapeMismatch`] instead of indexing out of range.
//! Layouts: activations NHWC, conv filters `[Co, Kh, Kw, Ci/groups]`,
//! depthwise filters `[1, Kh, Kw, Co]`, fully-connected weights `[N, K]`.

use crate::error::{Error, Result};

pub mod broadcast;
pub mod clamp;
pub mod concat;
pub mod conv;
pub mod depthwise_conv;
pub mod elementwise;
pub mod fully_connected;
pub mod pad;
pub mod pool;
pub mod quant;
pub mod quantize;
pub mod softmax;
pub mod transpose;

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
    /// onnxruntime: one real scale per channel (or one for the tensor);
    /// `round_half_even(acc as f32 * scale)`.
    Float(&'a [f32]),
}

impl Requant<'_> {
    /// Number of channels described (1 = per-tensor).
    pub fn channels(&self) -> usize {
        match self {
            Requant::Fixed(p) | Requant::FixedSingle(p) => p.len() / 2,
            Requant::Float(s) => s.len(),
        }
    }

    /// Requantizes `acc` for output channel `ch` (channel 0 when per-tensor).
    /// Returns the value before adding the output zero point.
    #[inline(always)]
    pub fn apply(&self, acc: i32, ch: usize) -> i32 {
        match *self {
            Requant::Fixed(p) => {
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

pub(crate) fn check_len(got: usize, want: Option<usize>, what: &'static str) -> Result<()> {
    if Some(got) == want {
        Ok(())
    } else {
        Err(Error::ShapeMismatch(what))
    }
}
