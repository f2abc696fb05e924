//! The compiled-model blob format (version 3): the single contract between the
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
//!     96     8  state pairs:   count, offset       (STATE_RECORD_BYTES each)
//!    104     8  reserved, must be 0
//! ```
//!
//! A state pair (`STATE_RECORD_BYTES` = 12) makes the model keep a tensor
//! from one invoke to the next (a recurrent network's hidden state, a
//! streaming layer's ring buffer):
//!
//! ```text
//!  0  u32  state tensor: an arena tensor the ops read, written by no op
//!          and by no caller (it is not a graph input); its recorded
//!          lifetime is the whole invoke, steps 0 to num_ops + 1, so no
//!          other tensor ever shares its bytes and they survive invokes
//!  4  u32  next-state tensor: an arena tensor of the same dtype and
//!          quantization whose lifetime reaches the end of the invoke (a
//!          graph output, or a buffer only the state reads)
//!  8  u32  byte offset in the next-state tensor: its bytes from there,
//!          as many as the state has, are copied into the state when an
//!          invoke ends (a streaming ring's window, all but its oldest
//!          frame; 0 for a next state of the state's own shape)
//! ```
//!
//! An interpreter sets every state tensor to zero (the zero point for a
//! quantized one) when it binds the arena and on
//! [`Interpreter::reset_state`](crate::Interpreter::reset_state).
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
//! 56  u32  live from: first step at which the tensor's bytes are in use
//! 60  u32  live to: last step at which they are in use
//! ```
//!
//! Lifetimes are in *steps*: step 0 is the caller writing the graph inputs,
//! step `o + 1` is op `o` running, and step `num_ops + 1` is the caller
//! reading the graph outputs. Only arena tensors that own their bytes (no
//! `alias_of`) have one: theirs cover every use of the bytes, views
//! included; [`NOT_LIVE`] in both fields marks one that nothing uses. Every
//! other tensor has zeros there. The loader checks each lifetime against
//! the ops (exactly: it starts where the tensor is written and ends at its
//! last use), so that the arena plan can be checked in one sweep over the
//! steps (see [`Model::check_arena_plan`](crate::Model::check_arena_plan)).
//!
//! An op record (`OP_RECORD_BYTES` = 32):
//!
//! ```text
//!  0  u16  opcode ([`OpCode`](crate::OpCode))
//!  2  u16  kernel variant (0 = portable reference)
//!  4  u16  number of inputs
//!  6  u16  number of outputs
//!  8  u32  first operand index in the operand pool (inputs, then outputs)
//! 12  u32  first word in the param pool
//! 16  u32  number of param words (the op's `Params` in [`crate::ops`])
//! 20  u32  name offset in the string pool
//! 24  u32  name length
//! 28  u32  reserved (0)
//! ```
//!
//! An operand index of [`NO_TENSOR`] marks an absent optional input (e.g. a
//! convolution without bias).
//!
//! Bytes past the declared total length are ignored by [`Model::load`]
//! (flash pages are padded); a signed blob keeps its signature there:
//!
//! ```text
//! total + 0   8  SIGNATURE_MAGIC "EMBRSIG1"
//! total + 8   8  key id: the first 8 bytes of the signer's public key
//! total + 16 64  Ed25519 signature of bytes [0, total + 16)
//! ```
//!
//! [`Model::load`]: crate::Model::load

/// Both lifetime fields of an arena tensor that nothing uses.
pub const NOT_LIVE: u32 = u32::MAX;
/// Most graph inputs, and most graph outputs, a blob may have.
pub const MAX_GRAPH_IO: usize = 256;

/// First bytes of the signature trailer that may follow a blob (see
/// `signature`, behind the `signed` feature).
pub const SIGNATURE_MAGIC: [u8; 8] = *b"EMBRSIG1";
/// Bytes of the signature trailer: magic, key id (the first 8 bytes of the
/// signer's public key), Ed25519 signature.
pub const SIGNATURE_TRAILER_BYTES: usize = 8 + 8 + 64;

/// Blob magic bytes.
pub const MAGIC: [u8; 4] = *b"EMBR";
/// Format version this runtime reads and the compiler writes.
pub const FORMAT_VERSION: u32 = 3;
/// Size of the fixed header.
pub const HEADER_BYTES: usize = 112;
/// Size of one state pair record.
pub const STATE_RECORD_BYTES: usize = 12;
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

/// The opcode of an op record (declared with every operator in
/// [`crate::ops`]).
pub use crate::op_codes::OpCode;

/// The kernel variant every opcode has: its portable reference kernel.
/// The other variants an op record may name are the optimized kernels of
/// [`crate::kernels::opt`], declared by each operator's module in
/// [`crate::ops`] (e.g. [`crate::ops::conv::VARIANT_POINTWISE`]); their
/// instruction set (Helium, DSP, NEON or portable) is fixed when the
/// runtime is built.
pub const REFERENCE_VARIANT: u16 = 0;

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
    /// weights; as an activation, only at the graph's edges).
    I16 = 4,
    /// IEEE-754 half precision float (graph inputs and outputs, converted
    /// by `Cast`; kernels compute in f32).
    F16 = 5,
    /// bfloat16: the upper half of an f32 (graph inputs and outputs,
    /// converted by `Cast`).
    BF16 = 6,
    /// Unsigned 16-bit integer (graph inputs and outputs, converted by
    /// `Cast`).
    U16 = 7,
    /// 8-bit float E4M3FN (graph inputs and outputs, converted by `Cast`).
    F8E4M3Fn = 8,
    /// 8-bit float E4M3FNUZ (graph inputs and outputs, converted by `Cast`).
    F8E4M3FnUz = 9,
    /// 8-bit float E5M2 (graph inputs and outputs, converted by `Cast`).
    F8E5M2 = 10,
    /// 8-bit float E5M2FNUZ (graph inputs and outputs, converted by `Cast`).
    F8E5M2FnUz = 11,
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
            5 => DType::F16,
            6 => DType::BF16,
            7 => DType::U16,
            8 => DType::F8E4M3Fn,
            9 => DType::F8E4M3FnUz,
            10 => DType::F8E5M2,
            11 => DType::F8E5M2FnUz,
            _ => return None,
        })
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::F8E4M3Fn | DType::F8E4M3FnUz | DType::F8E5M2 | DType::F8E5M2FnUz => 1,
            DType::I16 | DType::F16 | DType::BF16 | DType::U16 => 2,
            DType::I32 | DType::F32 => 4,
        }
    }

    /// Whether this is one of the edge types (f16, bf16, the 8-bit floats,
    /// u16, and i16 outside packed weights) that only `Cast` reads and
    /// writes.
    pub fn is_edge_only(self) -> bool {
        !matches!(self, DType::I8 | DType::U8 | DType::I32 | DType::F32)
    }

    /// The 8-bit float format of this dtype, if it is one.
    pub fn f8(self) -> Option<crate::kernels::half::F8> {
        use crate::kernels::half::F8;
        Some(match self {
            DType::F8E4M3Fn => F8::E4M3Fn,
            DType::F8E4M3FnUz => F8::E4M3FnUz,
            DType::F8E5M2 => F8::E5M2,
            DType::F8E5M2FnUz => F8::E5M2FnUz,
            _ => return None,
        })
    }

    /// Whether this is a float type (of any width).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16) || self.f8().is_some()
    }

    /// Short lowercase name (`i8`, `u8`, `i16`, `u16`, `i32`, `f16`,
    /// `bf16`, `f32`).
    pub fn name(self) -> &'static str {
        match self {
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I16 => "i16",
            DType::U16 => "u16",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F8E4M3Fn => "f8e4m3fn",
            DType::F8E4M3FnUz => "f8e4m3fnuz",
            DType::F8E5M2 => "f8e5m2",
            DType::F8E5M2FnUz => "f8e5m2fnuz",
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
