//! Optimized kernels: int8 ones with the same results as the reference
//! kernels, bit for bit, with the work rearranged for speed (and f32 ones
//! for the Cortex-A targets, [`conv_f32`], within a stated bound).
//!
//! What the compiler decided ahead of time arrives as data: the bias with
//! the input zero-point correction folded in (`bias − in_zp·Σw` per output
//! channel, so the inner loops are pure `Σ x·w` products), the kernel
//! variant recorded in the op, and a scratch buffer planned in the arena
//! (the `*_scratch_size` companions say how big).
//!
//! Each operator's module is the one place its instruction-set variants
//! are chosen (through `by_isa!`, whose four build conditions live in
//! `isa.rs`), as are the primitives' (`dot`, the epilogues, row times
//! filters, receptive-field copies). The variants:
//! - portable Rust written so that LLVM vectorizes it — to Helium/MVE
//!   `VMLAVA.S8` tail-predicated loops with `-C target-cpu=cortex-m55`;
//! - NEON on aarch64 (`neon/`): fused convolution kernels (four pixels
//!   per pass over the filters, requantization in vector registers),
//!   `SDOT` where the core has it (detected at run time on Linux), and a
//!   lane-per-channel kernel on the compiler's int16 copy of the filter;
//! - the `dsp` cargo feature on 32-bit Arm (Cortex-M4/M7/M33, `dsp/`): `SMLAD`
//!   dual 16-bit multiply-accumulates through `asm!`, each input word
//!   widened once (`SXTB16`) and reused for several filter rows; with a
//!   large enough scratch, convolutions run two output pixels per pass
//!   over halfword-packed receptive fields (2×2 `SMLAD` blocks, the loop in
//!   `asm!` with every value in a register); depthwise convolutions sum
//!   four channels per `SXTB16` + `SMLABB`/`SMLATT` block over all taps;
//! - the `mve` cargo feature (Cortex-M55/M85): Helium `asm!` blocks
//!   (`mve/`) that run a whole unit of work from the folded bias to the
//!   stored int8 outputs with nothing spilled: four filter rows against one
//!   input row through tail-predicated `VMLADAVA.S8` loops (convolutions,
//!   fully connected with TFLite's single rounding), rows of at most 16
//!   bytes with all channel blocks in one predicated loop, depthwise blocks
//!   of 16/8/4 channels over runs of interior pixels, receptive fields
//!   gathered by vector copies, the requantization epilogue and the int8
//!   Add body, and byte table lookups as 16-lane gathers
//!   (`VLDRB.U8 q, [table, q]`).
//!
//! Besides the products: table lookups ([`lut`]: Helium gathers, NEON
//! `TBL`/`TBX` over the table held in registers, also run in place for
//! a table fused into a convolution) and resizes ([`resize`]: row copies
//! for nearest, plane-by-plane blends in the reference's order).
//!
//! Each instruction-set folder has one file per operator and a `shared`
//! module (requantization epilogues, dot-product helpers, byte copies)
//! that imports nothing operator-specific. The reference kernels import
//! nothing from here.
//!
//! Why folding the zero point is exact: the reference computes
//! `Σ (x − zp)·w + bias` with wrapping i32 arithmetic; wrapping arithmetic
//! is a ring, so `Σ x·w + (bias − zp·Σw)` is the same 32-bit value. Taps
//! that fall in the implicit padding are fed the zero point itself, which
//! contributes `zp·w`, cancelled by the folded term exactly as `(zp − zp)·w`
//! would be.

// `by_isa!`, for everything below.
#[macro_use]
mod isa;

/// Binds `$e` to the [`Epilogue`] for `$rq`/`$q` and evaluates `$body`
/// (a call of a kernel's generic inner function) for it.
///
/// With `fixed: F, any: A` (constants), only the instantiations they allow
/// are compiled: the fixed-point ones (`Requant::Fixed`/`FixedBlocked`) when
/// `F`, the general one ([`AnyRequant`]) when `A`; a requantization whose
/// instantiation is left out is an error. This is how a firmware's
/// [`crate::KernelSet`] drops the epilogues its model does not use.
macro_rules! with_epilogue {
    ($rq:expr, $q:expr, $e:ident => $body:expr) => {
        with_epilogue!($rq, $q, fixed: true, any: true, $e => $body)
    };
    ($rq:expr, $q:expr, fixed: $fixed:expr, any: $any:expr, $e:ident => $body:expr) => {
        match $rq {
            Requant::Fixed(p) if $fixed => {
                // One instantiation for both fixed-point forms: an empty
                // block table sends every channel down the scalar path.
                let $e = $crate::kernels::opt::FixedBlocked {
                    pairs: $crate::kernels::opt::FixedPerChannel { p, q: $q },
                    blocks: &[],
                    plain: false,
                };
                $body
            }
            Requant::FixedBlocked { pairs, blocks } if $fixed => {
                let $e = $crate::kernels::opt::FixedBlocked {
                    pairs: $crate::kernels::opt::FixedPerChannel { p: pairs, q: $q },
                    blocks,
                    // Only the Helium kernels ask.
                    plain: by_isa!(mve: true, else: false)
                        && $crate::kernels::opt::table_is_plain(blocks),
                };
                $body
            }
            rq if $any => {
                let $e = $crate::kernels::opt::AnyRequant { rq, q: $q };
                $body
            }
            _ => {
                return Err($crate::error::Error::ShapeMismatch(
                    "this requantization's kernel is left out of the build",
                ))
            }
        }
    };
}

// Declared after `with_epilogue!` so they can use it (textual macro scope).
mod epilogue;
mod geometry;
mod im2col;
mod packing;
mod rows;
mod taps;

pub use epilogue::{requant_blocks, requantize_fixed, REQUANT_BLOCK_WORDS};
pub(crate) use epilogue::{table_is_plain, AnyRequant, Epilogue, FixedBlocked, FixedPerChannel};
pub(crate) use geometry::{check_conv_geometry, check_depthwise_geometry};
pub use packing::{
    dsp_weights_len, dsp_weights_match, fold_bias, pack_weights_dsp, pack_weights_s16,
    packed_weights_len, packed_weights_match, DSP_WEIGHTS_MARK,
};
pub(crate) use rows::for_each_dot;

pub mod conv;
// The f32 variants: NEON on Cortex-A, blocked portable loops elsewhere
// (Helium-vectorized on the M55). Firmware links them only for models
// that use them, like every kernel.
pub mod conv_f32;
pub mod depthwise_conv;
pub mod depthwise_conv_f32;
pub mod dot;
pub mod dynamic_fc;
pub mod elementwise;
pub mod fully_connected;
pub mod lut;
pub mod pool;
pub mod resize;
pub mod selftest;

// The instruction-set kernels, one folder per instruction set, each split
// by operator with a `shared` module of what its operators share; only the
// build's own is compiled (the conditions of `by_isa!`'s arms, spelled out
// here so that rustfmt sees the folders).
#[cfg(all(feature = "dsp", not(feature = "mve"), target_arch = "arm"))]
mod dsp;
#[cfg(all(feature = "mve", target_arch = "arm"))]
mod mve;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon;
