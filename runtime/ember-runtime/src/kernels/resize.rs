//! Resize by per-axis tables: for every output coordinate of every axis,
//! the compiler lists the `taps` input coordinates it reads and their
//! weights (`[i_0 … i_{taps-1}, w_0 … w_{taps-1}]`, weights as f32 bits),
//! or `i_0 = -1` for a coordinate outside the input (TF crop-and-resize:
//! the whole output point takes the extrapolation value). Every ONNX
//! choice — coordinate transformation, nearest rounding, linear, cubic or
//! antialiased coefficients, scales or sizes — is made there; the kernel
//! only gathers and blends. One tap is nearest-neighbour (any element
//! type); more blend in f32, on f32 data or on int8 data dequantized at
//! each read and quantized at each write ([`resize_s8`]).

use super::next_index;
use super::quantize::{dequantize_one_s8, quantize_one_s8};
use crate::error::{Error, Result};
use crate::format::MAX_RANK;

/// The most taps per axis a table may hold.
pub const MAX_TAPS: usize = 16;

/// Checks a table against the input and output dims: `2·taps` words per
/// output coordinate of every axis, indices inside the input (or the
/// outside marker), finite weights.
pub fn check_table(
    table: &[i32],
    taps: usize,
    x_dims: &[usize],
    y_dims: &[usize],
) -> core::result::Result<(), &'static str> {
    if x_dims.len() != y_dims.len() || x_dims.len() > MAX_RANK {
        return Err("resize changes the rank");
    }
    if taps == 0 || taps > MAX_TAPS {
        return Err("resize taps out of range");
    }
    let n = y_dims.iter().try_fold(0usize, |a, &d| a.checked_add(d));
    if n.and_then(|n| n.checked_mul(2 * taps)) != Some(table.len()) {
        return Err("resize table length");
    }
    let mut at = 0;
    for (&xd, &yd) in x_dims.iter().zip(y_dims) {
        for e in table[at..at + yd * 2 * taps].chunks_exact(2 * taps) {
            if e[0] == -1 {
                continue;
            }
            let (idx, w) = e.split_at(taps);
            if idx.iter().any(|&i| i < 0 || i as usize >= xd) {
                return Err("resize table reads outside the input");
            }
            if w.iter().any(|&w| !f32::from_bits(w as u32).is_finite()) {
                return Err("resize table weight is not finite");
            }
        }
        at += yd * 2 * taps;
    }
    Ok(())
}

/// Nearest-neighbour resize (a one-tap table, validated by
/// [`check_table`]) of any element type.
pub fn resize_nearest<T: Copy>(
    x: &[T],
    x_dims: &[usize],
    table: &[i32],
    extrapolation: T,
    y: &mut [T],
    y_dims: &[usize],
) -> Result<()> {
    let (strides, bases) = prepare(x.len(), x_dims, table, 1, y.len(), y_dims)?;
    let r = x_dims.len();
    let mut idx = [0usize; MAX_RANK];
    for out in y.iter_mut() {
        let mut src = 0usize;
        let mut outside = false;
        for d in 0..r {
            let i0 = table[bases[d] + idx[d] * 2];
            outside |= i0 < 0;
            src += (i0.max(0) as usize) * strides[d];
        }
        *out = if outside {
            extrapolation
        } else {
            *x.get(src).ok_or(Error::ShapeMismatch("resize: index"))?
        };
        next_index(&mut idx, y_dims);
    }
    Ok(())
}

/// f32 resize by a `taps`-tap table (validated by [`check_table`]): the
/// sum over every combination of one non-zero tap per axis of the product
/// of their weights times the input there (separable linear, cubic or
/// antialiased interpolation).
pub fn resize_f32(
    x: &[f32],
    x_dims: &[usize],
    table: &[i32],
    taps: usize,
    extrapolation: f32,
    y: &mut [f32],
    y_dims: &[usize],
) -> Result<()> {
    let t = Taps { table, taps };
    blend(x, x_dims, t, extrapolation, y, y_dims, |v| v, |v| v)
}

/// [`resize_f32`] of int8 data quantized `xq = (scale, zero point)` into
/// int8 quantized `yq`: each input read dequantized as
/// [`crate::kernels::quantize::dequantize_s8_f32`] does, each output
/// (extrapolation included) quantized as
/// [`crate::kernels::quantize::quantize_f32_s8`] does — the same bytes as
/// those two around [`resize_f32`], with no f32 tensors.
#[allow(clippy::too_many_arguments)]
pub fn resize_s8(
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
    let t = Taps { table, taps };
    let read = |v: i8| dequantize_one_s8(v, xq.0, xq.1);
    let write = |v: f32| quantize_one_s8(v, yq.0, yq.1);
    blend(x, x_dims, t, extrapolation, y, y_dims, read, write)
}

/// A resize table and its taps per output coordinate.
#[derive(Clone, Copy)]
struct Taps<'t> {
    table: &'t [i32],
    taps: usize,
}

/// The interpolating resize: inputs mapped to f32 by `read`, sums to
/// outputs by `write`.
#[allow(clippy::too_many_arguments)]
fn blend<T: Copy, U>(
    x: &[T],
    x_dims: &[usize],
    Taps { table, taps }: Taps<'_>,
    extrapolation: f32,
    y: &mut [U],
    y_dims: &[usize],
    read: impl Fn(T) -> f32,
    write: impl Fn(f32) -> U,
) -> Result<()> {
    let (strides, bases) = prepare(x.len(), x_dims, table, taps, y.len(), y_dims)?;
    let r = x_dims.len();
    let mut idx = [0usize; MAX_RANK];
    // Per axis: the non-zero taps of the current output coordinate, as
    // (offset in x, weight).
    let mut tap = [[(0usize, 0f32); MAX_TAPS]; MAX_RANK];
    let mut count = [0usize; MAX_RANK];
    for out in y.iter_mut() {
        let mut outside = false;
        for d in 0..r {
            let e = &table[bases[d] + idx[d] * 2 * taps..][..2 * taps];
            outside |= e[0] < 0;
            let mut k = 0;
            for t in 0..taps {
                let w = f32::from_bits(e[taps + t] as u32);
                if w != 0.0 {
                    tap[d][k] = (e[t].max(0) as usize * strides[d], w);
                    k += 1;
                }
            }
            count[d] = k;
        }
        if outside {
            *out = write(extrapolation);
            next_index(&mut idx, y_dims);
            continue;
        }
        // Odometer over the combinations of taps.
        let mut pick = [0usize; MAX_RANK];
        let mut acc = 0f32;
        if count[..r].iter().all(|&k| k > 0) {
            'combos: loop {
                let mut off = 0usize;
                let mut wt = 1f32;
                for d in 0..r {
                    let (o, w) = tap[d][pick[d]];
                    off += o;
                    wt *= w;
                }
                acc += wt * read(*x.get(off).ok_or(Error::ShapeMismatch("resize: index"))?);
                let mut d = r;
                loop {
                    if d == 0 {
                        break 'combos;
                    }
                    d -= 1;
                    pick[d] += 1;
                    if pick[d] < count[d] {
                        continue 'combos;
                    }
                    pick[d] = 0;
                }
            }
        }
        *out = write(acc);
        next_index(&mut idx, y_dims);
    }
    Ok(())
}

/// Lengths checked; row-major input strides and each axis's table offset.
pub(crate) fn prepare(
    x_len: usize,
    x_dims: &[usize],
    table: &[i32],
    taps: usize,
    y_len: usize,
    y_dims: &[usize],
) -> Result<([usize; MAX_RANK], [usize; MAX_RANK])> {
    let r = x_dims.len();
    if r > MAX_RANK || y_dims.len() != r {
        return Err(Error::ShapeMismatch("resize: rank"));
    }
    let xn = x_dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let yn = y_dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if xn != Some(x_len) || yn != Some(y_len) {
        return Err(Error::ShapeMismatch("resize: lengths"));
    }
    check_table(table, taps, x_dims, y_dims).map_err(Error::ShapeMismatch)?;
    let mut strides = [0usize; MAX_RANK];
    let mut acc = 1;
    for d in (0..r).rev() {
        strides[d] = acc;
        acc *= x_dims[d];
    }
    let mut bases = [0usize; MAX_RANK];
    let mut at = 0;
    for d in 0..r {
        bases[d] = at;
        at += y_dims[d] * 2 * taps;
    }
    Ok((strides, bases))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Entries of `taps` (index, weight) pairs.
    fn entries(v: &[&[(i32, f32)]]) -> Vec<i32> {
        v.iter()
            .flat_map(|e| {
                let idx = e.iter().map(|&(i, _)| i);
                let w = e.iter().map(|&(_, w)| w.to_bits() as i32);
                idx.chain(w).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn bilinear_2x2_to_3x3_align_corners() {
        // [[0, 2], [4, 6]] → align_corners 3×3: midpoints average.
        let x = [0.0f32, 2.0, 4.0, 6.0];
        let axis: [&[(i32, f32)]; 3] = [
            &[(0, 1.0), (1, 0.0)],
            &[(0, 0.5), (1, 0.5)],
            &[(0, 0.0), (1, 1.0)],
        ];
        let t = entries(&[axis, axis].concat());
        let mut y = [0f32; 9];
        resize_f32(&x, &[2, 2], &t, 2, 0.0, &mut y, &[3, 3]).unwrap();
        assert_eq!(y, [0.0, 1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn four_taps_with_negative_weights() {
        let x = [1.0f32, 2.0, 4.0, 8.0];
        let t = entries(&[&[(0, -0.5), (1, 1.0), (2, 1.0), (3, -0.5)]]);
        let mut y = [0f32; 1];
        resize_f32(&x, &[4], &t, 4, 0.0, &mut y, &[1]).unwrap();
        assert_eq!(y, [-0.5 + 2.0 + 4.0 - 4.0]);
    }

    #[test]
    fn nearest_repeats_and_outside_extrapolates() {
        let x = [1u8, 2, 3];
        let t = entries(&[&[(0, 1.0)], &[(0, 1.0)], &[(2, 1.0)], &[(-1, 0.0)]]);
        let mut y = [0u8; 4];
        resize_nearest(&x, &[3], &t, 9, &mut y, &[4]).unwrap();
        assert_eq!(y, [1, 1, 3, 9]);
    }

    #[test]
    fn bad_tables_are_refused() {
        let t = entries(&[&[(0, 0.5), (3, 0.5)]]);
        assert!(check_table(&t, 2, &[3], &[1]).is_err(), "index 3 of 3");
        let t = entries(&[&[(0, f32::NAN), (1, 0.5)]]);
        assert!(check_table(&t, 2, &[3], &[1]).is_err(), "NaN weight");
        assert!(check_table(&t, 2, &[3], &[2]).is_err(), "length");
        assert!(check_table(&t, 0, &[3], &[1]).is_err(), "no taps");
    }
}
