//! Ember's runtime: runs compiled models on bare-metal ARM (and anywhere
//! else) with no heap, no operating system and no panics.
//!
//! A model arrives as a *blob* written by `ember compile` (the
//! `ember-compiler` crate): every shape, fusion, requantization constant,
//! weight layout and buffer offset was decided there, so this crate only
//! checks the blob and executes it. It reads the blob in place (from flash,
//! say), allocates nothing, and runs in one arena the caller provides,
//! whose size the blob states.
//!
//! # A first look
//!
//! ```no_run
//! use ember_runtime::{Interpreter, Model};
//!
//! /// Runs a keyword model on one window of int8 MFCC features and returns
//! /// the index of the highest score.
//! fn classify(blob: &[u8], arena: &mut [u8], mfcc: &[i8]) -> ember_runtime::Result<usize> {
//!     let model = Model::load(blob)?; // validates every byte, once
//!     let mut interp = Interpreter::new(&model, arena)?; // checks the arena plan
//!     interp.input_mut(0)?.copy_from(mfcc)?; // dtype and length checked
//!     interp.invoke()?;
//!     let scores = interp.output(0)?.as_i8()?;
//!     Ok((0..scores.len()).max_by_key(|&i| scores[i]).unwrap_or(0))
//! }
//! ```
//!
//! Every fallible call returns [`Result`] with a typed [`Error`] that says
//! what was wrong ([`Error::ChecksumMismatch`], [`Error::ArenaTooSmall`],
//! [`Error::WrongTensorData`], …); nothing in the crate panics on any blob
//! or input (the `load_blob` and `invoke_random` fuzz targets hold it to
//! that).
//!
//! # In firmware
//!
//! The board crates in `boards/` do this for every model of the zoo; the
//! shape of it:
//!
//! ```no_run
//! use ember_runtime::{AllKernels, Interpreter, Model};
//!
//! // The blob is embedded in flash, 16-byte aligned by [`Aligned`] (the
//! // kernels read weights in place):
//! //   static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("kws.ember"));
//! // and the arena sized at build time from the blob's header (`ember
//! // inspect` prints it; `boards/app/build.rs` reads it):
//! //   static mut ARENA: Aligned<[u8; model::ARENA_BYTES]> = …;
//!
//! fn run(blob: &'static [u8], arena: &'static mut [u8], features: &[i8]) -> ember_runtime::Result<i8> {
//!     let model = Model::load_with::<AllKernels>(blob)?;
//!     let mut interp = Interpreter::<AllKernels>::with_kernels(&model, arena)?;
//!     interp.input_mut(0)?.copy_from(features)?;
//!     // A hook sees every op begin and end: per-layer timing with the
//!     // board's cycle counter, as `cargo xtask profile` does.
//!     interp.invoke_with_hook(|ev| {
//!         let _ = (ev.index, ev.name, ev.done);
//!     })?;
//!     Ok(interp.output(0)?.as_i8()?[0])
//! }
//! ```
//!
//! - **Only the kernels a model needs.** A [`KernelSet`] names the kernels
//!   a build links (TFLite Micro's op resolver, decided at build time); a
//!   firmware for one known model gets its set from the blob (`ember
//!   inspect --json` lists `kernels`; the board app's build script writes
//!   the set) and the linker drops the rest. A blob needing a kernel the
//!   build lacks is refused at load with [`Error::KernelNotBuilt`].
//!   [`AllKernels`] links everything (host tools).
//! - **Inputs are rewritten before every invoke**: the plan may reuse an
//!   input's bytes once it has been consumed.
//! - **Signed blobs** (feature `signed`): `Model::load_signed` checks an
//!   Ed25519 signature appended by `ember sign` before it reads anything
//!   else.
//! - **State between invokes**: a blob compiled with `ember compile
//!   --state OUT=IN` (a recurrent model's hidden state, say) keeps its
//!   state tensors in the arena from one [`Interpreter::invoke`] to the
//!   next; [`Interpreter::reset_state`] starts over, and
//!   [`Interpreter::state`] / [`Interpreter::state_mut`] save and restore
//!   it (through a deep sleep, or across interpreters).
//!
//! # What loading checks
//!
//! [`Model::load`] checks the header (magic, version, length, CRC-32),
//! every section's bounds, every tensor (dtype, shape, size, where its
//! bytes live, constants inside the blob, arena tensors inside the arena),
//! every op (its opcode, its kernel variant, its params decoded and checked
//! against its tensors' shapes and types), the state pairs (a state
//! tensor no op writes, fed by a graph output of its dtype and shape), in
//! time linear in the blob's size. [`Interpreter::new`] then checks the arena plan: that no two
//! tensors alive at the same time share bytes. [`Model::check_arena_plan`]
//! does the same without an interpreter, for tools.
//!
//! # Kernels
//!
//! Each operator has a portable reference kernel in [`kernels`] (the spec)
//! and, behind one dispatch point per operator, optimized variants that are
//! bit-exact with it on integers:
//!
//! | feature / target | what it adds |
//! |---|---|
//! | `dsp` (Cortex-M4/M7/M33) | SMLAD dot products, int16 filter copies |
//! | `mve` (Cortex-M55/M85, `-C target-cpu=cortex-m55`) | Helium epilogues and inner loops (`asm!`) |
//! | aarch64 | NEON (SMULL/SADALP, SMLAL by element, SDOT where the core has it; chosen at run time with `std`) |
//! | `transformers` | attention, layer norm, GELU, gather, … on 32-bit Arm builds (always present elsewhere) |
//! | `std` | `std::error::Error` for [`Error`], run-time CPU feature detection |
//! | `defmt` | `defmt::Format` for the error and enum types |
//!
//! Requantization follows the model: [`Rounding::TfliteFixedPoint`] (TFLite
//! and CMSIS-NN's fixed-point multiply, half away from zero) or
//! [`Rounding::OnnxFloat`] (onnxruntime's float scale, half to even).
//!
//! # Where things are
//!
//! - [`format`]: the blob's layout (header, sections, records), shared with
//!   the compiler.
//! - [`ops`]: each operator's params (typed, shared with the compiler),
//!   validation and dispatch.
//! - [`kernels`]: the reference kernels, and `kernels::opt` the optimized
//!   ones by architecture.
//! - [`kernel_set`]: which kernels a build contains.
//! - [`Model`], [`Interpreter`], [`TensorView`], [`TensorMut`]: loading and
//!   running.
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
