//! Raspberry Pi Pico 2: RP2350, two Cortex-M33 cores (core 0 used) at
//! 150 MHz, 4 MiB QSPI flash, 520 KiB SRAM. Flashed and run with probe-rs
//! (chip `RP235x`, through a Debug Probe on the SWD header); defmt over RTT.
//!
//! - Memory: code and the model executed in place from flash at
//!   `0x1000_0000`, with the image definition block the boot ROM requires in
//!   the first 4 KiB; data, the arena and the stack in SRAM at `0x2000_0000`.
//! - Clocks (rp235x-hal): 12 MHz crystal, system PLL at 150 MHz.
//! - Counter: DWT `CYCCNT` (core cycles).
//!
//! Build for `thumbv8m.main-none-eabihf` with `-C target-cpu=cortex-m33`.
#![no_std]
#![deny(missing_docs)]

pub use ember_board;
pub use ember_board::cortex_m_entry as entry;
use ember_board::cycles::CycleCounter;
use rp235x_hal as hal;
use {defmt_rtt as _, panic_probe as _};

/// Board name.
pub const NAME: &str = "pico2";

/// The Pico 2's crystal.
const XOSC_HZ: u32 = 12_000_000;

/// Tells the RP2350 boot ROM this is a secure Arm executable.
#[link_section = ".start_block"]
#[used]
pub static IMAGE_DEF: hal::block::ImageDef = hal::block::ImageDef::secure_exe();

/// The board: clock and exit.
pub struct Board {
    cycles: CycleCounter,
    hz: u64,
}

impl Board {
    /// Brings the board up: crystal, PLLs, 150 MHz system clock, cycle
    /// counter. Call once, from `main`.
    pub fn init() -> Self {
        let (Some(mut cp), Some(mut dp)) =
            (cortex_m::Peripherals::take(), hal::pac::Peripherals::take())
        else {
            defmt::panic!("Board::init called twice");
        };
        let mut watchdog = hal::Watchdog::new(dp.WATCHDOG);
        let Ok(clocks) = hal::clocks::init_clocks_and_plls(
            XOSC_HZ,
            dp.XOSC,
            dp.CLOCKS,
            dp.PLL_SYS,
            dp.PLL_USB,
            &mut dp.RESETS,
            &mut watchdog,
        ) else {
            defmt::panic!("clock initialisation failed");
        };
        use hal::Clock as _;
        let hz = u64::from(clocks.system_clock.freq().to_Hz());
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
