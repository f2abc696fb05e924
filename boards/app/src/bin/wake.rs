//! Streaming wake word on the device: the board's microphone (on simulated
//! boards, a recording embedded in flash played through the same interface)
//! in 10 ms blocks → the sww log-mel front end (one frame per 32 ms) → a
//! sliding window of the last 30 int8 frames → the model, once per new
//! frame → the detector (class 0 above 0.95). Reports each detection with
//! its time, and instruction counts for the front end and the model.
//!
//! The model is either the windowed one (input `[1, 30, 1, 40]`) or the
//! same model compiled with `ember compile --stream` (input `[1, 1, 1,
//! 40]`, its ring buffers kept in the arena): then each new frame alone
//! goes in, and from the 30th frame on its output is the window's.
#![no_std]
#![no_main]

use ember_audio::sww::{Detector, FeatureWindow, SwwLogMel, SWW_MELS, SWW_WINDOW_FRAMES};
use ember_board::io::Microphone;
use ember_runtime::{DType, Interpreter};

use ember_app::{board, model, run_app, ARENA};

board::entry!(start);

fn start() -> ! {
    run_app(run)
}

fn run<B: ember_board::Board>(b: &B) -> Result<i32, ember_runtime::Error> {
    let Some(mut mic) = ember_app::voice_app_start(b, "wake-word") else {
        return Ok(5);
    };
    let model = ember_app::load_model()?;
    let input = model.input_info(0)?;
    let streamed = input.dims() == [1, 1, 1, SWW_MELS] && model.num_state() > 0;
    if !(streamed || input.dims() == [1, SWW_WINDOW_FRAMES, 1, SWW_MELS])
        || input.dtype != DType::I8
    {
        defmt::error!(
            "ember-error the model takes neither int8 log-mel windows [1, 30, 1, 40] nor, streamed, frames [1, 1, 1, 40]"
        );
        return Ok(5);
    }
    let (Some(q_in), Some(q_out)) = (input.quant, model.output_info(0)?.quant) else {
        defmt::error!("ember-error the model's input and output must be quantized");
        return Ok(5);
    };
    let Some(arena) = ARENA.take() else {
        return Ok(3);
    };
    let mut it = Interpreter::<model::ModelKernels>::with_kernels(&model, arena)?;
    let mut fe = SwwLogMel::new();
    let mut win = FeatureWindow::new();
    let mut det = Detector::new(0.95);

    let (mut fe_ticks, mut model_ticks, mut samples, mut windows) = (0u64, 0u64, 0usize, 0usize);
    let mut block = [0i16; 160];
    let mut failure = None;
    loop {
        let n = match mic.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => match e {},
        };
        samples += n;
        let t0 = b.now();
        // Frames completed by this block (at most one per 512 samples).
        let mut ready: [[i8; SWW_MELS]; 2] = [[0; SWW_MELS]; 2];
        let mut count = 0;
        fe.push(&block[..n], |f| {
            if count < ready.len() {
                SwwLogMel::quantize(f, q_in.scale, q_in.zero_point, &mut ready[count]);
                count += 1;
            }
        });
        fe_ticks += b.now() - t0;
        for q in &ready[..count] {
            let full = win.push(q);
            if !full && !streamed {
                continue;
            }
            let t1 = b.now();
            let step = (|| {
                let t = it.input_mut(0)?;
                if streamed {
                    // The frame alone: the model keeps the window.
                    for (d, &s) in t.bytes.iter_mut().zip(q.iter()) {
                        *d = s as u8;
                    }
                } else {
                    win.copy_into(t.bytes);
                }
                it.invoke()?;
                let o = it.output(0)?.as_i8()?;
                Ok::<i8, ember_runtime::Error>(o[0])
            })();
            model_ticks += b.now() - t1;
            if !full {
                // Warm-up of the streamed model: no whole window yet.
                if let Err(e) = step {
                    failure = Some(e);
                }
                continue;
            }
            match step {
                Ok(v) => {
                    let p0 = (i32::from(v) - q_out.zero_point) as f32 * q_out.scale;
                    if let Some(d) = det.push(windows, p0) {
                        defmt::println!(
                            "ember-detection window {=usize} time-ms {=u32} score {=f32}",
                            d.window,
                            (d.time_s * 1000.0) as u32,
                            d.score
                        );
                    }
                }
                Err(e) => failure = Some(e),
            }
            windows += 1;
        }
        if failure.is_some() {
            break;
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    defmt::println!(
        "ember-wake samples {=usize} frames {=usize} windows {=usize} frontend-ticks {=u64} model-ticks {=u64}",
        samples,
        fe.frames(),
        windows,
        fe_ticks,
        model_ticks
    );
    Ok(0)
}
