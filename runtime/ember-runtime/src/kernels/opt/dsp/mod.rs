//! Cortex-M DSP extension (Armv7E-M, Armv8-M Mainline with DSP): `SMLAD`
//! multiplies two pairs of signed halfwords and adds both products to an
//! accumulator in one instruction. Four int8 values are loaded as one word
//! and split into two halfword pairs with `SXTB16` (bytes 0 and 2) and
//! `SXTB16 …, ROR #8` (bytes 1 and 3). Input and weights are split the same
//! way, so the pairs line up and the reordering never shows in the sum.
//!
//! `SMLAD`'s addition is modulo 2³² (overflow only sets the sticky Q flag),
//! which is the reference kernels' wrapping accumulator: bit-exact.
//!
//! One file per operator; [`shared`] holds what they share and imports
//! nothing operator-specific.

// Declared first: its requantization macros serve `depthwise`.
#[macro_use]
pub(super) mod shared;
pub(super) mod conv;
pub(super) mod depthwise;
pub(super) mod dot;
pub(super) mod fully_connected;
