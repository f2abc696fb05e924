//! Global average pooling: column sums of 16 channels per step.

use core::arch::asm;

/// Adds the column sums of channels `c0..c0 + 16·b` over every pixel of
/// `image` (`c` channels per pixel) to `acc[..16·b]`, for the largest
/// `b` that fits `acc`: 16 channels per pass, four widening loads and four
/// adds per pixel. Returns how many channels it summed (`16·b`).
pub fn column_sums16(image: &[i8], c: usize, c0: usize, acc: &mut [i32]) -> usize {
    let pixels = image.len().checked_div(c).unwrap_or(0);
    let n = acc.len().min(c.saturating_sub(c0)) / 16 * 16;
    if pixels == 0 || n == 0 || pixels.saturating_mul(c) > image.len() {
        return 0;
    }
    for (j, a) in acc[..n].chunks_exact_mut(16).enumerate() {
        // SAFETY: pixel `p < pixels` reads `image[p·c + c0 + 16j..][..16]`,
        // inside `image` (`c0 + 16j + 16 ≤ c0 + n ≤ c` and `pixels·c ≤
        // image.len()`); `a` is 16 words, read and written with `VLDRW`
        // (4-byte aligned `i32`s). Only the declared registers are
        // written. Compiled only with the `mve` feature on 32-bit Arm.
        unsafe {
            asm!(
                "vldrw.u32 q0, [{a}]",
                "vldrw.u32 q1, [{a}, #16]",
                "vldrw.u32 q2, [{a}, #32]",
                "vldrw.u32 q3, [{a}, #48]",
                "dls lr, lr",
                "2:",
                "vldrb.s32 q4, [r0]",
                "vadd.i32 q0, q0, q4",
                "vldrb.s32 q4, [r0, #4]",
                "vadd.i32 q1, q1, q4",
                "vldrb.s32 q4, [r0, #8]",
                "vadd.i32 q2, q2, q4",
                "vldrb.s32 q4, [r0, #12]",
                "vadd.i32 q3, q3, q4",
                "add r0, r0, {c}",
                "le lr, 2b",
                "vstrw.32 q0, [{a}]",
                "vstrw.32 q1, [{a}, #16]",
                "vstrw.32 q2, [{a}, #32]",
                "vstrw.32 q3, [{a}, #48]",
                a = in(reg) a.as_mut_ptr(),
                c = in(reg) c,
                inout("r0") image.as_ptr().add(c0 + 16 * j) => _,
                inout("lr") pixels => _,
                out("q0") _, out("q1") _, out("q2") _, out("q3") _, out("q4") _,
                options(nostack, preserves_flags),
            );
        }
    }
    n
}
