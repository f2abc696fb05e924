//! Which kernels a build contains.
//!
//! Every op of a model runs on one [`Kernel`]: the pair of its opcode and
//! compiler-chosen variant, its element type and the model's rounding pick
//! it. A firmware that runs one known model names the kernels it needs
//! through a [`KernelSet`] (TFLite Micro's op resolver, decided at build
//! time): [`Model::load_with`](crate::Model::load_with) and
//! [`Interpreter::with_kernels`](crate::Interpreter::with_kernels) are
//! generic over it, every kernel call in the dispatch is behind a constant
//! test of the set, and the linker drops the kernels the set leaves out. A
//! model that needs a kernel the build lacks is refused at load time with
//! [`Error::KernelNotBuilt`](crate::Error::KernelNotBuilt).
//!
//! Host tools and general-purpose builds use [`AllKernels`].

pub use crate::op_codes::Kernel;

// A `Kernels` mask has a bit for each kernel.
const _: () = assert!(Kernel::ALL.len() <= 128);

/// The bit of `k` in a [`Kernels`] mask.
const fn bit(k: Kernel) -> u128 {
    1 << (k as u8)
}

/// A set of [`Kernel`]s, as a bit mask (bit `k as u8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Kernels(u128);

impl Kernels {
    /// No kernel.
    pub const NONE: Kernels = Kernels(0);
    /// Every kernel.
    pub const ALL: Kernels = {
        let mut bits = 0;
        let mut i = 0;
        while i < Kernel::ALL.len() {
            bits |= bit(Kernel::ALL[i]);
            i += 1;
        }
        Kernels(bits)
    };

    /// The set whose mask is `bits` (as [`Self::bits`] gave it); bits
    /// that name no kernel are dropped.
    pub const fn from_bits(bits: u128) -> Kernels {
        Kernels(bits & Kernels::ALL.0)
    }

    /// The mask.
    pub const fn bits(self) -> u128 {
        self.0
    }

    /// This set and `k`.
    pub const fn with(self, k: Kernel) -> Kernels {
        Kernels(self.0 | bit(k))
    }

    /// Whether `k` is in the set.
    pub const fn contains(self, k: Kernel) -> bool {
        self.0 & bit(k) != 0
    }

    /// Whether any of `ks` is in the set.
    pub const fn any(self, ks: &[Kernel]) -> bool {
        let mut i = 0;
        while i < ks.len() {
            if self.contains(ks[i]) {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Number of kernels in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kernels in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Kernel> {
        Kernel::ALL
            .iter()
            .copied()
            .filter(move |k| self.contains(*k))
    }
}

/// The kernels a build contains, fixed at compile time.
///
/// ```
/// use ember_runtime::{Kernel, Kernels, KernelSet};
/// /// The kernels of a keyword-spotting CNN.
/// struct Kws;
/// impl KernelSet for Kws {
///     const KERNELS: Kernels = Kernels::NONE
///         .with(Kernel::ConvS8Opt)
///         .with(Kernel::DepthwiseS8Opt)
///         .with(Kernel::GlobalAvgPoolS8Opt)
///         .with(Kernel::FullyConnectedS8Opt)
///         .with(Kernel::SoftmaxS8);
/// }
/// ```
pub trait KernelSet {
    /// The kernels.
    const KERNELS: Kernels;
}

/// Every kernel of the runtime (host tools, general-purpose builds).
pub struct AllKernels;

impl KernelSet for AllKernels {
    const KERNELS: Kernels = Kernels::ALL;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_name_every_kernel_once() {
        for (i, k) in Kernel::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{}", k.name());
        }
        assert_eq!(Kernels::ALL.len(), Kernel::ALL.len());
        let s = Kernels::NONE.with(Kernel::Copy).with(Kernel::Expand);
        assert_eq!(Kernels::from_bits(s.bits()), s);
        let mut it = s.iter();
        assert_eq!(it.next(), Some(Kernel::Copy));
        assert_eq!(it.next(), Some(Kernel::Expand));
        assert_eq!(it.next(), None);
        assert!(s.contains(Kernel::Copy) && !s.contains(Kernel::ConvS8));
        assert!(s.any(&[Kernel::ConvS8, Kernel::Expand]) && !s.any(&[Kernel::ConvS8]));
        let transformer = Kernel::ALL.iter().filter(|k| k.is_transformer());
        assert_eq!(transformer.count(), 13);
        assert!(Kernel::ALL.len() <= 128, "a Kernels set holds 128 kernels");
    }
}
