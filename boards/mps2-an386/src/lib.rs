//! Arm MPS2 AN386 — Cortex-M4 with FPU and the DSP extension — as modelled
//! by `qemu-system-arm -M mps2-an386`.
//!
//! - Memory: code and the model in the 4 MiB SSRAM1 at `0x0000_0000`; data,
//!   the arena and the stack in the 4 MiB SSRAM2/3 at `0x2000_0000`.
//! - Clock: SysTick on the 25 MHz core clock. Under `-icount shift=0` one tick
//!   is 40 instructions.
//! - Console and exit: semihosting (`-semihosting-config enable=on`).
//!
//! Build for `thumbv7em-none-eabihf` with `-C target-cpu=cortex-m4`.
#![no_std]
#![deny(missing_docs)]

pub use ember_board;
pub use ember_board::cortex_m_entry as entry;

/// Core clock (the frequency SysTick counts at).
pub const CORE_HZ: u64 = 25_000_000;

/// The board: clock and exit.
pub struct Board {
    _private: (),
}

impl Board {
    /// Brings the board up (SysTick running). Call once, from `main`.
    pub fn init() -> Self {
        // `take` yields the peripherals once; `init` is called once at start-up,
        // and a second call gets a board without restarting the clock.
        if let Some(p) = cortex_m::Peripherals::take() {
            ember_board::systick::start(p.SYST);
        }
        Board { _private: () }
    }
}

impl ember_board::Board for Board {
    const NAME: &'static str = "mps2-an386";
    const TICK_UNIT: &'static str = "instructions";

    fn now(&self) -> u64 {
        ember_board::systick::now()
    }

    fn ticks_per_second(&self) -> u64 {
        CORE_HZ
    }

    fn exit(&mut self, code: i32) -> ! {
        ember_board::semihosting::exit(code)
    }
}

#[cortex_m_rt::exception]
fn SysTick() {
    ember_board::systick::on_wrap();
}

#[cortex_m_rt::exception]
unsafe fn HardFault(_frame: &cortex_m_rt::ExceptionFrame) -> ! {
    ember_board::semihosting::exit(103)
}
