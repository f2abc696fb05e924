//! Concatenation along one axis.

use crate::error::{Error, Result};

/// Concatenates `inputs` (dims `input_dims`) along `axis` into `y`.
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
    let outer: usize = y_dims[..axis].iter().product();
    let inner: usize = y_dims[axis + 1..].iter().product();
    let mut total = 0;
    for (x, d) in inputs.iter().zip(input_dims) {
        if d.len() != r
            || (0..r).any(|i| i != axis && d[i] != y_dims[i])
            || x.len() != outer * d[axis] * inner
        {
            return Err(Error::ShapeMismatch("concat: input shape"));
        }
        total += d[axis];
    }
    if total != y_dims[axis] || y.len() != outer * total * inner {
        return Err(Error::ShapeMismatch("concat: output shape"));
    }
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
}
