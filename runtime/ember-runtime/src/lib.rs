//! Ember runtime: runs compiled models on bare-metal ARM (and anywhere else)
//! with no heap, no operating system and no panics.
//!
//! ```text
//! let model = ember_runtime::Model::load(BLOB)?;          // validates every byte
//! let mut interp = ember_runtime::Interpreter::new(&model, &mut ARENA.0)?;
//! interp.input_mut(0)?.copy_from_slice(&features)?;
//! interp.invoke()?;
//! let scores = interp.output(0)?.as_i8()?;
//! ```
//!
//! The blob format is described in [`format`]; each operator's params,
//! validation and dispatch live in [`ops`], its kernels in [`kernels`].
#![no_std]
#![deny(missing_docs)]

// Host tools get `std::error::Error` for the error type and, on aarch64
// Linux, run-time CPU feature detection for the kernels.
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod op_table;

pub mod error;
pub mod format;
mod interpreter;
pub mod kernel_set;
pub mod kernels;
mod load;
mod model;
mod op_codes;
pub mod ops;
mod reader;
#[cfg(feature = "signed")]
pub mod signature;

pub use error::{Error, Result};
pub use format::{DType, Rounding};
pub use interpreter::{Interpreter, OpEvent, TensorMut};
pub use kernel_set::{AllKernels, KernelSet, Kernels};
pub use model::{Model, OpInfo, Quant, TensorInfo, TensorView};
pub use op_codes::{Kernel, OpCode};

/// A 16-byte aligned byte buffer, for arenas and for model blobs embedded
/// with `include_bytes!`:
///
/// ```text
/// static MODEL: &ember_runtime::Aligned<[u8]> = &ember_runtime::Aligned(*include_bytes!("kws.ember"));
/// static mut ARENA: ember_runtime::Aligned<[u8; 20_000]> = ember_runtime::Aligned([0; 20_000]);
/// ```
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);
