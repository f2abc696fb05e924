//! The boards `cargo xtask` knows: how to build for each and how to run on it.

use anyhow::{bail, Result};

/// How firmware gets onto a board.
#[derive(Clone, Copy, Debug)]
pub enum Runner {
    /// A QEMU system emulator, run under `-icount shift=0`.
    Qemu {
        /// Emulator binary.
        binary: &'static str,
        /// `-M` machine.
        machine: &'static str,
        /// `-cpu` model.
        cpu: &'static str,
        /// Extra arguments.
        extra: &'static [&'static str],
    },
    /// A real board flashed and run through a debug probe.
    Probe {
        /// probe-rs chip name.
        chip: &'static str,
    },
}

/// A board crate under `boards/` and what building for it takes.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    /// Name (the board crate and the app feature).
    pub name: &'static str,
    /// One-line description.
    pub about: &'static str,
    /// Rust target triple.
    pub target: &'static str,
    /// `-C target-cpu`.
    pub cpu: &'static str,
    /// `-C target-feature` beyond the CPU's, or empty.
    pub features: &'static str,
    /// The `ember compile --target` this board's kernels want.
    pub compile_target: &'static str,
    /// How to run firmware on it.
    pub runner: Runner,
}

impl Board {
    /// The `RUSTFLAGS` firmware for this board builds with.
    pub fn rustflags(&self) -> String {
        match self.features {
            "" => format!("-C target-cpu={}", self.cpu),
            f => format!("-C target-cpu={} -C target-feature={f}", self.cpu),
        }
    }
}

/// Every board.
pub const BOARDS: &[Board] = &[
    Board {
        name: "mps3-an547",
        about: "Arm MPS3 AN547, Cortex-M55 + Helium (QEMU)",
        target: "thumbv8m.main-none-eabihf",
        cpu: "cortex-m55",
        features: "",
        compile_target: "cortex-m55",
        runner: Runner::Qemu {
            binary: "qemu-system-arm",
            machine: "mps3-an547",
            cpu: "cortex-m55",
            extra: &[],
        },
    },
    Board {
        name: "mps2-an386",
        about: "Arm MPS2 AN386, Cortex-M4F (QEMU)",
        target: "thumbv7em-none-eabihf",
        cpu: "cortex-m4",
        features: "",
        compile_target: "cortex-m4",
        runner: Runner::Qemu {
            binary: "qemu-system-arm",
            machine: "mps2-an386",
            cpu: "cortex-m4",
            extra: &[],
        },
    },
    Board {
        name: "virt-a53",
        about: "bare-metal Cortex-A53 on QEMU virt",
        target: "aarch64-unknown-none",
        cpu: "cortex-a53",
        // `aarch64-unknown-none` assumes alignment faults, so LLVM splits
        // every unaligned vector load and store into bytes; the board's
        // startup maps RAM as normal memory with alignment checks off
        // (SCTLR_EL1.A = 0), where unaligned `LDR q`/`STR q` are legal.
        features: "-strict-align",
        compile_target: "cortex-a53",
        runner: Runner::Qemu {
            binary: "qemu-system-aarch64",
            machine: "virt",
            cpu: "cortex-a53",
            extra: &["-m", "1G", "-nic", "none"],
        },
    },
    Board {
        name: "stm32h735g-dk",
        about: "ST STM32H735G-DK discovery kit, Cortex-M7 (probe-rs)",
        target: "thumbv7em-none-eabihf",
        cpu: "cortex-m7",
        features: "",
        compile_target: "cortex-m7",
        runner: Runner::Probe {
            chip: "STM32H735IGKx",
        },
    },
    Board {
        name: "nrf52840-dk",
        about: "Nordic nRF52840-DK, Cortex-M4F (probe-rs)",
        target: "thumbv7em-none-eabihf",
        cpu: "cortex-m4",
        features: "",
        compile_target: "cortex-m4",
        runner: Runner::Probe {
            chip: "nRF52840_xxAA",
        },
    },
    Board {
        name: "pico2",
        about: "Raspberry Pi Pico 2, RP2350 Cortex-M33 (probe-rs)",
        target: "thumbv8m.main-none-eabihf",
        cpu: "cortex-m33",
        features: "",
        compile_target: "cortex-m33",
        runner: Runner::Probe { chip: "RP235x" },
    },
];

/// The default board.
pub const DEFAULT: &str = "mps3-an547";

/// A simulated board by name, ready to run: QEMU and the Rust target
/// installed. `what` names the command in the error for a real board.
pub fn ready_simulated(name: &str, what: &str) -> Result<&'static Board> {
    let board = find(name)?;
    if let Runner::Probe { .. } = board.runner {
        bail!("{what} runs on a simulated board:\n{}", list());
    }
    crate::setup::setup_qemu()?;
    crate::setup::setup_target(board.target)?;
    Ok(board)
}

/// Looks a board up by name.
pub fn find(name: &str) -> Result<&'static Board> {
    match BOARDS.iter().find(|b| b.name == name) {
        Some(b) => Ok(b),
        None => bail!("unknown board '{name}'; the boards are:\n{}", list()),
    }
}

/// The simulated boards.
pub fn simulated() -> impl Iterator<Item = &'static Board> {
    BOARDS
        .iter()
        .filter(|b| matches!(b.runner, Runner::Qemu { .. }))
}

/// The real boards.
pub fn real() -> impl Iterator<Item = &'static Board> {
    BOARDS
        .iter()
        .filter(|b| matches!(b.runner, Runner::Probe { .. }))
}

/// One line per board, for help and errors.
pub fn list() -> String {
    BOARDS
        .iter()
        .map(|b| format!("  {:<14} {}", b.name, b.about))
        .collect::<Vec<_>>()
        .join("\n")
}
