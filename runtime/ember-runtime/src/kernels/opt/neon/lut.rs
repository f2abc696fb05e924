//! The byte table lookup, sixteen elements per step.

use core::arch::aarch64::*;

/// `y[i] = table[x[i]]` over the longest multiple of 16 of the `n`
/// elements; returns how many it wrote (the caller finishes the rest).
/// Each block is read before it is written, so `x` may be `y`. The 256-byte table
/// sits in sixteen registers as four 64-byte quarters: `TBL` looks the
/// indices up in the first (an index past 63 gives 0), and three `TBX`
/// steps look `index − 64·k` up in quarter `k`, each leaving lanes whose
/// shifted index is out of its range (wrapped past 63) untouched, so every
/// lane ends with exactly its own entry.
///
/// # Safety
/// `x` readable and `y` writable for `n` bytes, the same bytes or not
/// overlapping; the core must have NEON.
#[target_feature(enable = "neon")]
pub unsafe fn lut_run(x: *const u8, table: &[u8; 256], y: *mut u8, n: usize) -> usize {
    let n = n & !15;
    let t = table.as_ptr();
    // SAFETY: `table` is 256 bytes: four 64-byte loads at 0, 64, 128, 192.
    let q = unsafe {
        [
            vld1q_u8_x4(t),
            vld1q_u8_x4(t.add(64)),
            vld1q_u8_x4(t.add(128)),
            vld1q_u8_x4(t.add(192)),
        ]
    };
    let k64 = vdupq_n_u8(64);
    let mut i = 0;
    while i < n {
        // SAFETY: `i + 16 <= n`, readable (the caller's contract).
        let v = unsafe { vld1q_u8(x.add(i)) };
        let mut r = vqtbl4q_u8(q[0], v);
        let v = vsubq_u8(v, k64);
        r = vqtbx4q_u8(r, q[1], v);
        let v = vsubq_u8(v, k64);
        r = vqtbx4q_u8(r, q[2], v);
        let v = vsubq_u8(v, k64);
        r = vqtbx4q_u8(r, q[3], v);
        // SAFETY: `i + 16 <= n`, writable (the caller's contract).
        unsafe { vst1q_u8(y.add(i), r) };
        i += 16;
    }
    n
}
