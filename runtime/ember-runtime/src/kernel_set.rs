//! Which kernels a build contains.
//!
//! Every op of a model runs on one [`Kernel`]: the pair of its opcode and
//! compiler-chosen variant, its element type and the model's rounding pick
//! it. A firmware that runs one known model names the kernels it needs
//! through a [`KernelSet`] (TFLite Micro's op resolver, decided at build
//! time): [`Model::load_with`](crate::Model::load_with) and
//! [`Interpreter::with_kernels`](crate::Interpreter::with_kernels) are
//! generic over it, every kernel call in the dispatch is behind a constant
//! test of the set, and the linker drops the kernels the set leaves out. A
//! model that needs a kernel the build lacks is refused at load time with
//! [`Error::KernelNotBuilt`](crate::Error::KernelNotBuilt).
//!
//! Host tools and general-purpose builds use [`AllKernels`].

/// One kernel of the runtime: one entry point of the op dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Kernel {
    /// int8 convolution, reference.
    ConvS8 = 0,
    /// int8 convolution, optimized (pointwise or gathered windows), TFLite
    /// rounding.
    ConvS8Opt,
    /// int8 convolution, optimized, float requantization (onnxruntime).
    ConvS8OptFloat,
    /// int8 depthwise convolution, reference.
    DepthwiseS8,
    /// int8 depthwise convolution, optimized, TFLite rounding.
    DepthwiseS8Opt,
    /// int8 depthwise convolution, optimized, float requantization
    /// (onnxruntime).
    DepthwiseS8OptFloat,
    /// f32 convolution, reference.
    ConvF32,
    /// f32 convolution, optimized.
    ConvF32Opt,
    /// f32 depthwise convolution, reference.
    DepthwiseF32,
    /// f32 depthwise convolution, optimized.
    DepthwiseF32Opt,
    /// int8 fully connected, reference.
    FullyConnectedS8,
    /// int8 fully connected, optimized.
    FullyConnectedS8Opt,
    /// f32 fully connected, reference.
    FullyConnectedF32,
    /// f32 fully connected, optimized.
    FullyConnectedF32Opt,
    /// f32 add, subtract, multiply or divide with broadcasting.
    BinaryF32,
    /// int8 add with TFLite rounding, reference.
    AddS8,
    /// int8 add with TFLite rounding, same-shape operands, optimized.
    AddS8Opt,
    /// int8 multiply with TFLite rounding.
    MulS8,
    /// int8 element-wise op through float (onnxruntime rounding).
    BinaryS8Float,
    /// int8 global average pool, optimized.
    GlobalAvgPoolS8Opt,
    /// int8 average pool with TFLite rounding.
    AvgPoolS8,
    /// int8 average pool rounded around the zero point (onnxruntime).
    AvgPoolS8Zp,
    /// int8 max pool.
    MaxPoolS8,
    /// f32 average pool.
    AvgPoolF32,
    /// f32 max pool.
    MaxPoolF32,
    /// f32 softmax.
    SoftmaxF32,
    /// int8 softmax with TFLite's fixed-point arithmetic.
    SoftmaxS8,
    /// int8 softmax through float (onnxruntime).
    SoftmaxS8Float,
    /// Transpose of any element type.
    Transpose,
    /// Byte copy.
    Copy,
    /// int8 constant padding.
    PadS8,
    /// f32 constant padding.
    PadF32,
    /// int8 concatenation.
    ConcatS8,
    /// f32 concatenation.
    ConcatF32,
    /// f32 to int8/uint8 quantization.
    Quantize,
    /// int8/uint8/int32 to f32 dequantization.
    Dequantize,
    /// int8 clamp.
    ClampS8,
    /// f32 clamp.
    ClampF32,
    /// Batched f32 matrix product.
    MatMul,
    /// Fused f32 attention.
    Attention,
    /// f32 layer normalization.
    LayerNorm,
    /// f32 unary functions (GELU, erf, …).
    Unary,
    /// Embedding lookup.
    Gather,
    /// Dynamically quantized int8 fully connected, reference.
    DynamicFullyConnected,
    /// Dynamically quantized int8 fully connected, optimized.
    DynamicFullyConnectedOpt,
    /// f32 reductions over one axis.
    Reduce,
    /// Element type conversion.
    Cast,
    /// Element-wise comparison.
    Compare,
    /// Element-wise selection.
    Where,
    /// Broadcast to a larger shape.
    Expand,
}

impl Kernel {
    /// Every kernel, in bit order.
    pub const ALL: [Kernel; 50] = [
        Kernel::ConvS8,
        Kernel::ConvS8Opt,
        Kernel::ConvS8OptFloat,
        Kernel::DepthwiseS8,
        Kernel::DepthwiseS8Opt,
        Kernel::DepthwiseS8OptFloat,
        Kernel::ConvF32,
        Kernel::ConvF32Opt,
        Kernel::DepthwiseF32,
        Kernel::DepthwiseF32Opt,
        Kernel::FullyConnectedS8,
        Kernel::FullyConnectedS8Opt,
        Kernel::FullyConnectedF32,
        Kernel::FullyConnectedF32Opt,
        Kernel::BinaryF32,
        Kernel::AddS8,
        Kernel::AddS8Opt,
        Kernel::MulS8,
        Kernel::BinaryS8Float,
        Kernel::GlobalAvgPoolS8Opt,
        Kernel::AvgPoolS8,
        Kernel::AvgPoolS8Zp,
        Kernel::MaxPoolS8,
        Kernel::AvgPoolF32,
        Kernel::MaxPoolF32,
        Kernel::SoftmaxF32,
        Kernel::SoftmaxS8,
        Kernel::SoftmaxS8Float,
        Kernel::Transpose,
        Kernel::Copy,
        Kernel::PadS8,
        Kernel::PadF32,
        Kernel::ConcatS8,
        Kernel::ConcatF32,
        Kernel::Quantize,
        Kernel::Dequantize,
        Kernel::ClampS8,
        Kernel::ClampF32,
        Kernel::MatMul,
        Kernel::Attention,
        Kernel::LayerNorm,
        Kernel::Unary,
        Kernel::Gather,
        Kernel::DynamicFullyConnected,
        Kernel::DynamicFullyConnectedOpt,
        Kernel::Reduce,
        Kernel::Cast,
        Kernel::Compare,
        Kernel::Where,
        Kernel::Expand,
    ];

    /// The kernels of the transformer operators: the tail of [`Self::ALL`]
    /// from [`Kernel::MatMul`] on.
    pub const TRANSFORMER: &'static [Kernel] = Kernel::ALL.split_at(Kernel::MatMul as usize).1;

    /// Its name, as `ember inspect` and the error messages show it.
    pub const fn name(self) -> &'static str {
        match self {
            Kernel::ConvS8 => "conv2d_s8",
            Kernel::ConvS8Opt => "conv2d_s8_opt",
            Kernel::ConvS8OptFloat => "conv2d_s8_opt_float",
            Kernel::DepthwiseS8 => "depthwise_conv2d_s8",
            Kernel::DepthwiseS8Opt => "depthwise_conv2d_s8_opt",
            Kernel::DepthwiseS8OptFloat => "depthwise_conv2d_s8_opt_float",
            Kernel::ConvF32 => "conv2d_f32",
            Kernel::ConvF32Opt => "conv2d_f32_opt",
            Kernel::DepthwiseF32 => "depthwise_conv2d_f32",
            Kernel::DepthwiseF32Opt => "depthwise_conv2d_f32_opt",
            Kernel::FullyConnectedS8 => "fully_connected_s8",
            Kernel::FullyConnectedS8Opt => "fully_connected_s8_opt",
            Kernel::FullyConnectedF32 => "fully_connected_f32",
            Kernel::FullyConnectedF32Opt => "fully_connected_f32_opt",
            Kernel::BinaryF32 => "binary_f32",
            Kernel::AddS8 => "add_s8",
            Kernel::AddS8Opt => "add_s8_opt",
            Kernel::MulS8 => "mul_s8",
            Kernel::BinaryS8Float => "binary_s8_float",
            Kernel::GlobalAvgPoolS8Opt => "global_avg_pool_s8_opt",
            Kernel::AvgPoolS8 => "avg_pool_s8",
            Kernel::AvgPoolS8Zp => "avg_pool_s8_zp",
            Kernel::MaxPoolS8 => "max_pool_s8",
            Kernel::AvgPoolF32 => "avg_pool_f32",
            Kernel::MaxPoolF32 => "max_pool_f32",
            Kernel::SoftmaxF32 => "softmax_f32",
            Kernel::SoftmaxS8 => "softmax_s8",
            Kernel::SoftmaxS8Float => "softmax_s8_float",
            Kernel::Transpose => "transpose",
            Kernel::Copy => "copy",
            Kernel::PadS8 => "pad_s8",
            Kernel::PadF32 => "pad_f32",
            Kernel::ConcatS8 => "concat_s8",
            Kernel::ConcatF32 => "concat_f32",
            Kernel::Quantize => "quantize",
            Kernel::Dequantize => "dequantize",
            Kernel::ClampS8 => "clamp_s8",
            Kernel::ClampF32 => "clamp_f32",
            Kernel::MatMul => "matmul_f32",
            Kernel::Attention => "attention_f32",
            Kernel::LayerNorm => "layer_norm_f32",
            Kernel::Unary => "unary_f32",
            Kernel::Gather => "gather",
            Kernel::DynamicFullyConnected => "fully_connected_dynamic_f32",
            Kernel::DynamicFullyConnectedOpt => "fully_connected_dynamic_f32_opt",
            Kernel::Reduce => "reduce_f32",
            Kernel::Cast => "cast",
            Kernel::Compare => "compare",
            Kernel::Where => "where",
            Kernel::Expand => "expand",
        }
    }

    const fn bit(self) -> u64 {
        1 << (self as u8)
    }
}

/// A set of [`Kernel`]s, as a bit mask (bit `k as u8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Kernels(u64);

impl Kernels {
    /// No kernel.
    pub const NONE: Kernels = Kernels(0);
    /// Every kernel.
    pub const ALL: Kernels = {
        let mut bits = 0;
        let mut i = 0;
        while i < Kernel::ALL.len() {
            bits |= Kernel::ALL[i].bit();
            i += 1;
        }
        Kernels(bits)
    };

    /// The set whose mask is `bits` (as [`Self::bits`] gave it); bits
    /// that name no kernel are dropped.
    pub const fn from_bits(bits: u64) -> Kernels {
        Kernels(bits & Kernels::ALL.0)
    }

    /// The mask.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// This set and `k`.
    pub const fn with(self, k: Kernel) -> Kernels {
        Kernels(self.0 | k.bit())
    }

    /// Whether `k` is in the set.
    pub const fn contains(self, k: Kernel) -> bool {
        self.0 & k.bit() != 0
    }

    /// Whether any of `ks` is in the set.
    pub const fn any(self, ks: &[Kernel]) -> bool {
        let mut i = 0;
        while i < ks.len() {
            if self.contains(ks[i]) {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Number of kernels in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kernels in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Kernel> {
        Kernel::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

/// The kernels a build contains, fixed at compile time.
///
/// ```
/// use ember_runtime::{Kernel, Kernels, KernelSet};
/// /// The kernels of a keyword-spotting CNN.
/// struct Kws;
/// impl KernelSet for Kws {
///     const KERNELS: Kernels = Kernels::NONE
///         .with(Kernel::ConvS8Opt)
///         .with(Kernel::DepthwiseS8Opt)
///         .with(Kernel::GlobalAvgPoolS8Opt)
///         .with(Kernel::FullyConnectedS8Opt)
///         .with(Kernel::SoftmaxS8);
/// }
/// ```
pub trait KernelSet {
    /// The kernels.
    const KERNELS: Kernels;
}

/// Every kernel of the runtime (host tools, general-purpose builds).
pub struct AllKernels;

impl KernelSet for AllKernels {
    const KERNELS: Kernels = Kernels::ALL;
}

/// `Ok` if `S` has `k`; the check folds to a constant, so when it fails
/// the kernel call after it is dead code and is not linked.
#[inline(always)]
pub(crate) fn built<S: KernelSet>(op: u32, k: Kernel) -> crate::Result<()> {
    if S::KERNELS.contains(k) {
        Ok(())
    } else {
        Err(crate::Error::KernelNotBuilt { op, kernel: k })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_name_every_kernel_once() {
        for (i, k) in Kernel::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{}", k.name());
        }
        assert_eq!(Kernels::ALL.len(), Kernel::ALL.len());
        let s = Kernels::NONE.with(Kernel::Copy).with(Kernel::Expand);
        assert_eq!(Kernels::from_bits(s.bits()), s);
        let mut it = s.iter();
        assert_eq!(it.next(), Some(Kernel::Copy));
        assert_eq!(it.next(), Some(Kernel::Expand));
        assert_eq!(it.next(), None);
        assert!(s.contains(Kernel::Copy) && !s.contains(Kernel::ConvS8));
        assert!(s.any(&[Kernel::ConvS8, Kernel::Expand]) && !s.any(&[Kernel::ConvS8]));
        assert_eq!(Kernel::TRANSFORMER.len(), 12);
        assert_eq!(Kernel::TRANSFORMER.first(), Some(&Kernel::MatMul));
    }
}
