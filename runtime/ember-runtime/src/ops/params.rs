//! Typed op parameters and their encoding as 32-bit words in the blob's
//! parameter pool.
//!
//! Every operator module declares one `Params` type implementing [`Params`]:
//! the compiler builds it and calls [`Params::encode`]; the runtime calls
//! [`Params::decode`] on the op's words, which refuses a wrong word count
//! or a value outside its field's range, and then validates it against
//! the op's tensors. The word layout of each type is documented on it.

use crate::format::MAX_RANK;
use crate::kernels::Window;

/// A parameter block: what one op stores in the parameter pool.
pub trait Params: Sized {
    /// Appends the words of `self` to `out`.
    fn encode(&self, out: &mut impl Extend<i32>);

    /// Reads `Self` from `r`; the caller checks that every word was read.
    fn decode(r: &mut ParamReader<'_>) -> Result<Self, &'static str>;

    /// Reads `Self` from exactly the words `words` (the compiler's view of
    /// an op it built).
    fn from_words(words: &[i32]) -> Result<Self, &'static str> {
        // The blob's words are little-endian: so are the words in memory on
        // the little-endian hosts the compiler runs on.
        if cfg!(target_endian = "big") {
            return Err("decoding in-memory params needs a little-endian host");
        }
        let mut r = ParamReader::le_bytes(bytemuck::cast_slice(words));
        let p = Self::decode(&mut r)?;
        r.finish()?;
        Ok(p)
    }
}

/// The empty parameter block of ops that take none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoParams;

impl Params for NoParams {
    fn encode(&self, _out: &mut impl Extend<i32>) {}

    fn decode(_r: &mut ParamReader<'_>) -> Result<Self, &'static str> {
        Ok(NoParams)
    }
}

/// Reads parameter words in order, checking each against its field.
#[derive(Clone, Copy, Debug)]
pub struct ParamReader<'a> {
    /// The block's little-endian words.
    bytes: &'a [u8],
    next: usize,
}

impl<'a> ParamReader<'a> {
    /// A reader over little-endian words (a blob's parameter pool slice).
    pub fn le_bytes(bytes: &'a [u8]) -> Self {
        ParamReader { bytes, next: 0 }
    }

    /// Number of words in the block.
    pub fn len(&self) -> usize {
        self.bytes.len() / 4
    }

    /// Whether the block has no words.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Skips `n` words (`Err` past the end).
    pub fn skip(&mut self, n: usize) -> Result<(), &'static str> {
        if n > self.remaining() {
            return Err("wrong number of params");
        }
        self.next += n;
        Ok(())
    }

    /// Words not read yet.
    pub fn remaining(&self) -> usize {
        self.len().saturating_sub(self.next)
    }

    /// The next `N` words (one bounds check for all of them).
    pub fn array<const N: usize>(&mut self) -> Result<[i32; N], &'static str> {
        let start = self.next.checked_mul(4).ok_or("wrong number of params")?;
        let b = self
            .bytes
            .get(start..start + 4 * N)
            .ok_or("wrong number of params")?;
        self.next += N;
        let mut out = [0i32; N];
        for (o, w) in out.iter_mut().zip(b.chunks_exact(4)) {
            *o = i32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
        Ok(out)
    }

    /// The next `N` words as counts or indices (refused when negative).
    pub fn usizes<const N: usize>(&mut self) -> Result<[usize; N], &'static str> {
        let w = self.array::<N>()?;
        if w.iter().any(|&v| v < 0) {
            return Err("negative param");
        }
        Ok(w.map(|v| v as usize))
    }

    /// The next word.
    pub fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(self.array::<1>()?[0])
    }

    /// The next word as a count or index (refused when negative).
    pub fn usize(&mut self) -> Result<usize, &'static str> {
        Ok(self.usizes::<1>()?[0])
    }

    /// The next word as an `f32` bit pattern.
    pub fn f32(&mut self) -> Result<f32, &'static str> {
        Ok(f32::from_bits(self.i32()? as u32))
    }

    /// The next word as a flag (0 or 1).
    pub fn bool(&mut self) -> Result<bool, &'static str> {
        match self.i32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("flag param must be 0 or 1"),
        }
    }

    /// `Ok` when every word was read.
    pub fn finish(&self) -> Result<(), &'static str> {
        if self.next == self.len() {
            Ok(())
        } else {
            Err("wrong number of params")
        }
    }
}

/// An activation clamp `[lo, hi]` fused into an op: quantized integers for
/// int8 ops, `f32` bit patterns for float ops (two words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Lower bound word.
    pub lo: i32,
    /// Upper bound word.
    pub hi: i32,
}

impl Bounds {
    /// Integer bounds (int8 ops).
    pub const fn int(lo: i32, hi: i32) -> Bounds {
        Bounds { lo, hi }
    }

    /// Float bounds (f32 ops).
    pub fn float(lo: f32, hi: f32) -> Bounds {
        Bounds {
            lo: lo.to_bits() as i32,
            hi: hi.to_bits() as i32,
        }
    }

    /// No clamp for a float op.
    pub fn float_none() -> Bounds {
        Bounds::float(f32::NEG_INFINITY, f32::INFINITY)
    }

    /// The bounds as `f32`.
    pub fn as_f32(self) -> (f32, f32) {
        (
            f32::from_bits(self.lo as u32),
            f32::from_bits(self.hi as u32),
        )
    }

    /// Both words inside int8 and ordered.
    pub fn valid_i8(self) -> bool {
        (-128..=127).contains(&self.lo) && (-128..=127).contains(&self.hi) && self.lo <= self.hi
    }

    /// Neither bound NaN, and ordered.
    pub fn valid_f32(self) -> bool {
        let (lo, hi) = self.as_f32();
        !lo.is_nan() && !hi.is_nan() && lo <= hi
    }

    pub(crate) fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.lo, self.hi]);
    }

    pub(crate) fn decode(r: &mut ParamReader<'_>) -> Result<Self, &'static str> {
        let [lo, hi] = r.array()?;
        Ok(Bounds { lo, hi })
    }
}

/// A window's words: strides, then dilations when `dilated`, then the
/// paddings (top, left, bottom, right).
pub(crate) fn encode_window(w: &Window, dilated: bool, out: &mut impl Extend<i32>) {
    out.extend([w.stride_h as i32, w.stride_w as i32]);
    if dilated {
        out.extend([w.dil_h as i32, w.dil_w as i32]);
    }
    out.extend([
        w.pad_top as i32,
        w.pad_left as i32,
        w.pad_bottom as i32,
        w.pad_right as i32,
    ]);
}

/// Reads what [`encode_window`] wrote (dilations 1 when not `dilated`).
pub(crate) fn decode_window(
    r: &mut ParamReader<'_>,
    dilated: bool,
) -> Result<Window, &'static str> {
    let [stride_h, stride_w] = r.usizes()?;
    let [dil_h, dil_w] = if dilated { r.usizes()? } else { [1, 1] };
    let [pad_top, pad_left, pad_bottom, pad_right] = r.usizes()?;
    Ok(Window {
        stride_h,
        stride_w,
        dil_h,
        dil_w,
        pad_top,
        pad_left,
        pad_bottom,
        pad_right,
    })
}

/// Up to [`MAX_RANK`] values, one per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PerAxis {
    /// Number of axes.
    pub rank: usize,
    /// The values; entries past `rank` are 0.
    pub v: [usize; MAX_RANK],
}

impl PerAxis {
    /// From a slice of at most [`MAX_RANK`] values (longer slices are cut;
    /// the compiler never builds one).
    pub fn new(v: &[usize]) -> PerAxis {
        let mut p = PerAxis {
            rank: v.len().min(MAX_RANK),
            v: [0; MAX_RANK],
        };
        p.v[..p.rank].copy_from_slice(&v[..p.rank]);
        p
    }

    /// The values.
    pub fn as_slice(&self) -> &[usize] {
        &self.v[..self.rank]
    }

    pub(crate) fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend(self.as_slice().iter().map(|&d| d as i32));
    }

    pub(crate) fn decode(r: &mut ParamReader<'_>, rank: usize) -> Result<Self, &'static str> {
        if rank > MAX_RANK {
            return Err("rank above the maximum");
        }
        let mut p = PerAxis {
            rank,
            v: [0; MAX_RANK],
        };
        for d in &mut p.v[..rank] {
            *d = r.usize()?;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn reader_checks_counts_and_signs() {
        let mut r = ParamReader::le_bytes(bytemuck::cast_slice(&[3i32, -1]));
        assert_eq!(r.usize(), Ok(3));
        assert_eq!(r.usize(), Err("negative param"));
        assert_eq!(r.i32(), Err("wrong number of params"));
        let bytes = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        let mut r = ParamReader::le_bytes(&bytes);
        assert_eq!((r.i32(), r.i32()), (Ok(1), Ok(-1)));
        assert_eq!(r.finish(), Ok(()));
        let mut r = ParamReader::le_bytes(&[2, 0, 0, 0]);
        assert_eq!(r.bool(), Err("flag param must be 0 or 1"));
    }

    #[test]
    fn bounds_and_windows_round_trip() {
        let b = Bounds::float(-1.5, 6.0);
        assert_eq!(b.as_f32(), (-1.5, 6.0));
        assert!(b.valid_f32() && !Bounds::int(5, 4).valid_i8());
        let w = Window {
            stride_h: 2,
            stride_w: 1,
            dil_h: 3,
            dil_w: 1,
            pad_top: 1,
            pad_left: 0,
            pad_bottom: 2,
            pad_right: 1,
        };
        for dilated in [false, true] {
            let mut v = std::vec::Vec::new();
            encode_window(&w, dilated, &mut v);
            let mut r = ParamReader::le_bytes(bytemuck::cast_slice(&v));
            let d = decode_window(&mut r, dilated).unwrap();
            assert_eq!(r.finish(), Ok(()));
            assert_eq!((d.stride_h, d.pad_bottom), (2, 2));
            assert_eq!(d.dil_h, if dilated { 3 } else { 1 });
        }
    }
}
