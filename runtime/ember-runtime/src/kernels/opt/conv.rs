//! int8 convolution (groups = 1) as a matrix product: each output pixel's
//! receptive field is one row of `Kh·Kw·Ci` bytes — the input pixel itself
//! for a pointwise 1×1 convolution, otherwise gathered into scratch
//! ("im2col" one pixel at a time, implicit padding filled with the input
//! zero point) — multiplied by the filter rows `[Co, Kh·Kw·Ci]`, four
//! output channels per pass over the row.

use super::super::{check_len, check_requant, taps, QuantIo, Requant, Shape4, Window};
use super::Epilogue;
use crate::error::{Error, Result};

/// `true` when a convolution needs no gathering: 1×1 filter, stride 1, no
/// padding (dilation is irrelevant for a single tap).
pub fn is_pointwise(ws: Shape4, win: &Window) -> bool {
    ws.h == 1
        && ws.w == 1
        && win.stride_h == 1
        && win.stride_w == 1
        && win.pad_top == 0
        && win.pad_left == 0
        && win.pad_bottom == 0
        && win.pad_right == 0
}

/// Scratch bytes [`conv2d_s8_opt`] needs: one receptive field
/// (`Kh·Kw·Ci`, nothing for a pointwise convolution); with `wide` (the
/// two-pixel paths), also two widened copies of it (halfword pairs,
/// `K/2 + 4` words each, the DSP build's form) at the next 4-byte
/// boundary, room the NEON build uses for a second field. The kernel takes the wide path only when the
/// scratch is that large, so a blob planned without it still runs.
pub fn conv2d_s8_opt_scratch_size(ws: Shape4, win: &Window, wide: bool) -> usize {
    let k = ws.h.saturating_mul(ws.w).saturating_mul(ws.c);
    let patch = if is_pointwise(ws, win) { 0 } else { k };
    if wide {
        // Two packed fields of `k / 2 + 4` words each.
        let words = (k / 2).saturating_add(4);
        patch
            .next_multiple_of(4)
            .saturating_add(words.saturating_mul(8))
    } else {
        patch
    }
}

/// The receptive field of output pixel `pix` (row-major over `[N, Ho,
/// Wo]`): the input row itself for a pointwise convolution, otherwise
/// gathered into `patch` with the padding filled by the zero point.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn field<'a>(
    x: &'a [i8],
    xs: Shape4,
    ws: Shape4,
    win: &Window,
    zp: i8,
    ys: Shape4,
    pix: usize,
    patch: &'a mut [i8],
) -> &'a [i8] {
    let ci = xs.c;
    if is_pointwise(ws, win) {
        return &x[pix * ci..(pix + 1) * ci];
    }
    let (b, rest) = (pix / (ys.h * ys.w), pix % (ys.h * ys.w));
    let (oy, ox) = (rest / ys.w, rest % ys.w);
    let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
    let (kx0, kx1, ix0) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
    let run = ws.w * ci;
    // Helium and DSP: short runs by inline copies, not library calls.
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    let fill = super::mve::shared::fill_bytes;
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    let fill = super::dsp::shared::fill_bytes;
    #[cfg(not(all(target_arch = "arm", any(feature = "mve", feature = "dsp"))))]
    let fill = <[i8]>::fill;
    for ky in 0..ws.h {
        let dst = &mut patch[ky * run..(ky + 1) * run];
        if ky < ky0 || ky >= ky1 {
            fill(dst, zp);
            continue;
        }
        let iy = iy0 + (ky - ky0) * win.dil_h;
        let row = ((b * xs.h + iy) * xs.w) * ci;
        fill(&mut dst[..kx0 * ci], zp);
        fill(&mut dst[kx1 * ci..], zp);
        if win.dil_w == 1 && kx1 > kx0 {
            let s = row + ix0 * ci;
            let (d, src) = (&mut dst[kx0 * ci..kx1 * ci], &x[s..s + (kx1 - kx0) * ci]);
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            // SAFETY: NEON is enabled for the whole build (the cfg above).
            unsafe {
                super::neon::shared::copy_run(d, src)
            };
            #[cfg(all(feature = "mve", target_arch = "arm"))]
            super::mve::shared::copy_bytes(d, src);
            #[cfg(all(feature = "dsp", target_arch = "arm"))]
            super::dsp::shared::copy_bytes(d, src);
            #[cfg(not(any(
                all(target_arch = "aarch64", target_feature = "neon"),
                all(target_arch = "arm", any(feature = "mve", feature = "dsp"))
            )))]
            d.copy_from_slice(src);
        } else {
            for kx in kx0..kx1 {
                let s = row + (ix0 + (kx - kx0) * win.dil_w) * ci;
                dst[kx * ci..(kx + 1) * ci].copy_from_slice(&x[s..s + ci]);
            }
        }
    }
    patch
}

/// Whether a convolution's windows can be gathered as whole rows
/// ([`super::mve::conv::gather_rows`]): not pointwise (its row is in place
/// already) and with unit horizontal dilation.
#[cfg(all(feature = "mve", target_arch = "arm"))]
fn rows_in_place(ws: Shape4, win: &Window) -> bool {
    !is_pointwise(ws, win) && win.dil_w == 1
}

/// int8 convolution with one group, bit-exact with
/// [`crate::kernels::conv::conv2d_s8`] given
/// `folded_bias = fold_bias(bias, w, Co, in_zp)`.
///
/// `scratch` must hold [`conv2d_s8_opt_scratch_size`] bytes (it may be
/// longer). Shapes as the reference kernel's, `groups` = 1. `packed` is
/// either empty or [`super::pack_weights_s16`] of `w` (the NEON build uses
/// it on cores without `SDOT`; others ignore it).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8_opt(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    packed: &[i16],
    folded_bias: &[i32],
    rq: Requant<'_>,
    q: QuantIo,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    conv2d_s8_opt_for::<crate::AllKernels>(
        x,
        xs,
        w,
        ws,
        packed,
        folded_bias,
        rq,
        q,
        win,
        scratch,
        y,
        ys,
    )
}

/// [`conv2d_s8_opt`] with only the epilogues `S` has compiled in: the
/// fixed-point one for [`crate::Kernel::ConvS8Opt`] (TFLite rounding), the
/// general one for [`crate::Kernel::ConvS8OptFloat`] (see `with_epilogue!`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d_s8_opt_for<S: crate::KernelSet>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    packed: &[i16],
    folded_bias: &[i32],
    rq: Requant<'_>,
    q: QuantIo,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    super::check_conv_geometry(xs, ws, win, ys, [x.len(), w.len(), y.len()])?;
    check_len(folded_bias.len(), Some(ws.n), "conv: folded bias length")?;
    check_requant(&rq, ws.n, "conv: requant channels")?;
    if ws.n == 0 {
        return Ok(());
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    let zp = q.in_zp as i8; // validated int8 zero point: no truncation
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    return with_epilogue!(rq, q, fixed: S::KERNELS.contains(crate::Kernel::ConvS8Opt), any: S::KERNELS.contains(crate::Kernel::ConvS8OptFloat), e => run_neon(x, xs, w, ws, packed, folded_bias, e, zp, win, scratch, y, ys));
    #[cfg(not(all(target_arch = "aarch64", target_feature = "neon")))]
    with_epilogue!(rq, q, fixed: S::KERNELS.contains(crate::Kernel::ConvS8Opt), any: S::KERNELS.contains(crate::Kernel::ConvS8OptFloat), e => run(x, xs, w, ws, packed, folded_bias, e, q.in_zp, win, scratch, y, ys))
}

/// Output channels per [`super::dsp::conv::dot2x2_rows`] call (two pixels'
/// sums on the stack: 512 bytes).
#[cfg(all(feature = "dsp", target_arch = "arm"))]
const DSP_ROWS: usize = 64;

#[cfg(not(all(target_arch = "aarch64", target_feature = "neon")))]
#[allow(clippy::too_many_arguments)]
fn run<E: Epilogue>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    packed: &[i16],
    folded_bias: &[i32],
    e: E,
    in_zp: i32,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    let co = ws.n;
    let k = ws.h * ws.w * xs.c;
    let npix = ys.n * ys.h * ys.w;
    let zp = in_zp as i8; // validated int8 zero point: no truncation
    let patch_len = conv2d_s8_opt_scratch_size(ws, win, false);
    if scratch.len() < patch_len {
        return Err(Error::ShapeMismatch("conv: scratch too small"));
    }
    let (patch, _wide) = scratch.split_at_mut(patch_len);
    // The compiler's int16 filter for the DSP kernels, when the blob has
    // one (a NEON-layout filter has another length and is not used here).
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    let wide_w =
        (!packed.is_empty() && packed.len() == super::dsp_weights_len(co, k)).then_some(packed);
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    let _ = packed;
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        let off = patch_len.next_multiple_of(4) - patch_len;
        let words = super::dsp::conv::packed_words(k);
        let wide = _wide
            .get_mut(off..off + 8 * words)
            .and_then(|b| bytemuck::try_cast_slice_mut::<i8, u32>(b).ok());
        if let Some(wide) = wide {
            let xs2 = &mut wide[..2 * words];
            // The blocked table's epilogue bounds, read once for the layer.
            let table_bounds = e.blocks().map(|(blocks, q)| {
                let b = super::dsp::shared::OutBounds::for_table(
                    q.out_zp, q.act_min, q.act_max, blocks,
                );
                (blocks, b)
            });
            // The sums of up to `DSP_ROWS` channels of both pixels
            // (cleared once: each pass writes what it reads back).
            let mut acc = [[0i32; DSP_ROWS]; 2];
            let mut pix = 0;
            while pix + 2 <= npix {
                let f0 = field(x, xs, ws, win, zp, ys, pix, patch);
                super::dsp::conv::widen_slot(f0, 0, xs2);
                let f1 = field(x, xs, ws, win, zp, ys, pix + 1, patch);
                super::dsp::conv::widen_slot(f1, 1, xs2);
                let (o0, o1) = y[pix * co..(pix + 2) * co].split_at_mut(co);
                let row = |c: usize| &w[c * k..(c + 1) * k];
                let mut oc = 0;
                // Fixed-point blocked requantization: up to `DSP_ROWS`
                // output channels of both pixels in one `asm!`, then
                // requantized four at a time from the sums.
                if let Some((blocks, bounds)) = &table_bounds {
                    let body = k & !3;
                    let (tail0, tail1) = xs2[body..body + 2 * (k - body)].split_at(k - body);
                    while oc + 4 <= co {
                        let n = (co - oc).min(DSP_ROWS) & !3;
                        let [a0, a1] = &mut acc;
                        let (a0, a1) = (&mut a0[..n], &mut a1[..n]);
                        let fb = &folded_bias[oc..oc + n];
                        let done = match wide_w {
                            Some(pw) => super::dsp::conv::dot2x2_rows_wide(
                                xs2,
                                k,
                                &pw[oc * (k / 4 * 4)..],
                                n / 2,
                                fb,
                                a0,
                                a1,
                            ),
                            None => super::dsp::conv::dot2x2_rows(
                                xs2,
                                k,
                                &w[oc * k..],
                                n / 2,
                                fb,
                                a0,
                                a1,
                            ),
                        };
                        if done != n {
                            break;
                        }
                        // Skipped as a whole when `k % 4 = 0`: the per-row
                        // slicing alone cost 15 instructions a row.
                        if body < k {
                            for (r, (s0, s1)) in a0.iter_mut().zip(a1.iter_mut()).enumerate() {
                                let wt = &w[(oc + r) * k + body..(oc + r + 1) * k];
                                for ((&u, &v), &t) in tail0.iter().zip(tail1).zip(wt) {
                                    *s0 = s0.wrapping_add((u as i32).wrapping_mul(t as i32));
                                    *s1 = s1.wrapping_add((v as i32).wrapping_mul(t as i32));
                                }
                            }
                        }
                        let table = blocks.chunks_exact(super::REQUANT_BLOCK_WORDS).skip(oc / 4);
                        let outs = o0[oc..oc + n]
                            .chunks_exact_mut(4)
                            .zip(o1[oc..oc + n].chunks_exact_mut(4));
                        for (((p, (y0, y1)), s0), s1) in table
                            .zip(outs)
                            .zip(a0.chunks_exact(4))
                            .zip(a1.chunks_exact(4))
                        {
                            let (Ok(p), Ok(s0), Ok(s1), Ok(y0), Ok(y1)) = (
                                <&[i32; 12]>::try_from(p),
                                <&[i32; 4]>::try_from(s0),
                                <&[i32; 4]>::try_from(s1),
                                <&mut [i8; 4]>::try_from(y0),
                                <&mut [i8; 4]>::try_from(y1),
                            ) else {
                                continue;
                            };
                            super::dsp::shared::requant4(s0, p, bounds, y0);
                            super::dsp::shared::requant4(s1, p, bounds, y1);
                        }
                        oc += n;
                    }
                }
                while oc + 4 <= co {
                    let a = super::dsp::conv::dot2x2_pair(xs2, k, row(oc), row(oc + 1));
                    let b = super::dsp::conv::dot2x2_pair(xs2, k, row(oc + 2), row(oc + 3));
                    super::epilogue::store4(e, [a[0], a[1], b[0], b[1]], folded_bias, oc, o0);
                    super::epilogue::store4(e, [a[2], a[3], b[2], b[3]], folded_bias, oc, o1);
                    oc += 4;
                }
                while oc < co {
                    // A last odd channel pairs with itself.
                    let oc1 = (oc + 1).min(co - 1);
                    let a = super::dsp::conv::dot2x2_pair(xs2, k, row(oc), row(oc1));
                    o0[oc] = e.apply(a[0].wrapping_add(folded_bias[oc]), oc);
                    o1[oc] = e.apply(a[2].wrapping_add(folded_bias[oc]), oc);
                    if oc1 != oc {
                        o0[oc1] = e.apply(a[1].wrapping_add(folded_bias[oc1]), oc1);
                        o1[oc1] = e.apply(a[3].wrapping_add(folded_bias[oc1]), oc1);
                    }
                    oc += 2;
                }
                pix += 2;
            }
            if pix < npix {
                let f = field(x, xs, ws, win, zp, ys, pix, patch);
                super::rows::row_times_filters(
                    f,
                    w,
                    k,
                    folded_bias,
                    e,
                    &mut y[pix * co..(pix + 1) * co],
                );
            }
            return Ok(());
        }
    }
    // Helium: windows inside the input are gathered as whole rows by
    // vector copies (no padding logic), walking the output rows so that
    // the vertical taps are worked out once per row.
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    if rows_in_place(ws, win) {
        let (run, stride) = (ws.w * xs.c, win.dil_h * xs.w * xs.c);
        // The output columns whose windows lie inside the input
        // horizontally (a contiguous range), worked out once per layer so
        // that the pixel loop only steps the input offset.
        let col_inside = |ox: usize| {
            let (kx0, kx1, _) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
            kx0 == 0 && kx1 == ws.w
        };
        let ox_lo = (0..ys.w).find(|&ox| col_inside(ox)).unwrap_or(ys.w);
        let ox_hi = (ox_lo..ys.w).find(|&ox| !col_inside(ox)).unwrap_or(ys.w);
        let mut pix = 0;
        for b in 0..ys.n {
            for oy in 0..ys.h {
                let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
                let row_inside = ky0 == 0 && ky1 == ws.h;
                let row_base = (b * xs.h + iy0) * xs.w;
                for ox in 0..ys.w {
                    let inside = row_inside && (ox_lo..ox_hi).contains(&ox);
                    let out = &mut y[pix * co..(pix + 1) * co];
                    let gathered = if inside {
                        // Inside columns start at or past the padding.
                        let ix0 = (ox * win.stride_w).saturating_sub(win.pad_left);
                        let base = (row_base + ix0) * xs.c;
                        super::mve::conv::gather_rows(x, base, stride, run, ws.h, patch)
                    } else {
                        None
                    };
                    let f = match gathered {
                        Some(f) => f,
                        None => field(x, xs, ws, win, zp, ys, pix, patch),
                    };
                    super::rows::row_times_filters(f, w, k, folded_bias, e, out);
                    pix += 1;
                }
            }
        }
        return Ok(());
    }
    // Indexed over pixels so that Ci = 0 still writes the outputs.
    for pix in 0..npix {
        let f = field(x, xs, ws, win, zp, ys, pix, patch);
        super::rows::row_times_filters(f, w, k, folded_bias, e, &mut y[pix * co..(pix + 1) * co]);
    }
    Ok(())
}

/// Longest receptive field the packed lane-per-channel kernel takes when
/// a row kernel could (`SDOT`, or the paired `SMLAL2` one); measured on the
/// MLPerf Tiny models, shorter rows favour the packed kernel.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
const PACKED_MAX_K: usize = 32;

/// Without `SDOT`: rows longer than this go to the paired row kernel
/// (when the filter allows it), shorter ones to the packed kernel.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
const PAIRED_MIN_K: usize = 128;

/// The NEON form of [`run`]: four output pixels per pass over the filters
/// (each weight vector loaded once for all four). Gathered fields are
/// stored `kp` bytes apart, `k` rounded up to 8 when four such slots fit
/// the scratch, with zeros past `k`: the vector loop then runs
/// to `kp` with no scalar tail, the padding multiplying whatever follows
/// each filter row by zero.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[allow(clippy::too_many_arguments)]
fn run_neon<E: Epilogue>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    packed: &[i16],
    folded_bias: &[i32],
    e: E,
    zp: i8,
    win: &Window,
    scratch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> Result<()> {
    let co = ws.n;
    let k = ws.h * ws.w * xs.c;
    let npix = ys.n * ys.h * ys.w;
    let pointwise = is_pointwise(ws, win);
    let kp = if pointwise {
        k
    } else {
        [8, 1]
            .iter()
            .map(|&m| k.next_multiple_of(m))
            .find(|&kp| 4 * kp <= scratch.len())
            .unwrap_or(k)
    };
    if !pointwise && scratch.len() < k {
        return Err(Error::ShapeMismatch("conv: scratch too small"));
    }
    let mut s = scratch.chunks_exact_mut(kp.max(1));
    let mut slot = [s.next(), s.next(), s.next(), s.next()];
    for t in slot.iter_mut().flatten() {
        t[k.min(kp)..].fill(0);
    }
    // The packed filter (lanes are channels) where the compiler stored one,
    // unless the core has `SDOT` and the rows are long enough for its
    // row kernel's horizontal sums to pay off (measured on the MLPerf
    // Tiny models: short rows favour the packed kernel either way).
    let dotprod = super::dot::has_dotprod();
    // (A Cortex-M DSP blob's packed filter has another length: unused.)
    let neon_layout = packed.len() == super::packed_weights_len(co, k) && !packed.is_empty();
    let use_packed = neon_layout && (k <= PACKED_MAX_K || !dotprod);
    // Without SDOT, long rows go to the paired row kernel when the filter
    // allows it (no −128: one scan of the weights, small next to the
    // products).
    let paired = !dotprod && k > PAIRED_MIN_K && !w.contains(&i8::MIN);
    let use_packed = use_packed && !paired;
    let mut pix = 0;
    if pointwise {
        while pix + 4 <= npix {
            let (o0, rest) = y[pix * co..(pix + 4) * co].split_at_mut(co);
            let (o1, rest) = rest.split_at_mut(co);
            let (o2, o3) = rest.split_at_mut(co);
            let f = [
                &x[pix * k..(pix + 1) * k],
                &x[(pix + 1) * k..(pix + 2) * k],
                &x[(pix + 2) * k..(pix + 3) * k],
                &x[(pix + 3) * k..(pix + 4) * k],
            ];
            if use_packed {
                super::rows::packed_rows_times_filters(
                    f,
                    packed,
                    w,
                    k,
                    folded_bias,
                    e,
                    [o0, o1, o2, o3],
                );
            } else {
                super::rows::rows_times_filters(
                    f,
                    w,
                    k,
                    k,
                    folded_bias,
                    e,
                    [o0, o1, o2, o3],
                    paired,
                );
            }
            pix += 4;
        }
    } else if let [Some(s0), Some(s1), Some(s2), Some(s3)] = &mut slot {
        while pix + 4 <= npix {
            let (o0, rest) = y[pix * co..(pix + 4) * co].split_at_mut(co);
            let (o1, rest) = rest.split_at_mut(co);
            let (o2, o3) = rest.split_at_mut(co);
            // Gathered into the slots (bytes `k..kp` stay zero).
            field(x, xs, ws, win, zp, ys, pix, &mut s0[..k]);
            field(x, xs, ws, win, zp, ys, pix + 1, &mut s1[..k]);
            field(x, xs, ws, win, zp, ys, pix + 2, &mut s2[..k]);
            field(x, xs, ws, win, zp, ys, pix + 3, &mut s3[..k]);
            let f: [&[i8]; 4] = [s0, s1, s2, s3];
            if use_packed {
                super::rows::packed_rows_times_filters(
                    f,
                    packed,
                    w,
                    k,
                    folded_bias,
                    e,
                    [o0, o1, o2, o3],
                );
            } else {
                super::rows::rows_times_filters(
                    f,
                    w,
                    k,
                    kp,
                    folded_bias,
                    e,
                    [o0, o1, o2, o3],
                    paired,
                );
            }
            pix += 4;
        }
    }
    while pix < npix {
        let o = &mut y[pix * co..(pix + 1) * co];
        match (&mut slot[0], pointwise) {
            (Some(s0), false) => {
                field(x, xs, ws, win, zp, ys, pix, &mut s0[..k]);
                if use_packed {
                    super::rows::packed_rows_times_filters(
                        [&s0[..]],
                        packed,
                        w,
                        k,
                        folded_bias,
                        e,
                        [o],
                    );
                } else {
                    super::rows::rows_times_filters(
                        [&s0[..]],
                        w,
                        k,
                        kp,
                        folded_bias,
                        e,
                        [o],
                        paired,
                    );
                }
            }
            // Unreachable: the scratch was checked to hold a field.
            (None, false) => return Err(Error::ShapeMismatch("conv: scratch too small")),
            (_, true) => {
                let f = &x[pix * k..(pix + 1) * k];
                if use_packed {
                    super::rows::packed_rows_times_filters([f], packed, w, k, folded_bias, e, [o]);
                } else {
                    super::rows::rows_times_filters([f], w, k, k, folded_bias, e, [o], paired);
                }
            }
        }
        pix += 1;
    }
    Ok(())
}
