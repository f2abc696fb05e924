//! Resize plane by plane and row by row. The reference walks every output
//! element through every axis' table; here what an outer axis decides is
//! decided once per plane or row.
//!
//! - Nearest: the source row of every output row (all axes but the last)
//!   is found once from the outer axes' tables, an output row whose source
//!   row is the previous one's (each row an upscale repeats) is a copy of
//!   that output row, and the others gather along the last axis from one
//!   input row.
//! - Interpolating (f32, int8): when every axis but the last two picks one
//!   input coordinate with weight 1 (the usual spatial resize), each plane
//!   blends its rows and columns with the same products in the same order
//!   as the reference — `(w_h · w_w) · x` summed over the non-zero taps,
//!   rows outer — so the sums are the same floats. Other tables run the
//!   reference.

use super::super::next_index;
use super::super::quantize::{dequantize_one_s8, quantize_one_s8};
use super::super::resize::{prepare, resize_f32, resize_nearest, resize_s8};
use crate::error::{Error, Result};
use crate::format::MAX_RANK;

/// Scratch bytes [`resize_nearest_opt`] needs (none).
pub fn resize_nearest_opt_scratch_size() -> usize {
    0
}

/// Bit-exact with [`crate::kernels::resize::resize_nearest`] (it moves
/// the same elements): a one-tap table (validated the same way), any
/// element type.
pub fn resize_nearest_opt<T: Copy>(
    x: &[T],
    x_dims: &[usize],
    table: &[i32],
    extrapolation: T,
    y: &mut [T],
    y_dims: &[usize],
) -> Result<()> {
    let (strides, bases) = prepare(x.len(), x_dims, table, 1, y.len(), y_dims)?;
    let r = x_dims.len();
    let (Some(last), Some(&w)) = (r.checked_sub(1), y_dims.last()) else {
        return resize_nearest(x, x_dims, table, extrapolation, y, y_dims);
    };
    if w == 0 || y.is_empty() {
        return Ok(());
    }
    // One (input index, weight) pair per output column.
    let columns = &table[bases[last]..bases[last] + 2 * w];
    let x_w = x_dims[last];
    let mut idx = [0usize; MAX_RANK];
    // The source row offset and the output row that holds its gather.
    let mut prev: Option<(usize, usize)> = None;
    for row in 0..y.len() / w {
        let mut src = 0usize;
        let mut outside = false;
        for d in 0..last {
            let i0 = table[bases[d] + idx[d] * 2];
            outside |= i0 < 0;
            src += i0.max(0) as usize * strides[d];
        }
        let (done, rest) = y.split_at_mut(row * w);
        let out = &mut rest[..w];
        match prev {
            _ if outside => out.fill(extrapolation),
            Some((p, at)) if p == src => out.copy_from_slice(&done[at * w..(at + 1) * w]),
            _ => {
                let xrow = x
                    .get(src..src + x_w)
                    .ok_or(Error::ShapeMismatch("resize: index"))?;
                for (o, e) in out.iter_mut().zip(columns.chunks_exact(2)) {
                    // Indices are checked against the input by `prepare`.
                    *o = match usize::try_from(e[0]) {
                        Ok(i) => *xrow.get(i).ok_or(Error::ShapeMismatch("resize: index"))?,
                        Err(_) => extrapolation,
                    };
                }
                prev = Some((src, row));
            }
        }
        next_index(&mut idx[..last], &y_dims[..last]);
    }
    Ok(())
}

/// Scratch bytes [`resize_f32_opt`] and [`resize_s8_opt`] need (none).
pub fn resize_blend_opt_scratch_size() -> usize {
    0
}

/// Bit-exact with [`resize_f32`] (see the module comment).
pub fn resize_f32_opt(
    x: &[f32],
    x_dims: &[usize],
    table: &[i32],
    taps: usize,
    extrapolation: f32,
    y: &mut [f32],
    y_dims: &[usize],
) -> Result<()> {
    let done = blend_planes(
        x,
        x_dims,
        table,
        taps,
        extrapolation,
        y,
        y_dims,
        |v| v,
        |v| v,
    )?;
    match done {
        true => Ok(()),
        false => resize_f32(x, x_dims, table, taps, extrapolation, y, y_dims),
    }
}

/// Bit-exact with [`resize_s8`] (see the module comment).
#[allow(clippy::too_many_arguments)]
pub fn resize_s8_opt(
    x: &[i8],
    x_dims: &[usize],
    xq: (f32, i32),
    table: &[i32],
    taps: usize,
    extrapolation: f32,
    y: &mut [i8],
    y_dims: &[usize],
    yq: (f32, i32),
) -> Result<()> {
    // The reference's dequantization and quantization, element for
    // element, in cheaper instructions where they give the same values:
    // with an int8 zero point `v − zp` is exact in i32 (the reference
    // subtracts in i64, a library call on 32-bit cores) and converts to
    // f32 exactly; below 2^22 in magnitude, adding and subtracting
    // 1.5·2^23 rounds half to even as `rintf` does.
    let small_zp = (-128..=127).contains(&xq.1);
    let read = |v: i8| {
        if small_zp {
            (v as i32 - xq.1) as f32 * xq.0
        } else {
            dequantize_one_s8(v, xq.0, xq.1)
        }
    };
    let write = |v: f32| {
        let q = v / yq.0;
        if q.abs() < 4_194_304.0 {
            const MAGIC: f32 = 12_582_912.0;
            (((q + MAGIC) - MAGIC) as i32)
                .saturating_add(yq.1)
                .clamp(-128, 127) as i8
        } else {
            quantize_one_s8(v, yq.0, yq.1)
        }
    };
    let done = blend_planes(
        x,
        x_dims,
        table,
        taps,
        extrapolation,
        y,
        y_dims,
        read,
        write,
    )?;
    match done {
        true => Ok(()),
        false => resize_s8(x, x_dims, xq, table, taps, extrapolation, y, y_dims, yq),
    }
}

/// The plane-by-plane blend; `Ok(false)`, having written nothing, when an
/// axis before the last two blends (more than one non-zero tap, or a
/// weight other than 1) or there are fewer than two axes.
#[allow(clippy::too_many_arguments)]
fn blend_planes<T: Copy, U: Copy>(
    x: &[T],
    x_dims: &[usize],
    table: &[i32],
    taps: usize,
    extrapolation: f32,
    y: &mut [U],
    y_dims: &[usize],
    read: impl Fn(T) -> f32,
    write: impl Fn(f32) -> U,
) -> Result<bool> {
    let (strides, bases) = prepare(x.len(), x_dims, table, taps, y.len(), y_dims)?;
    let r = x_dims.len();
    let Some(hd) = r.checked_sub(2) else {
        return Ok(false);
    };
    let wd = hd + 1;
    let entry = |d: usize, o: usize| &table[bases[d] + o * 2 * taps..][..2 * taps];
    let weight = |e: &[i32], t: usize| f32::from_bits(e[taps + t] as u32);
    // The one input coordinate each outer output coordinate reads (or
    // `None` outside the input).
    let pick = |d: usize, o: usize| -> core::result::Result<Option<usize>, ()> {
        let e = entry(d, o);
        if e[0] < 0 {
            return Ok(None);
        }
        let mut one = None;
        for t in 0..taps {
            let w = weight(e, t);
            if w == 1.0 && one.is_none() {
                one = Some(e[t] as usize);
            } else if w != 0.0 {
                return Err(());
            }
        }
        one.map(Some).ok_or(())
    };
    for (d, &n) in y_dims[..hd].iter().enumerate() {
        if (0..n).any(|o| pick(d, o).is_err()) {
            return Ok(false);
        }
    }
    let (yh, yw) = (y_dims[hd], y_dims[wd]);
    let plane = yh * yw;
    if plane == 0 || y.is_empty() {
        return Ok(true);
    }
    let outside = write(extrapolation);
    let mut idx = [0usize; MAX_RANK];
    for out in y.chunks_exact_mut(plane) {
        let mut src = Some(0usize);
        for d in 0..hd {
            src = match (src, pick(d, idx[d])) {
                (Some(s), Ok(Some(i))) => Some(s + i * strides[d]),
                _ => None,
            };
        }
        let Some(src) = src else {
            out.fill(outside);
            next_index(&mut idx[..hd], &y_dims[..hd]);
            continue;
        };
        for (oh, row) in out.chunks_exact_mut(yw).enumerate() {
            let eh = entry(hd, oh);
            if eh[0] < 0 {
                row.fill(outside);
                continue;
            }
            for (ow, o) in row.iter_mut().enumerate() {
                let ew = entry(wd, ow);
                if ew[0] < 0 {
                    *o = outside;
                    continue;
                }
                let mut acc = 0f32;
                for i in 0..taps {
                    let wh = weight(eh, i);
                    if wh == 0.0 {
                        continue;
                    }
                    let at = src + eh[i] as usize * strides[hd];
                    for j in 0..taps {
                        let ww = weight(ew, j);
                        if ww == 0.0 {
                            continue;
                        }
                        let v = *x
                            .get(at + ew[j] as usize)
                            .ok_or(Error::ShapeMismatch("resize: index"))?;
                        acc += wh * ww * read(v);
                    }
                }
                *o = write(acc);
            }
        }
        next_index(&mut idx[..hd], &y_dims[..hd]);
    }
    Ok(true)
}
