//! AArch64 Advanced SIMD (NEON) kernels for every ARMv8-A core (Cortex-A53
//! and up), plus `SDOT` paths for cores with the ARMv8.2 dot-product
//! extension (Cortex-A55/A76 and later). int8 kernels are bit-exact with
//! the reference; the f32 ones are within the bound stated in
//! [`crate::kernels::opt::conv_f32`].
//!
//! int8 products, three ways:
//! - rows (a receptive field against filter rows): 16 int8 pairs per step
//!   multiplied into int16 lanes (`SMULL`/`SMULL2`: one int8 product
//!   always fits int16) and folded pairwise into four int32 lanes
//!   (`SADALP`), so the int32 accumulation wraps exactly as the
//!   reference's; the lanes are summed at the end (`ADDP`). The paired
//!   variant adds two products in int16 first (`SMLAL2`), exact when the
//!   filter has no −128. `SDOT` (`asm!`: stable Rust has no dot-product
//!   intrinsics) adds four products per lane in one instruction;
//! - lane per channel, on the compiler's int16 copy of the filter
//!   ([`crate::kernels::opt::pack_weights_s16`]): `SMLAL`/`SMLAL2` by element multiply
//!   eight channels by one input value, no horizontal sums;
//! - depthwise: per tap, 16 channels' products widened (`SMULL`) and added
//!   into int32 (`SADDW`).
//!
//! `SDOT` is used when the core has it: `is_aarch64_feature_detected!`
//! with the `std` feature (Linux), the `dotprod` target feature otherwise
//! (bare metal, decided at build time); see [`crate::kernels::opt::dot::has_dotprod`].
//! Each kernel is compiled with exactly the target features its
//! instructions need, so LLVM never introduces `SDOT` into baseline code.
//!
//! Requantization is gemmlowp's double rounding, four channels at a time,
//! reading the compiler's blocked table `[mult ×4, left ×4, −right ×4]`
//! (the same sequence as the Helium epilogue, whose module comment argues
//! each step): `SSHL` by the left shift, `SQRDMULH`, the sign fix-up
//! (`AND`, `SSHR #31`, `SQADD`) and `SRSHL` by the negated right shift,
//! then `SQADD` of the output zero point, `SMAX`/`SMIN` and saturating
//! narrows to int8. Fully connected layers use TFLite's single rounding
//! (64-bit `SMULL`, `SRSHL`, `SQXTN`).
//!
//! One file per operator; [`shared`] holds what they share and imports
//! nothing operator-specific.

pub(super) mod add;
pub(super) mod conv;
pub(super) mod depthwise;
pub(super) mod dot;
pub(super) mod f32;
pub(super) mod fully_connected;
pub(super) mod lut;
pub(super) mod shared;
