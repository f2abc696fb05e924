//! Concatenation along one axis.

use crate::error::{Error, Result};

fn product(d: &[usize]) -> Option<usize> {
    d.iter().try_fold(1usize, |a, &v| a.checked_mul(v))
}

/// Concatenates `inputs` (dims `input_dims`, all of `y_dims`' rank and equal
/// to `y_dims` except along `axis`) along `axis` into `y`.
pub fn concat<T: Copy>(
    inputs: &[&[T]],
    input_dims: &[&[usize]],
    axis: usize,
    y: &mut [T],
    y_dims: &[usize],
) -> Result<()> {
    let r = y_dims.len();
    if inputs.len() != input_dims.len() || axis >= r || inputs.is_empty() {
        return Err(Error::ShapeMismatch("concat: inputs"));
    }
    let bad_input = Error::ShapeMismatch("concat: input shape");
    let outer = product(&y_dims[..axis]).ok_or(bad_input)?;
    let inner = product(&y_dims[axis + 1..]).ok_or(bad_input)?;
    let mut total = 0usize;
    for (x, d) in inputs.iter().zip(input_dims) {
        if d.len() != r || (0..r).any(|i| i != axis && d[i] != y_dims[i]) {
            return Err(bad_input);
        }
        if Some(x.len())
            != outer
                .checked_mul(d[axis])
                .and_then(|v| v.checked_mul(inner))
        {
            return Err(bad_input);
        }
        total = total.checked_add(d[axis]).ok_or(bad_input)?;
    }
    if total != y_dims[axis] || Some(y.len()) != product(y_dims) {
        return Err(Error::ShapeMismatch("concat: output shape"));
    }
    // For each outer index, the inputs' blocks of `d[axis]·inner` elements
    // follow each other in the output.
    let mut dst = 0;
    for o in 0..outer {
        for (x, d) in inputs.iter().zip(input_dims) {
            let n = d[axis] * inner;
            y[dst..dst + n].copy_from_slice(&x[o * n..(o + 1) * n]);
            dst += n;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_axis1() {
        let mut y = [0f32; 10];
        concat(
            &[&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0, 9.0, 10.0]],
            &[&[2, 2], &[2, 3]],
            1,
            &mut y,
            &[2, 5],
        )
        .unwrap();
        assert_eq!(y, [1.0, 2.0, 5.0, 6.0, 7.0, 3.0, 4.0, 8.0, 9.0, 10.0]);
    }

    #[test]
    fn concat_axis0_last_axis_and_empty_input() {
        let mut y = [0i8; 6];
        concat(
            &[&[1, 2], &[3, 4, 5, 6]],
            &[&[1, 2], &[2, 2]],
            0,
            &mut y,
            &[3, 2],
        )
        .unwrap();
        assert_eq!(y, [1, 2, 3, 4, 5, 6]);
        // NHWC channel concat with a zero-channel input.
        let mut y = [0i8; 6];
        concat(
            &[&[1, 2], &[], &[10, 20, 30, 40]],
            &[&[1, 1, 2, 1], &[1, 1, 2, 0], &[1, 1, 2, 2]],
            3,
            &mut y,
            &[1, 1, 2, 3],
        )
        .unwrap();
        assert_eq!(y, [1, 10, 20, 2, 30, 40]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let mut y = [0i8; 6];
        let a: &[i8] = &[1, 2, 3];
        assert!(concat(&[a, a], &[&[1, 3], &[1, 3]], 0, &mut y[..5], &[2, 3]).is_err());
        assert!(concat(&[a, a], &[&[1, 3], &[1, 3]], 2, &mut y, &[2, 3]).is_err());
        assert!(concat(&[a, a], &[&[1, 3], &[1, 2]], 0, &mut y, &[2, 3]).is_err());
        assert!(concat(&[a, a], &[&[1, 3]], 0, &mut y, &[2, 3]).is_err());
        assert!(concat(&[a, &a[..2]], &[&[1, 3], &[1, 3]], 0, &mut y, &[2, 3]).is_err());
        assert!(concat::<i8>(&[], &[], 0, &mut y, &[6]).is_err());
        assert!(concat(&[a], &[&[usize::MAX, 3]], 0, &mut y, &[usize::MAX, 3]).is_err());
    }
}
