//! Errors of the model compiler. Every message names what is wrong and,
//! where it applies, the ONNX node and what would be needed.

use thiserror::Error;

/// A compilation failure.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a valid ONNX protobuf, or the graph is inconsistent.
    #[error("malformed ONNX model: {0}")]
    Malformed(String),
    /// An operator (or an attribute/input combination of it) Ember does not
    /// support.
    #[error("unsupported operator {op_type} (node '{node}'): {what}")]
    Unsupported {
        /// ONNX op type.
        op_type: String,
        /// Node name.
        node: String,
        /// What is unsupported and what would be needed.
        what: String,
    },
    /// A shape that is not fixed at compile time.
    #[error("dynamic shape for '{value}' (node '{node}'): {what}")]
    DynamicShape {
        /// The value whose shape is unknown.
        value: String,
        /// The node where it showed up.
        node: String,
        /// What would be needed.
        what: String,
    },
    /// A `--state` binding that does not fit the model (unknown name, type
    /// or shape mismatch between the pair, ambiguous automatic match).
    #[error("bad state binding: {0}")]
    BadState(String),
    /// Calibration data that cannot calibrate the model (missing input,
    /// wrong shape, no samples, NaN or infinity).
    #[error("bad calibration data: {0}")]
    Calibration(String),
    /// The produced model failed the runtime's own validation (a compiler bug).
    #[error("internal error: produced blob fails validation: {0}")]
    Internal(String),
}

/// Result alias of the compiler.
pub type Result<T> = std::result::Result<T, CompileError>;

pub(crate) fn malformed(msg: impl Into<String>) -> CompileError {
    CompileError::Malformed(msg.into())
}
