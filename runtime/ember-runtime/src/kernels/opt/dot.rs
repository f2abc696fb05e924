//! Dot-product primitives every optimized int8 kernel is built on, and
//! the one place that picks each one's instruction set (through
//! `by_isa!` in `isa.rs`).
//!
//! All of them compute `Σ x[i]·w[i]` over int8 with a wrapping int32
//! accumulator (the reference kernels' arithmetic), over `x.len()`
//! elements; weight rows must be at least that long.

/// Whether this core has the ARMv8.2 dot-product instructions (`SDOT`):
/// asked of the operating system once with the `std` feature (Linux
/// reports it in `HWCAP`), otherwise decided by the build's `dotprod`
/// target feature (bare metal: `-C target-cpu=cortex-a55` or later).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub fn has_dotprod() -> bool {
    #[cfg(target_feature = "dotprod")]
    {
        true
    }
    #[cfg(all(not(target_feature = "dotprod"), feature = "std"))]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(all(not(target_feature = "dotprod"), not(feature = "std")))]
    {
        false
    }
}

/// `Σ x·w` of one input vector and one weight row.
#[inline]
pub fn dot_s8(x: &[i8], w: &[i8]) -> i32 {
    by_isa!(
        // Helium: LLVM vectorizes the portable loop (`VMLAVA.S8`).
        mve: portable::dot_s8(x, w),
        dsp: super::dsp::dot::dot_s8(x, w),
        // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
        // condition for this arm).
        neon: unsafe { super::neon::dot::dot_s8(x, w) },
        portable: portable::dot_s8(x, w),
    )
}

/// The length the four-row dot products run over: the shortest of the
/// input and the four rows (every implementation's contract).
#[inline(always)]
pub(crate) fn common_len(x: &[i8], w: [&[i8]; 4]) -> usize {
    w.iter().fold(x.len(), |n, r| n.min(r.len()))
}

/// `Σ x·w` of one input vector against four weight rows (the input is read
/// once for all four).
#[inline]
pub fn dot4_s8(x: &[i8], w0: &[i8], w1: &[i8], w2: &[i8], w3: &[i8]) -> [i32; 4] {
    by_isa!(
        // Helium: a tail-predicated `VMLADAVA.S8` loop (LLVM's own
        // vectorization of the portable loop predicates the tail by hand,
        // about 45 instructions per 64 products).
        mve: super::mve::dot::dot4_s8(x, w0, w1, w2, w3),
        dsp: super::dsp::dot::dot4_s8(x, w0, w1, w2, w3),
        // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
        // condition) and `SDOT` only after `has_dotprod` found it on this
        // core.
        neon: unsafe {
            if has_dotprod() {
                super::neon::dot::dot4_s8_dotprod(x, w0, w1, w2, w3)
            } else {
                super::neon::dot::dot4_s8(x, w0, w1, w2, w3)
            }
        },
        portable: portable::dot4_s8(x, w0, w1, w2, w3),
    )
}

/// `Σ x_p·w_j` of four input vectors against four weight rows: each
/// input and weight vector is read once for the sixteen sums.
#[inline]
pub fn dot4x4_s8(x: [&[i8]; 4], w: [&[i8]; 4]) -> [[i32; 4]; 4] {
    by_isa!(
        // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
        // condition) and `SDOT` only after `has_dotprod` found it on this
        // core.
        neon: unsafe {
            if has_dotprod() {
                super::neon::dot::dot4x4_s8_dotprod(x, w)
            } else {
                super::neon::dot::dot4x4_s8(x, w)
            }
        },
        else: x.map(|r| dot4_s8(r, w[0], w[1], w[2], w[3])),
    )
}

/// [`dot4x4_s8`] for weight rows without −128 (a symmetric quantizer's
/// range): on aarch64 cores without `SDOT` two products share an int16
/// lane (one instruction fewer per 16 products), which is exact only then.
/// The caller checks the weights.
#[inline]
pub fn dot4x4_s8_no_min(x: [&[i8]; 4], w: [&[i8]; 4]) -> [[i32; 4]; 4] {
    by_isa!(
        // SAFETY: NEON is enabled for the whole build (`by_isa!`'s
        // condition), `SDOT` only after `has_dotprod` found it, and the
        // paired kernel only on weights without −128 (this function's
        // contract).
        neon: unsafe {
            if has_dotprod() {
                super::neon::dot::dot4x4_s8_dotprod(x, w)
            } else {
                super::neon::dot::dot4x4_s8_paired(x, w)
            }
        },
        else: dot4x4_s8(x, w),
    )
}

/// Plain Rust shaped for LLVM's vectorizer: one induction variable, equal
/// slice lengths proven up front (so no bounds checks survive in the loop),
/// a widening multiply and an add reduction. With `target-cpu=cortex-m55`
/// each loop body becomes `VLDRB.U8` + `VMLAVA.S8` under a `DLSTP/LETP`
/// tail-predicated loop; on aarch64 it becomes NEON `SMULL/SADALP`-style
/// code.
pub mod portable {
    /// See [`super::dot_s8`].
    #[inline]
    pub fn dot_s8(x: &[i8], w: &[i8]) -> i32 {
        let n = x.len().min(w.len());
        let (x, w) = (&x[..n], &w[..n]);
        let mut acc = 0i32;
        for i in 0..n {
            acc = acc.wrapping_add((x[i] as i32).wrapping_mul(w[i] as i32));
        }
        acc
    }

    /// See [`super::dot4_s8`].
    #[inline]
    pub fn dot4_s8(x: &[i8], w0: &[i8], w1: &[i8], w2: &[i8], w3: &[i8]) -> [i32; 4] {
        let n = super::common_len(x, [w0, w1, w2, w3]);
        let (x, w0, w1, w2, w3) = (&x[..n], &w0[..n], &w1[..n], &w2[..n], &w3[..n]);
        let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
        for i in 0..n {
            let xv = x[i] as i32;
            a0 = a0.wrapping_add(xv.wrapping_mul(w0[i] as i32));
            a1 = a1.wrapping_add(xv.wrapping_mul(w1[i] as i32));
            a2 = a2.wrapping_add(xv.wrapping_mul(w2[i] as i32));
            a3 = a3.wrapping_add(xv.wrapping_mul(w3[i] as i32));
        }
        [a0, a1, a2, a3]
    }
}

#[cfg(all(test, target_arch = "aarch64", feature = "std"))]
mod tests {
    /// `cargo xtask test` runs the aarch64 tests under `-cpu cortex-a53`
    /// and `-cpu max` and says which one through `EMBER_EXPECT_DOTPROD`:
    /// the dispatch must have seen the same (else the SDOT paths would go
    /// untested, or be taken on a core without them).
    #[test]
    fn dotprod_detection_matches_the_cpu() {
        if let Ok(v) = std::env::var("EMBER_EXPECT_DOTPROD") {
            assert_eq!(super::has_dotprod(), v == "1");
        }
    }
}
