//! f32 kernels (within the bound stated in
//! [`crate::kernels::opt::conv_f32`]): rows times filters and depthwise
//! pixels.

use core::arch::aarch64::*;

/// `P` f32 rows (at least `k` values each) times every filter row of `w`
/// (`[Co, k]`): four partial sums per row and channel (`FMLA`), added
/// pairwise, then bias and clamp (`FMAXNM`/`FMINNM`, as `f32::max`/`min`).
/// Four channels per step; returns how many channels it wrote (the whole
/// blocks of four), the caller finishes the rest.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
pub fn rows_times_filters_f32<const P: usize>(
    p: [&[f32]; P],
    w: &[f32],
    k: usize,
    bias: Option<&[f32]>,
    lo: f32,
    hi: f32,
    out: [&mut [f32]; P],
) -> usize {
    if p.iter().any(|f| f.len() < k) {
        return 0;
    }
    let co = out
        .iter()
        .fold(w.len().checked_div(k).unwrap_or(0), |n, o| n.min(o.len()));
    let co = bias.map_or(co, |b| co.min(b.len()));
    let nblk = co / 4;
    let (vlo, vhi) = (vdupq_n_f32(lo), vdupq_n_f32(hi));
    let mut out = out;
    for blk in 0..nblk {
        let oc = 4 * blk;
        // SAFETY: rows `oc..oc + 4` lie inside `w` (`co <= w.len() / k`).
        let r = unsafe {
            [
                w.as_ptr().add(oc * k),
                w.as_ptr().add((oc + 1) * k),
                w.as_ptr().add((oc + 2) * k),
                w.as_ptr().add((oc + 3) * k),
            ]
        };
        let mut a = [[vdupq_n_f32(0.0); 4]; P];
        let mut i = 0;
        while i + 4 <= k {
            let mut x = [vdupq_n_f32(0.0); P];
            for (xv, f) in x.iter_mut().zip(&p) {
                // SAFETY: `i + 4 <= k <=` every row's length.
                *xv = unsafe { vld1q_f32(f.as_ptr().add(i)) };
            }
            for j in 0..4 {
                // SAFETY: `i + 4 <= k`, the filter row length.
                let wv = unsafe { vld1q_f32(r[j].add(i)) };
                for (acc, &xv) in a.iter_mut().zip(&x) {
                    acc[j] = vfmaq_f32(acc[j], xv, wv);
                }
            }
            i += 4;
        }
        let b = match bias {
            // SAFETY: `oc + 4 <= co <= b.len()`.
            Some(b) => unsafe { vld1q_f32(b.as_ptr().add(oc)) },
            None => vdupq_n_f32(0.0),
        };
        for ((acc, f), o) in a.iter().zip(&p).zip(out.iter_mut()) {
            let mut s = vpaddq_f32(vpaddq_f32(acc[0], acc[1]), vpaddq_f32(acc[2], acc[3]));
            if i < k {
                let mut t = [0f32; 4];
                for (tj, rj) in t.iter_mut().zip(r) {
                    // SAFETY: each row has `k` elements.
                    let row = unsafe { core::slice::from_raw_parts(rj, k) };
                    for q in i..k {
                        *tj += f[q] * row[q];
                    }
                }
                // SAFETY: `t` holds four f32.
                s = vaddq_f32(s, unsafe { vld1q_f32(t.as_ptr()) });
            }
            let s = vminnmq_f32(vmaxnmq_f32(vaddq_f32(s, b), vlo), vhi);
            if let Some(d) = o.get_mut(oc..oc + 4) {
                // SAFETY: `d` is exactly four f32.
                unsafe { vst1q_f32(d.as_mut_ptr(), s) };
            }
        }
    }
    4 * nblk
}

/// One output pixel of an f32 depthwise convolution: tap `t` reads input
/// channels at `x[at[t]..]` and weights at `w[wt[t]..]`; four channels per
/// vector, one `FMLA` per tap in order, bias last, clamp. Returns how many
/// channels it wrote (whole blocks of four), the caller finishes the rest.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
pub fn depthwise_pixel_f32(
    x: &[f32],
    at: &[usize],
    w: &[f32],
    wt: &[usize],
    c: usize,
    bias: Option<&[f32]>,
    lo: f32,
    hi: f32,
    out: &mut [f32],
) -> usize {
    let fits = |base: &[usize], len: usize| {
        base.iter()
            .all(|&s| s.checked_add(c).is_some_and(|e| e <= len))
    };
    if at.len() != wt.len() || !fits(at, x.len()) || !fits(wt, w.len()) {
        return 0;
    }
    let end = bias.map_or(c, |b| c.min(b.len())).min(out.len());
    let (vlo, vhi) = (vdupq_n_f32(lo), vdupq_n_f32(hi));
    let mut c0 = 0;
    while c0 + 4 <= end {
        let mut acc = vdupq_n_f32(0.0);
        for (&xa, &wa) in at.iter().zip(wt) {
            // SAFETY: `xa + c <= x.len()`, `wa + c <= w.len()` (checked
            // above) and `c0 + 4 <= c`.
            let (xv, wv) = unsafe {
                (
                    vld1q_f32(x.as_ptr().add(xa + c0)),
                    vld1q_f32(w.as_ptr().add(wa + c0)),
                )
            };
            acc = vfmaq_f32(acc, xv, wv);
        }
        if let Some(b) = bias {
            // SAFETY: `c0 + 4 <= end <= b.len()`.
            acc = vaddq_f32(acc, unsafe { vld1q_f32(b.as_ptr().add(c0)) });
        }
        let v = vminnmq_f32(vmaxnmq_f32(acc, vlo), vhi);
        // SAFETY: `c0 + 4 <= end <= out.len()`.
        unsafe { vst1q_f32(out.as_mut_ptr().add(c0), v) };
        c0 += 4;
    }
    c0
}
