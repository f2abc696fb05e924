//! What every Ember board crate provides, so that the inference apps in
//! `boards/app` are board-independent:
//!
//! - [`Board`]: a monotonic tick counter (instruction-exact under QEMU's
//!   `-icount shift=0`, CPU cycles on real silicon) and an exit path;
//! - [`StaticArena`]: the tensor arena as a `static` whose size comes from the
//!   model at build time, handed out once as `&'static mut [u8]`;
//! - [`io`]: the microphone and camera interfaces, on `embedded-hal` 1.0;
//! - [`stack`]: the stack high-water mark;
//! - on Cortex-M, the [`systick`] and [`cycles`] (DWT) tick counters;
//! - with the `semihosting` feature, console output and exit status over Arm
//!   semihosting, and with `semihosting-log` a defmt logger and panic report
//!   over it (QEMU boards; real boards use defmt-rtt and panic-probe).
#![no_std]
#![deny(missing_docs)]

mod arena;
#[cfg(target_arch = "arm")]
pub mod cycles;
pub mod io;
#[cfg(feature = "semihosting-log")]
mod logger;
#[cfg(feature = "semihosting")]
pub mod semihosting;
pub mod stack;
#[cfg(target_arch = "arm")]
pub mod systick;

pub use arena::StaticArena;

#[cfg(target_arch = "arm")]
#[doc(hidden)]
pub use cortex_m_rt as __rt;

/// Declares a Cortex-M firmware's entry function (`fn() -> !`) through
/// cortex-m-rt. Each Cortex-M board crate re-exports it as `entry!`, so the
/// apps write `board::entry!(start)` whatever the board.
#[cfg(target_arch = "arm")]
#[macro_export]
macro_rules! cortex_m_entry {
    ($f:path) => {
        #[$crate::__rt::entry]
        fn __ember_entry() -> ! {
            $f()
        }
    };
}

/// What the inference apps need from a board.
pub trait Board {
    /// Board name as `cargo xtask` spells it (`mps3-an547`, …).
    const NAME: &'static str;
    /// What one tick of [`Board::now`] is: `"instructions"` on QEMU boards run
    /// under `-icount shift=0` once scaled by [`Board::ticks_per_second`]
    /// (QEMU's clock then advances one nanosecond per instruction), `"cycles"`
    /// on real silicon.
    const TICK_UNIT: &'static str;

    /// Monotonic 64-bit tick counter.
    fn now(&self) -> u64;

    /// Frequency of [`Board::now`] in Hz.
    fn ticks_per_second(&self) -> u64;

    /// Ends the program with `code` (0 = success). On simulated boards this
    /// makes QEMU exit with that status; on real boards it stops the core
    /// where the debugger (probe-rs) sees it.
    fn exit(&mut self, code: i32) -> !;
}

/// Prints a defmt frame that `cargo xtask run` recognises as the end of the
/// firmware's report, then exits.
pub fn finish<B: Board>(board: &mut B, code: i32) -> ! {
    defmt::println!("ember-exit {=i32}", code);
    board.exit(code)
}
