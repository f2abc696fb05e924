//! A model that keeps state between invokes (a recurrent network, or a
//! windowed model compiled with `--stream`), run frame after frame over an
//! embedded recording with its state in the arena: every frame's outputs
//! are checked against the host's (embedded too). int8 outputs must be
//! identical; f32 ones within the tolerance the embedded input ends with
//! nothing else (exact is asked for with 0). Reports frames, mismatching
//! frames, the largest float difference and the instructions per frame.
#![no_std]
#![no_main]

use ember_runtime::{DType, Interpreter};

use ember_app::{board, model, run_app, ARENA};

board::entry!(start);

fn start() -> ! {
    run_app(run)
}

/// The f32 tolerance, in the last 4 bytes of the embedded input (after
/// the frames).
fn tolerance() -> f32 {
    let n = model::INPUT.len();
    model::INPUT
        .get(n.saturating_sub(4)..)
        .and_then(|b| b.try_into().ok())
        .map(f32::from_le_bytes)
        .unwrap_or(0.0)
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
    let model = ember_app::load_model()?;
    let mut it = Interpreter::<model::ModelKernels>::with_kernels(&model, arena)?;
    if model.num_inputs() != 1 {
        defmt::error!("ember-error a stream takes a model with one input");
        return Ok(5);
    }
    let frame = model.input_info(0)?.size;
    let out_bytes: usize = (0..model.num_outputs())
        .map(|i| model.output_info(i).map(|o| o.size))
        .sum::<Result<usize, _>>()?;
    let frames_bytes = model::INPUT.len().saturating_sub(4);
    if frame == 0
        || frames_bytes % frame != 0
        || model::EXPECT.len() != frames_bytes / frame * out_bytes
    {
        defmt::error!(
            "ember-error the embedded recording ({=usize} bytes) and outputs ({=usize}) do not fit frames of {=usize} → {=usize} bytes",
            frames_bytes,
            model::EXPECT.len(),
            frame,
            out_bytes
        );
        return Ok(5);
    }
    let tol = tolerance();
    let frames = frames_bytes / frame;
    let (mut bad, mut worst, mut ticks) = (0usize, 0f32, 0u64);
    for f in 0..frames {
        it.input_mut(0)?
            .bytes
            .copy_from_slice(&model::INPUT[f * frame..(f + 1) * frame]);
        let t0 = b.now();
        it.invoke()?;
        ticks += b.now() - t0;
        let mut off = f * out_bytes;
        let mut ok = true;
        for o in 0..model.num_outputs() {
            let out = it.output(o)?;
            let want = &model::EXPECT[off..off + out.bytes.len()];
            if out.info.dtype == DType::F32 {
                for (g, w) in out.bytes.chunks_exact(4).zip(want.chunks_exact(4)) {
                    let g = f32::from_le_bytes([g[0], g[1], g[2], g[3]]);
                    let w = f32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                    let d = (g - w).abs();
                    // NaN compares false: count it as a mismatch.
                    if d.is_nan() || d > tol {
                        ok = false;
                    }
                    if d > worst {
                        worst = d;
                    }
                }
            } else if out.bytes != want {
                ok = false;
            }
            off += out.bytes.len();
        }
        if !ok {
            if bad < 3 {
                defmt::println!("ember-stream-mismatch frame {=usize}", f);
            }
            bad += 1;
        }
    }
    defmt::println!(
        "ember-stream frames {=usize} mismatches {=usize} max-abs-diff {=f32} ticks {=u64}",
        frames,
        bad,
        worst,
        ticks
    );
    Ok(if bad == 0 { 0 } else { 1 })
}
