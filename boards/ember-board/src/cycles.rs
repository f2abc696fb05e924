//! A 64-bit CPU cycle counter from the DWT's 32-bit `CYCCNT` (Cortex-M3 and
//! up on real silicon; QEMU does not model it). Wrap-arounds are folded in
//! whenever the counter is read, so it must be read at least once per 2³²
//! cycles (seconds, at the clock rates of these parts).

use core::cell::Cell;

use cortex_m::peripheral::{DCB, DWT};

/// Cycle counter state.
pub struct CycleCounter {
    last: Cell<u32>,
    high: Cell<u64>,
}

impl CycleCounter {
    /// Enables tracing and the cycle counter and starts counting from 0.
    pub fn start(dcb: &mut DCB, dwt: &mut DWT) -> Self {
        dcb.enable_trace();
        // Cortex-M7 locks the DWT registers until the lock access register is
        // written; elsewhere this is a harmless write.
        DWT::unlock();
        dwt.set_cycle_count(0);
        dwt.enable_cycle_counter();
        CycleCounter {
            last: Cell::new(0),
            high: Cell::new(0),
        }
    }

    /// Cycles since [`CycleCounter::start`].
    pub fn now(&self) -> u64 {
        let c = DWT::cycle_count();
        if c < self.last.get() {
            self.high.set(self.high.get() + (1 << 32));
        }
        self.last.set(c);
        self.high.get() | u64::from(c)
    }
}
