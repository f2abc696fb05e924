//! Ember inference firmware, the same for every board: loads the embedded
//! model (validating it), runs it on the embedded input once to warm up, once
//! timed, once with per-operator timing (each from a reset state, for a model
//! that keeps state between invokes), prints the outputs, and exits 0 only
//! if they equal the embedded expected output.
//!
//! Everything is reported as defmt frames (`ember-…` lines) that
//! `cargo xtask run` decodes and checks.
#![no_std]
#![no_main]

use ember_runtime::Interpreter;

use ember_app::{board, model, run_app, ARENA};

board::entry!(start);

fn start() -> ! {
    run_app(run)
}

fn run<B: ember_board::Board>(b: &B) -> Result<i32, ember_runtime::Error> {
    defmt::println!(
        "ember-board {=str} unit {=str} hz {=u64} model {=str}",
        B::NAME,
        B::TICK_UNIT,
        b.ticks_per_second(),
        model::NAME
    );
    let Some(arena) = ARENA.take() else {
        return Ok(3);
    };
    // Load time: validating the blob, then binding it to the arena (which
    // checks the arena plan there).
    let t0 = b.now();
    let model = ember_app::load_model()?;
    let mut it = Interpreter::<model::ModelKernels>::with_kernels(&model, arena)?;
    let load = b.now() - t0;
    defmt::println!(
        "ember-model bytes {=usize} arena {=usize} ops {=usize} load-ticks {=u64}",
        model.blob_bytes(),
        model.arena_bytes(),
        model.num_ops(),
        load
    );

    // The arena plan may reuse an input's bytes once it is consumed, so the
    // input is written before every invocation (as with any arena runtime).
    if !load_inputs(&mut it)? {
        return Ok(4);
    }
    it.invoke()?; // warm-up
    it.reset_state()?;
    load_inputs(&mut it)?;
    let t0 = b.now();
    it.invoke()?;
    let total = b.now() - t0;
    defmt::println!("ember-total ticks {=u64}", total);

    it.reset_state()?;
    load_inputs(&mut it)?;
    let mut start = 0u64;
    it.invoke_with_hook(|ev| {
        if ev.done {
            let t = b.now() - start;
            defmt::println!("ember-op {=u32} ticks {=u64}", ev.index, t);
        } else {
            start = b.now();
        }
    })?;

    let mut off = 0;
    let mut mismatches = 0usize;
    for i in 0..model.num_outputs() {
        let out = it.output(i)?;
        defmt::println!("ember-output {=usize} {=[u8]}", i, out.bytes);
        if let Some(want) = model::EXPECT.get(off..off + out.bytes.len()) {
            mismatches += want.iter().zip(out.bytes).filter(|(a, b)| a != b).count();
        }
        off += out.bytes.len();
    }
    if model::EXPECT.is_empty() {
        defmt::println!("ember-check none");
        return Ok(0);
    }
    if off != model::EXPECT.len() {
        defmt::println!(
            "ember-check length expected {=usize} got {=usize}",
            model::EXPECT.len(),
            off
        );
        return Ok(1);
    }
    defmt::println!(
        "ember-check mismatches {=usize} of {=usize}",
        mismatches,
        off
    );
    Ok(if mismatches == 0 { 0 } else { 1 })
}

/// Copies the embedded input into the model's inputs (in order). Returns
/// `false` if the embedded input is too short; an empty one leaves zeros.
fn load_inputs(
    it: &mut Interpreter<'_, '_, model::ModelKernels>,
) -> Result<bool, ember_runtime::Error> {
    let mut off = 0;
    for i in 0..it.model().num_inputs() {
        let t = it.input_mut(i)?;
        let n = t.bytes.len();
        match model::INPUT.get(off..off + n) {
            Some(src) => t.bytes.copy_from_slice(src),
            None if model::INPUT.is_empty() => t.bytes.fill(0),
            None => {
                defmt::error!(
                    "ember-error input has {=usize} bytes, the model's inputs need more",
                    model::INPUT.len()
                );
                return Ok(false);
            }
        }
        off += n;
    }
    Ok(true)
}
