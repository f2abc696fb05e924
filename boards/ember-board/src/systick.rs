//! A 64-bit tick counter from the Cortex-M SysTick timer (24 bits, extended
//! by counting wrap-arounds in its exception).
//!
//! QEMU does not model the DWT cycle counter; SysTick clocked from the core
//! clock, run under `-icount shift=0`, advances once every `1e9 / f_core`
//! instructions, which makes its readings deterministic instruction counts.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

const RELOAD: u32 = 0x00FF_FFFF;

static WRAPS: AtomicU32 = AtomicU32::new(0);

/// Starts SysTick on the core clock with its wrap interrupt enabled. The
/// board's `SysTick` exception handler must call [`on_wrap`].
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Call from the `SysTick` exception handler.
pub fn on_wrap() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Ticks since [`start`].
pub fn now() -> u64 {
    loop {
        let before = WRAPS.load(Ordering::Relaxed);
        let cur = SYST::get_current();
        let after = WRAPS.load(Ordering::Relaxed);
        if before == after {
            return ((after as u64) << 24) | u64::from(RELOAD - cur);
        }
    }
}
