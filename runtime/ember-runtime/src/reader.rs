//! Bounds-checked little-endian reads from the blob. Every accessor returns
//! `None` instead of reading out of range, so malformed blobs can never
//! cause an out-of-bounds access.

/// Reads a `u16` at `off`.
#[inline]
pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Reads a `u32` at `off`.
#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads an `i32` at `off`.
#[inline]
pub(crate) fn i32_at(b: &[u8], off: usize) -> Option<i32> {
    u32_at(b, off).map(|v| v as i32)
}

/// Reads an `f32` at `off`.
#[inline]
pub(crate) fn f32_at(b: &[u8], off: usize) -> Option<f32> {
    u32_at(b, off).map(f32::from_bits)
}

/// `start..start+len` as a checked range within `total`.
#[inline]
pub(crate) fn range(start: usize, len: usize, total: usize) -> Option<core::ops::Range<usize>> {
    let end = start.checked_add(len)?;
    if end <= total {
        Some(start..end)
    } else {
        None
    }
}
