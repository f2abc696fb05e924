//! Typed errors of the runtime. Every failure the loader, the validator or
//! an invocation can hit is one of these; none of them is a panic.

use core::fmt;

/// Everything that can go wrong while loading or running a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The blob is shorter than its header or than the length it declares.
    Truncated {
        /// Bytes the blob claims or needs.
        needed: usize,
        /// Bytes actually present.
        got: usize,
    },
    /// The first four bytes are not `EMBR`.
    BadMagic,
    /// The blob was written for another format version.
    UnsupportedVersion(u32),
    /// The stored CRC-32 does not match the contents.
    ChecksumMismatch {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the blob.
        computed: u32,
    },
    /// A signed blob was required and this one is unsigned, signed with
    /// another key, or not what was signed (see `signature`, behind the
    /// `signed` feature).
    BadSignature(&'static str),
    /// The blob does not start on a 16-byte boundary (constant data must be
    /// aligned to be read in place).
    MisalignedBlob,
    /// A header field is invalid (reserved field set, unknown rounding...).
    BadHeader(&'static str),
    /// A section lies outside the blob, overlaps the header or is misaligned.
    BadSection(&'static str),
    /// A tensor record is inconsistent.
    BadTensor {
        /// Tensor index.
        tensor: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// An op record or its parameters are inconsistent with its kernel.
    BadOp {
        /// Op index.
        op: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// The op code is not known to this runtime.
    UnknownOpCode {
        /// Op index.
        op: u32,
        /// The code found.
        code: u16,
    },
    /// The op's kernel variant is not built into this runtime.
    UnknownKernelVariant {
        /// Op index.
        op: u32,
        /// The variant found.
        variant: u16,
    },
    /// The op runs on a kernel this build leaves out (see
    /// [`crate::KernelSet`]).
    KernelNotBuilt {
        /// Op index.
        op: u32,
        /// The kernel it needs.
        kernel: crate::Kernel,
    },
    /// The caller's arena is smaller than the model needs.
    ArenaTooSmall {
        /// Bytes the model needs.
        needed: usize,
        /// Bytes provided.
        got: usize,
    },
    /// The arena does not start on a 16-byte boundary.
    MisalignedArena,
    /// An input/output index is out of range.
    NoSuchTensor(usize),
    /// Data given for a tensor has the wrong type or length.
    WrongTensorData {
        /// Expected byte length.
        expected_bytes: usize,
        /// Provided byte length.
        got_bytes: usize,
    },
    /// A kernel was called with slices that do not match its shapes
    /// (only reachable when kernels are called directly, not through a
    /// validated model).
    ShapeMismatch(&'static str),
    /// A runtime index (a token id fed to an embedding `Gather`, a class
    /// of a loss, a `GatherElements` index) lies outside the tensor it
    /// indexes.
    IndexOutOfRange,
    /// An integer division or remainder by zero in the input data.
    DivisionByZero,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, got } => {
                write!(f, "model blob truncated: needs {needed} bytes, got {got}")
            }
            Error::BadMagic => write!(f, "not an Ember model blob (bad magic)"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported blob format version {v}"),
            Error::ChecksumMismatch { stored, computed } => write!(
                f,
                "model blob corrupted: checksum {computed:#010x} does not match stored {stored:#010x}"
            ),
            Error::BadSignature(r) => write!(f, "model blob refused: {r}"),
            Error::MisalignedBlob => write!(f, "model blob is not 16-byte aligned"),
            Error::BadHeader(r) => write!(f, "bad blob header: {r}"),
            Error::BadSection(r) => write!(f, "bad blob section: {r}"),
            Error::BadTensor { tensor, reason } => write!(f, "bad tensor #{tensor}: {reason}"),
            Error::BadOp { op, reason } => write!(f, "bad op #{op}: {reason}"),
            Error::UnknownOpCode { op, code } => write!(f, "op #{op}: unknown opcode {code}"),
            Error::UnknownKernelVariant { op, variant } => {
                write!(f, "op #{op}: kernel variant {variant} not available in this build")
            }
            Error::KernelNotBuilt { op, kernel } => write!(
                f,
                "op #{op} needs kernel {}, which this build leaves out (add it to the build's KernelSet)",
                kernel.name()
            ),
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena too small: model needs {needed} bytes, got {got}")
            }
            Error::MisalignedArena => write!(f, "arena is not 16-byte aligned"),
            Error::NoSuchTensor(i) => write!(f, "no input/output tensor #{i}"),
            Error::WrongTensorData {
                expected_bytes,
                got_bytes,
            } => write!(
                f,
                "tensor data has {got_bytes} bytes, expected {expected_bytes}"
            ),
            Error::ShapeMismatch(r) => write!(f, "kernel shape mismatch: {r}"),
            Error::IndexOutOfRange => write!(f, "an index in the input data lies outside the tensor it indexes"),
            Error::DivisionByZero => write!(f, "integer division by zero"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Result alias of the runtime.
pub type Result<T> = core::result::Result<T, Error>;
