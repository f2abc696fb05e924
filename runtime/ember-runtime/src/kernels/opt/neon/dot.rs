//! Dot products of one or four input vectors against four weight rows
//! (`SMULL`/`SADALP`, paired `SMLAL2`, or `SDOT`): what
//! [`crate::kernels::opt::dot`] picks on aarch64.

use super::shared::{common_len, lanes, ld16, ld8, mac16, mac16_paired, mac8, reduce4, sdot, tail};
use core::arch::aarch64::*;

/// `Σ x·w`, one input row against one weight row.
#[inline]
#[target_feature(enable = "neon")]
pub fn dot_s8(x: &[i8], w: &[i8]) -> i32 {
    let n = x.len().min(w.len());
    let mut acc = vdupq_n_s32(0);
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: `i + 16 <= n`, and `n` is at most either slice's length.
        let (xv, wv) = unsafe { (ld16(x.as_ptr().add(i)), ld16(w.as_ptr().add(i))) };
        acc = mac16(acc, xv, wv);
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: as above, for 8 bytes.
        let (xv, wv) = unsafe { (ld8(x.as_ptr().add(i)), ld8(w.as_ptr().add(i))) };
        acc = mac8(acc, xv, wv);
        i += 8;
    }
    vaddvq_s32(acc).wrapping_add(tail(x, w, i, n))
}

/// Stamps out [`dot4_s8`]-shaped functions for one multiply-add sequence,
/// each compiled with exactly the target features it needs.
macro_rules! dot4_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $mac:ident) => {
        $(#[$doc])*
        #[inline]
        #[target_feature(enable = $features)]
        pub fn $name(x: &[i8], w0: &[i8], w1: &[i8], w2: &[i8], w3: &[i8]) -> [i32; 4] {
            let w = [w0, w1, w2, w3];
            let n = common_len(x, w);
            let mut a = [vdupq_n_s32(0); 4];
            let mut i = 0;
            while i + 16 <= n {
                // SAFETY: `i + 16 <= n <= len` of `x` and of every row.
                let xv = unsafe { ld16(x.as_ptr().add(i)) };
                for j in 0..4 {
                    // SAFETY: as above.
                    let wv = unsafe { ld16(w[j].as_ptr().add(i)) };
                    a[j] = $mac(a[j], xv, wv);
                }
                i += 16;
            }
            if i + 8 <= n {
                // SAFETY: `i + 8 <= n`, as above.
                let xv = unsafe { ld8(x.as_ptr().add(i)) };
                for j in 0..4 {
                    // SAFETY: as above.
                    let wv = unsafe { ld8(w[j].as_ptr().add(i)) };
                    a[j] = mac8(a[j], xv, wv);
                }
                i += 8;
            }
            let mut out = lanes(reduce4(a[0], a[1], a[2], a[3]));
            for (o, r) in out.iter_mut().zip(w) {
                *o = o.wrapping_add(tail(x, r, i, n));
            }
            out
        }
    };
}

dot4_kernel!(
    /// `Σ x·w_j` for four weight rows, the input read once.
    dot4_s8, "neon", mac16
);
dot4_kernel!(
    /// [`dot4_s8`] with `SDOT`. Call only when [`super::super::dot::has_dotprod`].
    dot4_s8_dotprod, "neon,dotprod", sdot
);

/// Stamps out [`dot4x4_s8`]-shaped functions: four input rows times four
/// weight rows, sixteen accumulators in vector registers, every vector
/// loaded once per 16 bytes.
macro_rules! dot4x4_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $mac:ident) => {
        $(#[$doc])*
        #[inline]
        #[target_feature(enable = $features)]
        pub fn $name(x: [&[i8]; 4], w: [&[i8]; 4]) -> [[i32; 4]; 4] {
            let n = x.iter().fold(common_len(x[0], w), |m, r| m.min(r.len()));
            let mut a = [[vdupq_n_s32(0); 4]; 4];
            let mut i = 0;
            while i + 16 <= n {
                let mut xv = [vdupq_n_s8(0); 4];
                for (v, r) in xv.iter_mut().zip(&x) {
                    // SAFETY: `i + 16 <= n <=` every row's length.
                    *v = unsafe { ld16(r.as_ptr().add(i)) };
                }
                for j in 0..4 {
                    // SAFETY: as above.
                    let wv = unsafe { ld16(w[j].as_ptr().add(i)) };
                    for (acc, &v) in a.iter_mut().zip(&xv) {
                        acc[j] = $mac(acc[j], v, wv);
                    }
                }
                i += 16;
            }
            if i + 8 <= n {
                let mut xv = [vdup_n_s8(0); 4];
                for (v, r) in xv.iter_mut().zip(&x) {
                    // SAFETY: `i + 8 <= n`, as above.
                    *v = unsafe { ld8(r.as_ptr().add(i)) };
                }
                for j in 0..4 {
                    // SAFETY: as above.
                    let wv = unsafe { ld8(w[j].as_ptr().add(i)) };
                    for (acc, &v) in a.iter_mut().zip(&xv) {
                        acc[j] = mac8(acc[j], v, wv);
                    }
                }
                i += 8;
            }
            let mut out = [[0i32; 4]; 4];
            for ((o, acc), r) in out.iter_mut().zip(&a).zip(&x) {
                *o = lanes(reduce4(acc[0], acc[1], acc[2], acc[3]));
                for (oj, wj) in o.iter_mut().zip(w) {
                    *oj = oj.wrapping_add(tail(r, wj, i, n));
                }
            }
            out
        }
    };
}

dot4x4_kernel!(
    /// `Σ x_p·w_j` for four input rows and four weight rows.
    dot4x4_s8, "neon", mac16
);
dot4x4_kernel!(
    /// [`dot4x4_s8`] with `SDOT`. Call only when [`super::super::dot::has_dotprod`].
    dot4x4_s8_dotprod, "neon,dotprod", sdot
);
dot4x4_kernel!(
    /// [`dot4x4_s8`] with two products per int16 lane (`SMULL` +
    /// `SMLAL2`): exact only when no weight is −128.
    dot4x4_s8_paired, "neon", mac16_paired
);
