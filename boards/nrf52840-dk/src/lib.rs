//! Nordic nRF52840-DK: nRF52840, Cortex-M4F at 64 MHz, 1 MiB flash, 256 KiB
//! RAM. Flashed and run with probe-rs (chip `nRF52840_xxAA`, on-board
//! J-Link); defmt over RTT.
//!
//! - Memory: code and the model in flash at `0x0000_0000`; data, the arena
//!   and the stack in RAM at `0x2000_0000`.
//! - Clocks (nrf52840-hal): the 64 MHz crystal oscillator.
//! - Counter: DWT `CYCCNT` (core cycles).
//!
//! Build for `thumbv7em-none-eabihf` with `-C target-cpu=cortex-m4`.
#![no_std]
#![deny(missing_docs)]

pub use ember_board;
pub use ember_board::cortex_m_entry as entry;
use ember_board::cycles::CycleCounter;
use nrf52840_hal::{clocks::Clocks, pac};
use {defmt_rtt as _, panic_probe as _};

/// Board name.
pub const NAME: &str = "nrf52840-dk";

/// Core clock.
pub const CORE_HZ: u64 = 64_000_000;

/// The board: clock and exit.
pub struct Board {
    cycles: CycleCounter,
    hz: u64,
}

impl Board {
    /// Brings the board up: crystal oscillator, cycle counter. Call once,
    /// from `main`.
    pub fn init() -> Self {
        let (Some(mut cp), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take())
        else {
            defmt::panic!("Board::init called twice");
        };
        // The clock configuration lives in the CLOCK peripheral; the returned
        // handle is only needed to change it again.
        let _clocks = Clocks::new(dp.CLOCK).enable_ext_hfosc();
        let cycles = CycleCounter::start(&mut cp.DCB, &mut cp.DWT);
        Board {
            cycles,
            hz: CORE_HZ,
        }
    }
}

impl ember_board::Board for Board {
    const NAME: &'static str = NAME;
    const TICK_UNIT: &'static str = "cycles";

    fn now(&self) -> u64 {
        self.cycles.now()
    }

    fn ticks_per_second(&self) -> u64 {
        self.hz
    }

    fn exit(&mut self, code: i32) -> ! {
        // `cargo xtask flash` stops reading at the `ember-exit` line that
        // `ember_board::finish` printed; the core then idles.
        let _ = code;
        loop {
            cortex_m::asm::wfi();
        }
    }
}
