//! MicroFlow on a simulated board: one warm-up `predict_quantized`, then
//! one timed with the board's tick counter, reported with the same
//! `ember-*` lines as `ember-app` so `cargo xtask bench` reads both alike.
#![no_std]
#![no_main]

#[cfg(feature = "mps2-an386")]
use mps2_an386 as board;
#[cfg(feature = "mps3-an547")]
use mps3_an547 as board;

use ember_board::Board as _;

#[allow(clippy::all, dead_code)]
mod model {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

board::entry!(start);

fn start() -> ! {
    ember_board::stack::paint();
    let mut b = board::Board::init();
    defmt::println!(
        "ember-board {=str} unit {=str} hz {=u64} model microflow",
        board::Board::NAME,
        board::Board::TICK_UNIT,
        b.ticks_per_second()
    );
    let warm = model::Model::predict_quantized(model::input());
    let t0 = b.now();
    let out = model::Model::predict_quantized(core::hint::black_box(model::input()));
    let total = b.now() - t0;
    defmt::println!("ember-total ticks {=u64}", total);
    let best = out
        .iter()
        .enumerate()
        .fold((0, f32::MIN), |m, (i, &v)| if v > m.1 { (i, v) } else { m });
    defmt::println!(
        "microflow-output argmax {=usize} score {=f32} (warm-up argmax equal: {=bool})",
        best.0,
        best.1,
        warm == out
    );
    defmt::println!("ember-stack {=usize}", ember_board::stack::high_water());
    ember_board::finish(&mut b, 0)
}
