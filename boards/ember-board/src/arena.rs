//! The tensor arena as a `static`.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// A 16-byte aligned, zero-initialised buffer of `N` bytes in `.bss`, handed
/// out at most once as `&'static mut [u8]`.
///
/// ```text
/// static ARENA: StaticArena<{ model::ARENA_BYTES }> = StaticArena::new();
/// let arena: &'static mut [u8] = ARENA.take().unwrap();
/// ```
pub struct StaticArena<const N: usize> {
    taken: AtomicBool,
    buf: UnsafeCell<Aligned<N>>,
}

#[repr(C, align(16))]
struct Aligned<const N: usize>([u8; N]);

// SAFETY: the only access to `buf` is through `take`, which hands out a single
// `&mut` for the whole program (guarded by the atomic flag), so sharing the
// cell between contexts cannot create aliasing references.
unsafe impl<const N: usize> Sync for StaticArena<N> {}

impl<const N: usize> StaticArena<N> {
    /// A zeroed arena (placed in `.bss` when used as a `static`).
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        StaticArena {
            taken: AtomicBool::new(false),
            buf: UnsafeCell::new(Aligned([0; N])),
        }
    }

    /// The buffer, the first time this is called; `None` afterwards.
    // `&mut` out of `&self` is the point of this type: the atomic flag makes
    // the returned reference unique, as in `static_cell`.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut [u8]> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: `taken` was false, so no reference to `buf` exists and none
        // will ever be created again; the buffer lives for the whole program.
        Some(unsafe { &mut (*self.buf.get()).0 })
    }
}
