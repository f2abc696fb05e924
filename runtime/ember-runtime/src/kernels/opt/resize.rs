//! Nearest-neighbour resize row by row: the source row of every output row
//! (all axes but the last) is found once from the outer axes' tables, an
//! output row whose source row is the previous one's (each row an upscale
//! repeats) is a copy of that output row, and the others gather along the
//! last axis from one input row. The reference walks every output element
//! through every axis' table.

use super::super::next_index;
use super::super::resize::{prepare, resize_nearest};
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
