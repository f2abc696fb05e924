//! Strided slices: output element `i` (per axis) is input element
//! `start + i·step` on that axis; steps may be negative (reversed slices).

use crate::error::{Error, Result};
use crate::format::MAX_RANK;

/// Whether `start + i·step` stays inside `0..n` for every `i < len`
/// (`len ≥ 1`; the last index is the extreme one).
pub fn slice_axis_fits(n: usize, start: usize, step: isize, len: usize) -> bool {
    let last = (len as i128 - 1) * step as i128 + start as i128;
    len >= 1 && start < n && step != 0 && last >= 0 && last < n as i128
}

/// Copies the strided slice of `x` (dims `x_dims`, rank ≤ [`MAX_RANK`])
/// that starts at `start` and moves `step` elements per output index on
/// each axis into `y` (dims `y_dims`). Every read must land inside `x`.
pub fn slice<T: Copy>(
    x: &[T],
    x_dims: &[usize],
    start: &[usize],
    step: &[isize],
    y: &mut [T],
    y_dims: &[usize],
) -> Result<()> {
    let r = x_dims.len();
    if r == 0 || r > MAX_RANK || start.len() != r || step.len() != r || y_dims.len() != r {
        return Err(Error::ShapeMismatch("slice: rank"));
    }
    let xn = x_dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let yn = y_dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if xn != Some(x.len()) || yn != Some(y.len()) {
        return Err(Error::ShapeMismatch("slice: lengths"));
    }
    if y.is_empty() {
        return Ok(());
    }
    for d in 0..r {
        if !slice_axis_fits(x_dims[d], start[d], step[d], y_dims[d]) {
            return Err(Error::ShapeMismatch("slice: reads outside the input"));
        }
    }
    // Row-major input strides in elements, the per-axis move `step·stride`,
    // and the offset of the first element (all inside `x`, checked above).
    let mut moves = [0isize; MAX_RANK];
    let mut acc = 1usize;
    let mut src = 0usize;
    for d in (0..r).rev() {
        moves[d] = step[d] * acc as isize;
        src += start[d] * acc;
        acc *= x_dims[d];
    }
    // Trailing axes read whole, and the one before them read with step 1,
    // are one contiguous run in both `x` and `y`: copy runs, not elements.
    let mut k = r;
    let mut run = 1usize;
    while k > 0 && step[k - 1] == 1 && start[k - 1] == 0 && y_dims[k - 1] == x_dims[k - 1] {
        k -= 1;
        run *= x_dims[k];
    }
    if k > 0 && step[k - 1] == 1 {
        k -= 1;
        run *= y_dims[k];
    }
    // Odometer over the outer axes `..k` (all of them when nothing
    // collapsed and `run` is 1); each output run of `run` elements starts
    // at `src` in the input (inside it, as checked).
    let mut idx = [0usize; MAX_RANK];
    let mut src = src as isize;
    for out in y.chunks_exact_mut(run) {
        let s = src as usize;
        out.copy_from_slice(&x[s..s + run]);
        let mut d = k;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            if idx[d] < y_dims[d] {
                src += moves[d];
                break;
            }
            src -= moves[d] * (idx[d] as isize - 1);
            idx[d] = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_forward_and_backward() {
        // x = [[0..4], [4..8], [8..12]]
        let x: [u8; 12] = core::array::from_fn(|i| i as u8);
        let mut y = [0u8; 4];
        // rows 2, 0 (step −2); columns 1, 3 (step 2)
        slice(&x, &[3, 4], &[2, 1], &[-2, 2], &mut y, &[2, 2]).unwrap();
        assert_eq!(y, [9, 11, 1, 3]);
        let mut y = [0u8; 3];
        slice(&x, &[3, 4], &[1, 3], &[1, -1], &mut y, &[1, 3]).unwrap();
        assert_eq!(y, [7, 6, 5]);
    }

    /// The run-copying path against an element-by-element reading of the
    /// definition, on generated slices (many with whole trailing axes and
    /// unit steps, which take it).
    #[test]
    fn runs_match_element_by_element() {
        let mut seed = 0x9e37_79b9_u32;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % n
        };
        for _ in 0..2000 {
            let r = 1 + rnd(4);
            let mut xd = [0usize; 4];
            let (mut st, mut sp, mut yd) = ([0usize; 4], [0isize; 4], [0usize; 4]);
            for d in 0..r {
                xd[d] = 1 + rnd(5);
                sp[d] = match rnd(4) {
                    0 => -1,
                    1 => 2,
                    _ => 1,
                };
                if sp[d] > 0 {
                    st[d] = if rnd(2) == 0 { 0 } else { rnd(xd[d]) };
                    yd[d] = 1 + rnd((xd[d] - st[d]).div_ceil(sp[d] as usize));
                } else {
                    st[d] = rnd(xd[d]);
                    yd[d] = 1 + rnd(st[d] + 1);
                }
            }
            let n: usize = xd[..r].iter().product();
            let x: [u16; 625] = core::array::from_fn(|i| i as u16);
            let x = &x[..n];
            let m: usize = yd[..r].iter().product();
            let mut y = [0u16; 625];
            let y = &mut y[..m];
            slice(x, &xd[..r], &st[..r], &sp[..r], y, &yd[..r]).unwrap();
            for (i, &v) in y.iter().enumerate() {
                let (mut rest, mut at, mut stride) = (i, 0isize, 1isize);
                let mut strides = [0isize; 4];
                for d in (0..r).rev() {
                    strides[d] = stride;
                    stride *= xd[d] as isize;
                }
                for d in (0..r).rev() {
                    let k = (rest % yd[d]) as isize;
                    rest /= yd[d];
                    at += (st[d] as isize + k * sp[d]) * strides[d];
                }
                assert_eq!(v, x[at as usize], "{xd:?} {st:?} {sp:?} {yd:?} element {i}");
            }
        }
    }

    #[test]
    fn refuses_reads_outside() {
        let x = [0u32; 6];
        let mut y = [0u32; 2];
        let e = slice(&x, &[2, 3], &[0, 2], &[1, 1], &mut y, &[1, 2]);
        assert!(e.is_err(), "column 3 of 3 is outside");
        let e = slice(&x, &[2, 3], &[0, 0], &[1, -1], &mut y, &[1, 2]);
        assert!(e.is_err(), "column −1 is outside");
        let e = slice(&x, &[2, 3], &[0, 0], &[1, 0], &mut y, &[1, 2]);
        assert!(e.is_err(), "a zero step is refused");
        assert!(slice(&x, &[2, 3], &[1, 2], &[1, -2], &mut y, &[1, 2]).is_ok());
    }
}
