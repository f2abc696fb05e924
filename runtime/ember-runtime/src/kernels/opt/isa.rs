//! Which instruction set this build's optimized kernels use, decided in
//! one place: [`by_isa!`] holds the four build conditions, and each
//! operator's module (and each primitive's: [`super::dot`],
//! [`super::epilogue`], [`super::rows`], [`super::im2col`]) names the
//! variant it runs for each of them through it, nowhere else.
//!
//! | build | variant | kernels |
//! |---|---|---|
//! | 32-bit Arm with the `mve` feature (Cortex-M55/M85) | `mve` | Helium `asm!`, `mve/` |
//! | 32-bit Arm with the `dsp` feature (Cortex-M4/M7/M33) | `dsp` | `SMLAD` `asm!`, `dsp/` |
//! | aarch64 with NEON | `neon` | intrinsics and `SDOT`, `neon/` |
//! | anything else (the host, a Cortex-M without either) | `portable` | Rust shaped for LLVM's vectorizer |
//!
//! `mve` takes precedence over `dsp` when a build turns on both (no
//! board does: the M55 gets `mve`, the DSP cores `dsp`). The parent
//! module declares the folders under the same conditions.

/// Evaluates the expression given for this build's instruction set (see
/// the module documentation); the others are not compiled.
///
/// `neon: …, else: …`, `dsp: …, else: …` and `mve: …, else: …` name one
/// variant and a default for the other three; `portable items: …` and
/// `mve or dsp items: …` declare items only those builds compile (helpers
/// only some variants call).
macro_rules! by_isa {
    (mve: $mve:expr, dsp: $dsp:expr, neon: $neon:expr, portable: $portable:expr $(,)?) => {{
        #[cfg(all(feature = "mve", target_arch = "arm"))]
        {
            $mve
        }
        #[cfg(all(feature = "dsp", not(feature = "mve"), target_arch = "arm"))]
        {
            $dsp
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        {
            $neon
        }
        #[cfg(not(any(
            all(target_arch = "arm", any(feature = "mve", feature = "dsp")),
            all(target_arch = "aarch64", target_feature = "neon")
        )))]
        {
            $portable
        }
    }};
    (neon: $neon:expr, else: $other:expr $(,)?) => {
        by_isa!(mve: $other, dsp: $other, neon: $neon, portable: $other)
    };
    (dsp: $dsp:expr, else: $other:expr $(,)?) => {
        by_isa!(mve: $other, dsp: $dsp, neon: $other, portable: $other)
    };
    (mve: $mve:expr, else: $other:expr $(,)?) => {
        by_isa!(mve: $mve, dsp: $other, neon: $other, portable: $other)
    };
    // Items only one variant's build (or the two 32-bit Arm ones') compiles.
    (mve or dsp items: $($item:item)*) => {
        $(#[cfg(all(target_arch = "arm", any(feature = "mve", feature = "dsp")))] $item)*
    };
    (portable items: $($item:item)*) => {
        $(#[cfg(not(any(
            all(target_arch = "arm", any(feature = "mve", feature = "dsp")),
            all(target_arch = "aarch64", target_feature = "neon")
        )))] $item)*
    };
}
