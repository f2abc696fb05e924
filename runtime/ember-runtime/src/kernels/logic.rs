//! Small-tensor ops of attention-mask subgraphs, on any element type:
//! `Cast`, comparisons and boolean logic (`Equal`, `Greater…`, `And`, …),
//! `Where` and `Expand`, all with numpy broadcasting. Booleans are `U8`
//! 0/1. Elements are read through [`Elems`], which checks the dtype and
//! length once.

use super::broadcast::Broadcast;
use super::check_len;
use super::half::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use crate::error::{Error, Result};
use crate::format::DType;

/// A typed view of a tensor's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Elems<'a> {
    bytes: &'a [u8],
    dtype: DType,
}

impl<'a> Elems<'a> {
    /// Views `bytes` as `len` elements of `dtype`.
    pub fn new(bytes: &'a [u8], dtype: DType, len: usize) -> Result<Self> {
        check_len(bytes.len(), len.checked_mul(dtype.size()), "element count")?;
        Ok(Elems { bytes, dtype })
    }

    /// Element `i` as an f64 (exact for every dtype here).
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        let b = self.bytes;
        match self.dtype {
            DType::I8 => b[i] as i8 as f64,
            DType::U8 => b[i] as f64,
            DType::I16 => i16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as f64,
            DType::U16 => u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as f64,
            DType::F16 => f16_to_f32(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])) as f64,
            DType::BF16 => bf16_to_f32(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])) as f64,
            DType::I32 => {
                i32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]) as f64
            }
            DType::F32 => {
                f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]) as f64
            }
            // The 8-bit floats.
            d => d.f8().map_or(0.0, |f| f.to_f32(b[i]) as f64),
        }
    }
}

/// Writes `v` as element `i` of `y` (dtype `dtype`): floats round to the
/// nearest (16-bit ones through f32); integers truncate toward zero and
/// wrap to the narrower type like numpy's `astype` (NaN → 0; beyond the
/// int64 range, saturated first).
#[inline]
fn put(y: &mut [u8], dtype: DType, i: usize, v: f64, saturate: bool) {
    let w = v as i64;
    match dtype {
        DType::I8 => y[i] = w as u8,
        DType::U8 => y[i] = w as u8,
        DType::I16 => y[2 * i..2 * i + 2].copy_from_slice(&(w as i16).to_le_bytes()),
        DType::U16 => y[2 * i..2 * i + 2].copy_from_slice(&(w as u16).to_le_bytes()),
        DType::I32 => y[4 * i..4 * i + 4].copy_from_slice(&(w as i32).to_le_bytes()),
        DType::F32 => y[4 * i..4 * i + 4].copy_from_slice(&(v as f32).to_le_bytes()),
        DType::F16 => y[2 * i..2 * i + 2].copy_from_slice(&f32_to_f16(v as f32).to_le_bytes()),
        DType::BF16 => y[2 * i..2 * i + 2].copy_from_slice(&f32_to_bf16(v as f32).to_le_bytes()),
        d => {
            if let Some(f) = d.f8() {
                y[i] = f.from_f32(v as f32, saturate);
            }
        }
    }
}

/// `Cast`: each element converted to `y_dtype`; with `to_bool` the output
/// is 1 for every non-zero input and 0 otherwise. `saturate` governs
/// out-of-range values cast to an 8-bit float (see [`F8::from_f32`]).
///
/// [`F8::from_f32`]: super::half::F8::from_f32
pub fn cast(
    x: Elems<'_>,
    len: usize,
    y: &mut [u8],
    y_dtype: DType,
    to_bool: bool,
    saturate: bool,
) -> Result<()> {
    check_len(
        y.len(),
        len.checked_mul(y_dtype.size()),
        "cast: output length",
    )?;
    for i in 0..len {
        let v = x.get(i);
        put(
            y,
            y_dtype,
            i,
            if to_bool { (v != 0.0) as u8 as f64 } else { v },
            saturate,
        );
    }
    Ok(())
}

/// Comparison or boolean op of [`compare`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CompareOp {
    /// a == b
    Equal = 0,
    /// a > b
    Greater = 1,
    /// a ≥ b
    GreaterOrEqual = 2,
    /// a < b
    Less = 3,
    /// a ≤ b
    LessOrEqual = 4,
    /// a ∧ b (non-zero is true)
    And = 5,
    /// a ∨ b
    Or = 6,
    /// a ⊕ b
    Xor = 7,
}

impl CompareOp {
    /// Decodes the op's param.
    pub fn from_i32(v: i32) -> Option<CompareOp> {
        use CompareOp::*;
        Some(match v {
            0 => Equal,
            1 => Greater,
            2 => GreaterOrEqual,
            3 => Less,
            4 => LessOrEqual,
            5 => And,
            6 => Or,
            7 => Xor,
            _ => return None,
        })
    }
}

/// `y = a op b` (booleans, `U8`), numpy broadcasting to `y_dims`.
pub fn compare(
    op: CompareOp,
    a: Elems<'_>,
    a_dims: &[usize],
    b: Elems<'_>,
    b_dims: &[usize],
    y: &mut [u8],
    y_dims: &[usize],
) -> Result<()> {
    let bc = Broadcast::new(a_dims, b_dims, y_dims)?;
    let n = |d: &[usize]| d.iter().product::<usize>();
    bc.check(n(a_dims), n(b_dims), y.len())?;
    bc.for_each(|o, ia, ib| {
        let (u, v) = (a.get(ia), b.get(ib));
        let r = match op {
            CompareOp::Equal => u == v,
            CompareOp::Greater => u > v,
            CompareOp::GreaterOrEqual => u >= v,
            CompareOp::Less => u < v,
            CompareOp::LessOrEqual => u <= v,
            CompareOp::And => u != 0.0 && v != 0.0,
            CompareOp::Or => u != 0.0 || v != 0.0,
            CompareOp::Xor => (u != 0.0) != (v != 0.0),
        };
        y[o] = r as u8;
    });
    Ok(())
}

/// `y = cond ? a : b` element-wise with broadcasting; `a`, `b` and `y`
/// share one element size `elem`.
#[allow(clippy::too_many_arguments)]
pub fn where_select(
    cond: &[u8],
    c_dims: &[usize],
    a: &[u8],
    a_dims: &[usize],
    b: &[u8],
    b_dims: &[usize],
    elem: usize,
    y: &mut [u8],
    y_dims: &[usize],
) -> Result<()> {
    let n = |d: &[usize]| d.iter().product::<usize>();
    let (na, nb, ny) = (n(a_dims), n(b_dims), n(y_dims));
    check_len(a.len(), na.checked_mul(elem), "where: a length")?;
    check_len(b.len(), nb.checked_mul(elem), "where: b length")?;
    check_len(y.len(), ny.checked_mul(elem), "where: output length")?;
    let ab = Broadcast::into_shape(a_dims, b_dims, y_dims)?;
    let ca = Broadcast::into_shape(c_dims, a_dims, y_dims)?;
    ab.check(na, nb, ny)?;
    ca.check(cond.len(), na, ny)?;
    ab.for_each(|o, _, ib| {
        y[o * elem..(o + 1) * elem].copy_from_slice(&b[ib * elem..(ib + 1) * elem])
    });
    ca.for_each(|o, ic, ia| {
        if cond[ic] != 0 {
            y[o * elem..(o + 1) * elem].copy_from_slice(&a[ia * elem..(ia + 1) * elem]);
        }
    });
    Ok(())
}

/// `Expand`: `x` broadcast to `y_dims`, elements of `elem` bytes.
pub fn expand(
    x: &[u8],
    x_dims: &[usize],
    elem: usize,
    y: &mut [u8],
    y_dims: &[usize],
) -> Result<()> {
    if elem == 0 {
        return Err(Error::ShapeMismatch("expand: element size 0"));
    }
    let n = |d: &[usize]| d.iter().product::<usize>();
    let bc = Broadcast::new(x_dims, y_dims, y_dims)?;
    bc.check(x.len() / elem, n(y_dims), y.len() / elem)?;
    check_len(x.len() % elem, Some(0), "expand: input length")?;
    check_len(y.len() % elem, Some(0), "expand: output length")?;
    bc.for_each(|o, ix, _| {
        y[o * elem..(o + 1) * elem].copy_from_slice(&x[ix * elem..(ix + 1) * elem])
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_building_blocks() {
        let m: [u8; 12] = bytemuck::cast([1i32, 1, 0]);
        let mi = Elems::new(&m, DType::I32, 3).unwrap();
        let mut b = [0u8; 3];
        cast(mi, 3, &mut b, DType::U8, true, true).unwrap();
        assert_eq!(b, [1, 1, 0]);
        let mut f = [0u8; 12];
        cast(mi, 3, &mut f, DType::F32, false, true).unwrap();
        assert_eq!(bytemuck::cast::<_, [f32; 3]>(f), [1.0, 1.0, 0.0]);
        // [1,3] ≥ [2,1] → [2,3]
        let th: [u8; 8] = bytemuck::cast([1i32, 0]);
        let mut y = [0u8; 6];
        compare(
            CompareOp::GreaterOrEqual,
            mi,
            &[1, 3],
            Elems::new(&th, DType::I32, 2).unwrap(),
            &[2, 1],
            &mut y,
            &[2, 3],
        )
        .unwrap();
        assert_eq!(y, [1, 1, 0, 1, 1, 1]);
        // where(b, 0.0, -inf) over [2, 3]
        let zero = 0f32.to_le_bytes();
        let ninf = f32::MIN.to_le_bytes();
        let mut w = [0u8; 24];
        where_select(&b, &[3], &zero, &[], &ninf, &[1], 4, &mut w, &[2, 3]).unwrap();
        let w: [f32; 6] = bytemuck::cast(w);
        assert_eq!(w, [0.0, 0.0, f32::MIN, 0.0, 0.0, f32::MIN]);
        let mut e = [0u8; 6];
        expand(&b, &[1, 3], 1, &mut e, &[2, 3]).unwrap();
        assert_eq!(e, [1, 1, 0, 1, 1, 0]);
        assert!(expand(&b, &[3], 1, &mut e, &[2, 2]).is_err());
        assert!(Elems::new(&m, DType::I32, 4).is_err());
    }
}
