//! The compiled-model blob format (version 1): the single contract between the
//! host compiler (writer) and the device runtime (reader).
//!
//! All integers are little-endian. Every section starts on a 16-byte boundary
//! so that constant `f32`/`i32` data can be used in place from flash.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "EMBR"
//!      4     4  format version (u32) = FORMAT_VERSION
//!      8     4  total blob length in bytes (u32)
//!     12     4  CRC-32 (IEEE) of bytes [16, total)
//!     16     4  flags (u32, reserved, must be 0)
//!     20     4  arena bytes the model needs (u32)
//!     24     8  tensor table: count, offset        (TENSOR_RECORD_BYTES each)
//!     32     8  op table:     count, offset        (OP_RECORD_BYTES each)
//!     40     8  graph inputs:  count, offset       (u32 tensor indices)
//!     48     8  graph outputs: count, offset       (u32 tensor indices)
//!     56     8  operand pool: word count, offset  (u32 tensor indices used by ops)
//!     64     8  param pool:   word count, offset  (i32 words used by ops)
//!     72     8  constant data: byte length, offset
//!     80     8  string pool:  byte length, offset (UTF-8 names)
//!     88     4  requantization semantics (u32, see [`Rounding`])
//!     92     4  reserved, must be 0
//! ```
//!
//! A tensor record (`TENSOR_RECORD_BYTES` = 64):
//!
//! ```text
//!  0  u8   dtype ([`DType`])
//!  1  u8   storage ([`Storage`])
//!  2  u8   rank (0..=MAX_RANK)
//!  3  u8   reserved (0)
//!  4  u32×6 dims (entries past `rank` must be 0)
//! 28  u32  offset (arena offset, or offset into the constant data section)
//! 32  u32  size in bytes (= product(dims) × dtype size)
//! 36  f32  quantization scale (0.0 = not quantized)
//! 40  i32  quantization zero point
//! 44  u32  name offset in the string pool
//! 48  u32  name length
//! 52  u32  alias_of: index of the tensor whose bytes this one views
//!          (a free reshape), or NO_TENSOR
//! 56   8   reserved (0)
//! ```
//!
//! An op record (`OP_RECORD_BYTES` = 32):
//!
//! ```text
//!  0  u16  opcode ([`OpCode`])
//!  2  u16  kernel variant (0 = portable reference)
//!  4  u16  number of inputs
//!  6  u16  number of outputs
//!  8  u32  first operand index in the operand pool (inputs, then outputs)
//! 12  u32  first word in the param pool
//! 16  u32  number of param words
//! 20  u32  name offset in the string pool
//! 24  u32  name length
//! 28  u32  reserved (0)
//! ```
//!
//! An operand index of [`NO_TENSOR`] marks an absent optional input (e.g. a
//! convolution without bias).

/// Blob magic bytes.
pub const MAGIC: [u8; 4] = *b"EMBR";
/// Format version this runtime reads and the compiler writes.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the fixed header.
pub const HEADER_BYTES: usize = 96;
/// Size of one tensor record.
pub const TENSOR_RECORD_BYTES: usize = 64;
/// Size of one op record.
pub const OP_RECORD_BYTES: usize = 32;
/// Highest tensor rank.
pub const MAX_RANK: usize = 6;
/// Alignment of every section, of constant tensors and of arena offsets.
pub const ALIGN: usize = 16;
/// Operand index meaning "no tensor" for optional inputs.
pub const NO_TENSOR: u32 = u32::MAX;
/// Most inputs an op may take.
pub const MAX_OP_INPUTS: usize = 8;

/// Input slot of an optimized variant's folded bias (`bias − in_zp·Σw`,
/// constant i32 per output channel, computed by the compiler).
pub const FOLDED_BIAS_INPUT: usize = 4;
/// Input slot of an optimized variant's scratch buffer (an arena tensor
/// the op may overwrite, planned to live only during the op).
pub const SCRATCH_INPUT: usize = 5;
/// Input slot of an optimized variant's blocked requantization table
/// (optional; constant i32, see [`crate::kernels::opt::requant_blocks`]):
/// the shifts split ahead of time, read four channels at a time by the
/// Helium epilogue on the M55 and by the scalar one elsewhere.
pub const REQUANT_BLOCKS_INPUT: usize = 6;
/// Input slot of a convolution's filter widened to int16 for a target's
/// kernels (optional; constant i16), in one of two layouts told apart by
/// the length:
/// - NEON ([`crate::kernels::opt::pack_weights_s16`], a multiple of 8
///   elements): blocks of eight output channels, each `[K][8]`, so that
///   one `SMLAL` by element multiplies eight channels by one input;
/// - Cortex-M DSP ([`crate::kernels::opt::pack_weights_dsp`], 2 mod 4
///   elements): pairs of rows in groups of four values, in the halfword
///   order `SMLAD` takes, ending in
///   [`crate::kernels::opt::DSP_WEIGHTS_MARK`].
///
/// Each build uses the layout its kernels read and ignores the other;
/// validation checks either against the filter element by element.
pub const PACKED_WEIGHTS_INPUT: usize = 7;

/// Kernel variants an op record may name. Variant 0 is always the
/// portable reference kernel; the others are the optimized kernels of
/// [`crate::kernels::opt`], whose instruction set (Helium, DSP, NEON or
/// portable) is fixed when the runtime is built.
pub mod variant {
    /// The reference kernel (every opcode).
    pub const REFERENCE: u16 = 0;
    /// [`super::OpCode::Conv2d`]: pointwise 1×1 (stride 1, no padding,
    /// one group) as a matrix product on the input rows.
    pub const CONV_POINTWISE: u16 = 1;
    /// [`super::OpCode::Conv2d`]: one group, each receptive field gathered
    /// into scratch, then a matrix product.
    pub const CONV_IM2COL: u16 = 2;
    /// [`super::OpCode::Conv2d`]: f32, one group, four pixels and four
    /// output channels per pass (fused multiply-adds on NEON; scratch for
    /// four receptive fields unless pointwise).
    pub const CONV_F32: u16 = 3;
    /// [`super::OpCode::DepthwiseConv2d`]: multiplier 1, sixteen channels
    /// per block.
    pub const DEPTHWISE: u16 = 1;
    /// [`super::OpCode::DepthwiseConv2d`]: f32, multiplier 1, four
    /// channels per vector.
    pub const DEPTHWISE_F32: u16 = 2;
    /// [`super::OpCode::FullyConnected`]: int8, weight zero point 0.
    pub const FULLY_CONNECTED: u16 = 1;
    /// [`super::OpCode::FullyConnected`]: f32, four outputs per pass.
    pub const FULLY_CONNECTED_F32: u16 = 2;
    /// [`super::OpCode::Add`]: int8 with TFLite rounding, operands and
    /// output of one shape.
    pub const ADD: u16 = 1;
    /// [`super::OpCode::DynamicFullyConnected`]: four weight rows per pass
    /// over the quantized input row.
    pub const DYNAMIC_FC: u16 = 1;
    /// [`super::OpCode::AvgPool2d`]: int8, the window is the whole image
    /// (no padding, one output pixel).
    pub const GLOBAL_AVG_POOL: u16 = 1;
}

/// The kernel an (opcode, variant) pair names, as `ember inspect` shows
/// it; `None` for a variant this runtime does not have.
pub fn kernel_name(opcode: OpCode, v: u16) -> Option<&'static str> {
    Some(match (opcode, v) {
        (_, variant::REFERENCE) => "reference",
        (OpCode::Conv2d, variant::CONV_POINTWISE) => "conv2d_s8_pointwise",
        (OpCode::Conv2d, variant::CONV_IM2COL) => "conv2d_s8_im2col",
        (OpCode::Conv2d, variant::CONV_F32) => "conv2d_f32_opt",
        (OpCode::DepthwiseConv2d, variant::DEPTHWISE_F32) => "depthwise_conv2d_f32_opt",
        (OpCode::FullyConnected, variant::FULLY_CONNECTED_F32) => "fully_connected_f32_opt",
        (OpCode::DepthwiseConv2d, variant::DEPTHWISE) => "depthwise_conv2d_s8_opt",
        (OpCode::FullyConnected, variant::FULLY_CONNECTED) => "fully_connected_s8_opt",
        (OpCode::Add, variant::ADD) => "add_s8_opt",
        (OpCode::AvgPool2d, variant::GLOBAL_AVG_POOL) => "global_avg_pool_s8_opt",
        (OpCode::DynamicFullyConnected, variant::DYNAMIC_FC) => "fully_connected_dynamic_f32_opt",
        _ => return None,
    })
}

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DType {
    /// Signed 8-bit integer.
    I8 = 0,
    /// Unsigned 8-bit integer.
    U8 = 1,
    /// Signed 32-bit integer.
    I32 = 2,
    /// IEEE-754 single precision float.
    F32 = 3,
    /// Signed 16-bit integer (kernel-packed constants, e.g. widened
    /// weights).
    I16 = 4,
}

impl DType {
    /// Decodes a dtype byte.
    pub fn from_u8(v: u8) -> Option<DType> {
        Some(match v {
            0 => DType::I8,
            1 => DType::U8,
            2 => DType::I32,
            3 => DType::F32,
            4 => DType::I16,
            _ => return None,
        })
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::I16 => 2,
            DType::I32 | DType::F32 => 4,
        }
    }

    /// Short lowercase name (`i8`, `u8`, `i16`, `i32`, `f32`).
    pub fn name(self) -> &'static str {
        match self {
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::F32 => "f32",
        }
    }
}

/// Where a tensor's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Storage {
    /// In the caller's arena, at a planned offset.
    Arena = 0,
    /// In the blob's constant data section (read in place).
    Const = 1,
}

impl Storage {
    /// Decodes a storage byte.
    pub fn from_u8(v: u8) -> Option<Storage> {
        match v {
            0 => Some(Storage::Arena),
            1 => Some(Storage::Const),
            _ => None,
        }
    }
}

/// How integer kernels requantize their int32 accumulators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum Rounding {
    /// TFLite reference semantics: int32 fixed-point multiplier and shift,
    /// rounding half away from zero (bit-exact with TFLite / TFLM / CMSIS-NN).
    TfliteFixedPoint = 0,
    /// onnxruntime semantics: float scale, rounding half to even.
    OnnxFloat = 1,
}

impl Rounding {
    /// Decodes the header field.
    pub fn from_u32(v: u32) -> Option<Rounding> {
        match v {
            0 => Some(Rounding::TfliteFixedPoint),
            1 => Some(Rounding::OnnxFloat),
            _ => None,
        }
    }

    /// Name used by the CLI and `ember inspect`.
    pub fn name(self) -> &'static str {
        match self {
            Rounding::TfliteFixedPoint => "tflite",
            Rounding::OnnxFloat => "onnx",
        }
    }
}

/// Operator codes. Each op's inputs, outputs and params are documented on
/// its variant; the runtime validates all of them at load time.
///
/// Layout conventions: 4-D activations are NHWC; convolution filters are
/// `[Cout, Kh, Kw, Cin/groups]`; depthwise filters are `[1, Kh, Kw, Cout]`;
/// fully-connected weights are `[N, K]` (output-major).
///
/// Activation bounds (`act_min`, `act_max`) are quantized integers for
/// int8 ops and `f32` bit patterns for float ops.
///
/// Integer ops that requantize take a `requant` tensor: `i32 [C, 2]`
/// holding (multiplier, shift) pairs for [`Rounding::TfliteFixedPoint`], or
/// `f32 [C]` holding real scales for [`Rounding::OnnxFloat`]; `C` is 1 for
/// per-tensor or the number of output channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
pub enum OpCode {
    /// Convolution. Inputs: x `[N,H,W,Ci]`, filter `[Co,Kh,Kw,Ci/g]`,
    /// bias `[Co]` (i32 for int8, f32 for float; optional), requant (int8
    /// only). Output `[N,Ho,Wo,Co]`. Params: `[stride_h, stride_w, dil_h,
    /// dil_w, pad_top, pad_left, pad_bottom, pad_right, groups, act_min,
    /// act_max]`.
    Conv2d = 1,
    /// Depthwise convolution. Inputs: x `[N,H,W,Ci]`, filter `[1,Kh,Kw,Co]`
    /// (`Co = Ci × multiplier`), bias, requant. Params: as [`OpCode::Conv2d`]
    /// with `groups` replaced by the depth multiplier.
    DepthwiseConv2d = 2,
    /// Fully connected: `y[m, n] = Σ_k x[m, k] · w[n, k] + b[n]`. Inputs: x
    /// `[.., K]`, w `[N, K]`, bias `[N]` (optional), requant (int8 only).
    /// Output `[.., N]`. Params: `[act_min, act_max]`. For int8 the weight
    /// zero point comes from the weight tensor.
    FullyConnected = 3,
    /// Element-wise add with numpy broadcasting. Inputs: a, b. Params:
    /// `[act_min, act_max]`, plus for int8 TFLite semantics `[left_shift,
    /// a_mult, a_shift, b_mult, b_shift, out_mult, out_shift]`.
    Add = 4,
    /// Element-wise multiply with broadcasting. Inputs: a, b. Params:
    /// `[act_min, act_max]`, plus for int8 `[out_mult, out_shift]`
    /// (TFLite) or `[f32 scale]` (ONNX).
    Mul = 5,
    /// Average pooling over NHWC. Input x, output y. Params: `[kh, kw,
    /// stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right,
    /// count_include_pad, act_min, act_max]`.
    AvgPool2d = 6,
    /// Max pooling over NHWC. Params as [`OpCode::AvgPool2d`].
    MaxPool2d = 7,
    /// Softmax over the last axis. Params: f32 beta (bits), plus for int8
    /// TFLite semantics `[input_multiplier, input_left_shift, diff_min]`.
    Softmax = 8,
    /// Copies x into y with axes permuted. Params: `perm[0..rank]`.
    Transpose = 9,
    /// Copies bytes unchanged (a reshape that could not be an alias).
    Copy = 10,
    /// Constant padding. Params: `[before_0, .., before_{r-1}, after_0, ..,
    /// after_{r-1}, pad value (quantized int, or f32 bits)]`.
    Pad = 11,
    /// Concatenation along an axis. Inputs: 1..=8 tensors. Params: `[axis]`.
    Concat = 12,
    /// f32 → int8/uint8 (`round_half_even(x / scale) + zp`, saturated).
    Quantize = 13,
    /// int8/uint8/int32 → f32 (`(q - zp) · scale`).
    Dequantize = 14,
    /// Clamp (ReLU, ReLU6, Clip) when it could not be fused. Params:
    /// `[min, max]` (quantized ints for int8, f32 bits for float).
    Clamp = 15,
    /// Element-wise subtract (f32) with broadcasting. Params `[act_min, act_max]`.
    Sub = 16,
    /// Element-wise divide (f32) with broadcasting. Params `[act_min, act_max]`.
    Div = 17,
    /// Batched f32 matrix product over strided views (see
    /// [`crate::kernels::matmul`]). Inputs a, b. Output row-major `[batch,
    /// M, N]` (any shape with that many elements). Params: `[batch, M, N, K,
    /// a_sb, a_sm, a_sk, b_sb, b_sk, b_sn]` (element strides).
    MatMul = 18,
    /// Fused f32 attention (see [`crate::kernels::attention`]). Inputs q, k,
    /// v, additive mask (optional), -, scratch (`[SCRATCH_INPUT]`, `Sk + Dv` f32).
    /// Params: `[heads, Sq, Sk, D, Dv]`, then the strides (head, seq, dim)
    /// of q, k, v, the output and the mask (zeros without one), then the
    /// f32 score scale.
    Attention = 19,
    /// Layer normalization over the last axis, f32. Inputs x, gamma `[D]`,
    /// beta `[D]` (optional). Params: `[f32 epsilon]`.
    LayerNorm = 20,
    /// Element-wise f32 function. Params: `[kind]`
    /// ([`crate::kernels::unary::UnaryOp`]).
    Unary = 21,
    /// Gather along an axis (embedding lookup). Inputs table, indices
    /// (i32). Params: `[axis]`.
    Gather = 22,
    /// Fully connected with dynamic int8 quantization of the f32 input
    /// (see [`crate::kernels::dynamic_fc`]). Inputs x `[.., K]` f32, w `[N,
    /// K]` int8, w_scale `[N or 1]` f32, bias `[N]` f32 (optional), weight
    /// row sums `[N]` i32, scratch (`[SCRATCH_INPUT]`). Output f32 `[..,
    /// N]`. No params.
    DynamicFullyConnected = 23,
    /// Reduction of the middle axis of `[outer, n, inner]`, f32. Params:
    /// `[kind, outer, n, inner]` ([`crate::kernels::reduce::ReduceOp`]).
    Reduce = 24,
    /// Element type conversion. Params: `[to_bool]`.
    Cast = 25,
    /// Comparison or boolean op with broadcasting, output u8 0/1. Params:
    /// `[kind]` ([`crate::kernels::logic::CompareOp`]).
    Compare = 26,
    /// `cond ? a : b` with broadcasting. Inputs cond (u8), a, b. No params.
    Where = 27,
    /// Broadcast copy to the output's shape. No params.
    Expand = 28,
}

impl OpCode {
    /// Decodes an opcode.
    pub fn from_u16(v: u16) -> Option<OpCode> {
        Some(match v {
            1 => OpCode::Conv2d,
            2 => OpCode::DepthwiseConv2d,
            3 => OpCode::FullyConnected,
            4 => OpCode::Add,
            5 => OpCode::Mul,
            6 => OpCode::AvgPool2d,
            7 => OpCode::MaxPool2d,
            8 => OpCode::Softmax,
            9 => OpCode::Transpose,
            10 => OpCode::Copy,
            11 => OpCode::Pad,
            12 => OpCode::Concat,
            13 => OpCode::Quantize,
            14 => OpCode::Dequantize,
            15 => OpCode::Clamp,
            16 => OpCode::Sub,
            17 => OpCode::Div,
            18 => OpCode::MatMul,
            19 => OpCode::Attention,
            20 => OpCode::LayerNorm,
            21 => OpCode::Unary,
            22 => OpCode::Gather,
            23 => OpCode::DynamicFullyConnected,
            24 => OpCode::Reduce,
            25 => OpCode::Cast,
            26 => OpCode::Compare,
            27 => OpCode::Where,
            28 => OpCode::Expand,
            _ => return None,
        })
    }

    /// Whether the reference kernel itself takes a scratch buffer at
    /// [`SCRATCH_INPUT`] (otherwise only optimized variants do).
    pub fn has_reference_scratch(self) -> bool {
        matches!(self, OpCode::Attention | OpCode::DynamicFullyConnected)
    }

    /// Human-readable operator name.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Conv2d => "Conv2d",
            OpCode::DepthwiseConv2d => "DepthwiseConv2d",
            OpCode::FullyConnected => "FullyConnected",
            OpCode::Add => "Add",
            OpCode::Mul => "Mul",
            OpCode::AvgPool2d => "AvgPool2d",
            OpCode::MaxPool2d => "MaxPool2d",
            OpCode::Softmax => "Softmax",
            OpCode::Transpose => "Transpose",
            OpCode::Copy => "Copy",
            OpCode::Pad => "Pad",
            OpCode::Concat => "Concat",
            OpCode::Quantize => "Quantize",
            OpCode::Dequantize => "Dequantize",
            OpCode::Clamp => "Clamp",
            OpCode::Sub => "Sub",
            OpCode::Div => "Div",
            OpCode::MatMul => "MatMul",
            OpCode::Attention => "Attention",
            OpCode::LayerNorm => "LayerNorm",
            OpCode::Unary => "Unary",
            OpCode::Gather => "Gather",
            OpCode::DynamicFullyConnected => "DynamicFullyConnected",
            OpCode::Reduce => "Reduce",
            OpCode::Cast => "Cast",
            OpCode::Compare => "Compare",
            OpCode::Where => "Where",
            OpCode::Expand => "Expand",
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
