//! Bare-metal Cortex-A53 on `qemu-system-aarch64 -M virt -cpu cortex-a53`.
//!
//! - Start-up (`_start`, EL1): core 0 only; FP/SIMD enabled; an identity map
//!   with 1 GiB blocks (device memory below 1 GiB, normal cacheable RAM
//!   above) so that unaligned and vector accesses behave as on a real Cortex-A
//!   board; `.bss` zeroed; exceptions end the program with status 103.
//! - Memory: image at `0x4010_0000` (the device tree sits at the base of RAM),
//!   data, arena and stack from `0x4310_0000`.
//! - Clock: the generic timer's virtual count (`CNTVCT_EL0`, at `CNTFRQ_EL0`
//!   = 62.5 MHz on QEMU 7.2). Under `-icount shift=0` one tick is 16
//!   instructions.
//! - Console and exit: semihosting (`HLT #0xF000`).
//!
//! Build for `aarch64-unknown-none` with `-C target-cpu=cortex-a53`.
#![no_std]
#![deny(missing_docs)]

pub use ember_board;

core::arch::global_asm!(
    r#"
    .section .text.start, "ax"
    .global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbnz    x0, 9f
    // FP/SIMD: CPACR_EL1.FPEN = 0b11 (no traps at EL1/EL0).
    mov     x0, #(3 << 20)
    msr     cpacr_el1, x0
    isb
    ldr     x0, =_stack_start
    mov     sp, x0
    adr     x0, ember_a53_vectors
    msr     vbar_el1, x0
    // Zero .bss (page table included).
    ldr     x0, =__sbss
    ldr     x1, =__ebss
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:
    // Identity map, 4 KiB granule, 39-bit VA: level-1 table, 1 GiB blocks.
    // AttrIdx 0 = device nGnRnE, 1 = normal write-back.
    ldr     x0, =ember_a53_l1_table
    ldr     x1, =0x401                  // [0, 1 GiB): device, AF
    str     x1, [x0]
    ldr     x1, =0x40000705             // [1, 2 GiB): normal, inner shareable, AF
    str     x1, [x0, #8]
    ldr     x1, =0x80000705             // [2, 3 GiB): normal (high RAM)
    str     x1, [x0, #16]
    ldr     x1, =0xC0000705             // [3, 4 GiB): normal
    str     x1, [x0, #24]
    msr     ttbr0_el1, x0
    ldr     x1, =0xFF00                 // MAIR: attr0 = 0x00, attr1 = 0xFF
    msr     mair_el1, x1
    // TCR: T0SZ = 25, IRGN0/ORGN0 = WB-WA, SH0 = inner, TG0 = 4K, EPD1 = 1.
    ldr     x1, =(25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))
    msr     tcr_el1, x1
    isb
    tlbi    vmalle1
    dsb     ish
    isb
    mrs     x1, sctlr_el1
    orr     x1, x1, #(1 << 0)           // M: MMU on
    orr     x1, x1, #(1 << 2)           // C: data cache
    orr     x1, x1, #(1 << 12)          // I: instruction cache
    bic     x1, x1, #(1 << 1)           // A: no alignment checks
    msr     sctlr_el1, x1
    isb
    bl      ember_board_start
9:  wfe
    b       9b

    .section .text.vectors, "ax"
    .balign 2048
ember_a53_vectors:
    .rept 16
    .balign 128
    b       ember_a53_fault
    .endr

    .section .text.fault, "ax"
ember_a53_fault:
    // Semihosting SYS_EXIT with [ApplicationExit, 103] on the stack.
    ldr     x1, =0x20026
    mov     x2, #103
    stp     x1, x2, [sp, #-16]!
    mov     x1, sp
    mov     x0, #0x18
    hlt     #0xf000
    b       9b

    .section .bss.page_table, "aw", %nobits
    .balign 4096
ember_a53_l1_table:
    .space 4096
"#
);

/// The board: clock and exit.
pub struct Board {
    _private: (),
}

impl Board {
    /// Brings the board up (nothing to do beyond `_start`). Call once, from
    /// `main`.
    pub fn init() -> Self {
        Board { _private: () }
    }
}

impl ember_board::Board for Board {
    const NAME: &'static str = "virt-a53";
    const TICK_UNIT: &'static str = "instructions";

    fn now(&self) -> u64 {
        let t: u64;
        // SAFETY: reads the virtual count register, accessible at EL1; the
        // ISB keeps the read from being hoisted above earlier instructions.
        unsafe {
            core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack, preserves_flags))
        };
        t
    }

    fn ticks_per_second(&self) -> u64 {
        let f: u64;
        // SAFETY: reads the counter frequency register; no side effects.
        unsafe {
            core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack, preserves_flags))
        };
        f
    }

    fn exit(&mut self, code: i32) -> ! {
        ember_board::semihosting::exit(code)
    }
}

/// Declares the firmware's entry function (`fn() -> !`), called by `_start`.
#[macro_export]
macro_rules! entry {
    ($f:path) => {
        #[no_mangle]
        pub extern "C" fn ember_board_start() -> ! {
            $f()
        }
    };
}
