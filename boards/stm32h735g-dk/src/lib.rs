//! ST STM32H735G-DK discovery kit: STM32H735IG, Cortex-M7 with double
//! precision FPU, 1 MiB flash, 564 KiB RAM. Flashed and run with probe-rs
//! (chip `STM32H735IGKx`); defmt over RTT.
//!
//! - Memory: code and the model in internal flash at `0x0800_0000`; data, the
//!   arena and the stack in the 128 KiB DTCM at `0x2000_0000` (single-cycle).
//! - Clocks (stm32h7xx-hal): core at 400 MHz from the SMPS-supplied domain;
//!   instruction and data caches on.
//! - Counter: DWT `CYCCNT` (core cycles).
//!
//! Build for `thumbv7em-none-eabihf` with `-C target-cpu=cortex-m7`.
#![no_std]
#![deny(missing_docs)]

pub use ember_board;
pub use ember_board::cortex_m_entry as entry;
use ember_board::cycles::CycleCounter;
use stm32h7xx_hal::{pac, prelude::*};
use {defmt_rtt as _, panic_probe as _};

/// Board name.
pub const NAME: &str = "stm32h735g-dk";

/// The board: clock and exit.
pub struct Board {
    cycles: CycleCounter,
    hz: u64,
}

impl Board {
    /// Brings the board up: power, 400 MHz core clock, caches, cycle counter.
    /// Call once, from `main`.
    pub fn init() -> Self {
        let (Some(mut cp), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take())
        else {
            defmt::panic!("Board::init called twice");
        };
        cp.SCB.enable_icache();
        cp.SCB.enable_dcache(&mut cp.CPUID);
        let pwrcfg = dp.PWR.constrain().smps().freeze();
        let ccdr = dp
            .RCC
            .constrain()
            .sys_ck(400.MHz())
            .freeze(pwrcfg, &dp.SYSCFG);
        let hz = u64::from(ccdr.clocks.sys_ck().raw());
        let cycles = CycleCounter::start(&mut cp.DCB, &mut cp.DWT);
        Board { cycles, hz }
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
