//! Helium (M-profile Vector Extension) kernels in `asm!`: each block runs
//! a unit of work from the folded bias to the stored int8 outputs in
//! registers (LLVM's own code around the sums spilled and re-derived
//! pointers per block, and left depthwise taps half scalar).
//!
//! - [`stream::row_times_filters_short`]: one input row of at most 16 bytes times
//!   filter rows, four channels per `VMLADAVA.S8` block (longer rows:
//!   [`rows`]);
//! - [`fully_connected::fc_row_single`]: the same with TFLite's single rounding;
//! - [`depthwise::depthwise_pixel`], [`depthwise::depthwise_run`]: depthwise blocks of 16, 8 or
//!   4 channels, int32 lanes;
//! - [`conv::gather_rows`]: a receptive field copied row by row;
//! - [`lut::lut_run`]: byte table lookups, sixteen per gather;
//! - [`shared::requant4`], [`add::add4_run`]: the requantization epilogue and the int8
//!   Add body.
//!
//! Register notes: `VMLADAVA` accumulates into even registers (`r0`, `r2`,
//! `r4`, `r8` here); widening loads (`VLDRB.S32`) and narrowing stores
//! (`VSTRB.32`) take a low base register (`r0`–`r7`); `r6` and `r7` are not
//! available to `asm!`, so such operands are pinned to `r0`–`r2`.
//!
//! One file per operator; [`shared`] holds what they share and imports
//! nothing operator-specific.

// Declared first: its `asm!` macros serve the kernels below (textual
// macro scope).
#[macro_use]
pub(super) mod shared;
pub(super) mod add;
pub(super) mod conv;
pub(super) mod depthwise;
pub(super) mod dot;
pub(super) mod fully_connected;
pub(super) mod lut;
pub(super) mod pool;
pub(super) mod rows;
pub(super) mod stream;
