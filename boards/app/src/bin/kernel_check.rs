//! Optimized-kernel check on the device: generated convolution, depthwise,
//! fully-connected, add, global-pooling, table-lookup, resize and requantization cases (random shapes, strides,
//! paddings, awkward channel counts, zero points, multipliers), each run
//! through the reference kernel and the optimized kernel this board's
//! build selects (Helium on the M55, DSP on the M4, NEON on the A53),
//! compared byte for byte. Exits 0 only if every case is bit-exact.
#![no_std]
#![no_main]

use ember_runtime::kernels::opt::selftest::{run_case, CaseKind, Workspace};

use ember_app::{board, run_app};

board::entry!(start);

/// Cases to run (each is a few thousand multiply-accumulates).
const CASES: u64 = 400;

static mut X: [i8; 4096] = [0; 4096];
static mut W: [i8; 20480] = [0; 20480];
static mut WORDS: [i32; 1024] = [0; 1024];
static mut Y_REF: [i8; 4096] = [0; 4096];
static mut Y_OPT: [i8; 4096] = [0; 4096];
static mut SCRATCH: [i8; 8192] = [0; 8192];
/// The packed filters, word aligned as the DSP kernels' `LDRD`s need (a
/// misaligned copy would quietly send them down the int8 path untested).
#[repr(C, align(16))]
struct Packed([i16; 20480]);
static mut PACKED: Packed = Packed([0; 20480]);

fn start() -> ! {
    run_app(run)
}

fn run<B: ember_board::Board>(b: &B) -> Result<i32, ember_runtime::Error> {
    defmt::println!(
        "ember-board {=str} unit {=str} hz {=u64} model kernel-check",
        B::NAME,
        B::TICK_UNIT,
        b.ticks_per_second()
    );
    // SAFETY: `run` executes once, on one core, with no interrupt touching
    // these buffers, so these are the only references ever made to them.
    let mut ws = unsafe {
        Workspace {
            x: &mut *core::ptr::addr_of_mut!(X),
            w: &mut *core::ptr::addr_of_mut!(W),
            words: &mut *core::ptr::addr_of_mut!(WORDS),
            y_ref: &mut *core::ptr::addr_of_mut!(Y_REF),
            y_opt: &mut *core::ptr::addr_of_mut!(Y_OPT),
            scratch: &mut *core::ptr::addr_of_mut!(SCRATCH),
            packed: &mut (*core::ptr::addr_of_mut!(PACKED)).0,
        }
    };
    let mut per_kind = [0u32; 11];
    let mut outputs = 0u64;
    let mut failed = 0u32;
    for seed in 0..CASES {
        let r = run_case(seed, &mut ws)?;
        per_kind[r.kind as usize] += 1;
        outputs += r.outputs as u64;
        if r.mismatches != 0 {
            failed += 1;
            defmt::println!("ember-kernel-mismatch case {=u64} {}", seed, r);
        }
    }
    defmt::println!(
        "ember-kernel-check cases {=u64} failed {=u32} outputs {=u64} pointwise {=u32} conv {=u32} depthwise {=u32} fully-connected {=u32} requantize {=u32} add {=u32} global-avg-pool {=u32} lut {=u32} resize-nearest {=u32} resize-blend {=u32} dot4 {=u32}",
        CASES,
        failed,
        outputs,
        per_kind[CaseKind::Pointwise as usize],
        per_kind[CaseKind::Conv as usize],
        per_kind[CaseKind::Depthwise as usize],
        per_kind[CaseKind::FullyConnected as usize],
        per_kind[CaseKind::Requantize as usize],
        per_kind[CaseKind::Add as usize],
        per_kind[CaseKind::GlobalAvgPool as usize],
        per_kind[CaseKind::Lut as usize],
        per_kind[CaseKind::ResizeNearest as usize],
        per_kind[CaseKind::ResizeBlend as usize],
        per_kind[CaseKind::Dot4 as usize]
    );
    Ok(if failed == 0 { 0 } else { 1 })
}
