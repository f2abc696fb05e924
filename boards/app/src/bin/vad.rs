//! Voice activity on the device: the board's microphone (on simulated
//! boards, a recording embedded in flash played through the same
//! interface) → chunks of 512 samples with 64 of context → a float model
//! that reads raw audio and keeps its LSTM state in the arena (Silero VAD
//! compiled with `--shape input=1x576 --state auto`) → speech segments.
//! Every chunk's speech probability is checked against the host's
//! (embedded as `EXPECT`, f32 each, within the tolerance in `INPUT`'s
//! 4 bytes). Reports each segment, the largest difference, and the model's
//! instruction count.
#![no_std]
#![no_main]

use ember_audio::vad::{Segment, Segmenter, VadFramer, VAD_CHUNK, VAD_INPUT};
use ember_board::io::Microphone;
use ember_runtime::{DType, Interpreter};

use ember_app::{board, model, run_app, ARENA};

board::entry!(start);

fn start() -> ! {
    run_app(run)
}

fn report(s: Segment) {
    defmt::println!(
        "ember-speech start-ms {=u32} end-ms {=u32}",
        (s.start_s() * 1000.0) as u32,
        (s.end_s() * 1000.0) as u32
    );
}

fn run<B: ember_board::Board>(b: &B) -> Result<i32, ember_runtime::Error> {
    let Some(mut mic) = ember_app::voice_app_start(b, "voice activity") else {
        return Ok(5);
    };
    let model = ember_app::load_model()?;
    let input = model.input_info(0)?;
    let output = model.output_info(0)?;
    if input.dims() != [1, VAD_INPUT]
        || input.dtype != DType::F32
        || output.dtype != DType::F32
        || output.numel() != 1
        || model.num_state() == 0
    {
        defmt::error!(
            "ember-error the model must read raw audio [1, 576] f32, keep state, and give one f32 probability"
        );
        return Ok(5);
    }
    let tol = model::INPUT
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(f32::from_le_bytes)
        .unwrap_or(0.0);
    let Some(arena) = ARENA.take() else {
        return Ok(3);
    };
    let mut it = Interpreter::<model::ModelKernels>::with_kernels(&model, arena)?;
    let mut framer = VadFramer::new();
    let mut seg = Segmenter::default();
    let (mut chunks, mut bad, mut worst, mut ticks) = (0usize, 0usize, 0f32, 0u64);
    let mut block = [0i16; VAD_CHUNK];
    let mut failure = None;
    loop {
        let n = match mic.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => match e {},
        };
        framer.push(&block[..n], |x| {
            if failure.is_some() {
                return;
            }
            let t0 = b.now();
            let step = (|| {
                it.input_mut(0)?.copy_from(x)?;
                it.invoke()?;
                Ok::<f32, ember_runtime::Error>(it.output(0)?.as_f32()?[0])
            })();
            ticks += b.now() - t0;
            let p = match step {
                Ok(p) => p,
                Err(e) => {
                    failure = Some(e);
                    return;
                }
            };
            let want = model::EXPECT
                .get(chunks * 4..chunks * 4 + 4)
                .and_then(|b| b.try_into().ok())
                .map(f32::from_le_bytes);
            match want {
                Some(w) if (p - w).abs() <= tol => worst = worst.max((p - w).abs()),
                _ => bad += 1,
            }
            if let Some(s) = seg.push(p) {
                report(s);
            }
            chunks += 1;
        });
        if failure.is_some() {
            break;
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(s) = seg.finish() {
        report(s);
    }
    if chunks * 4 != model::EXPECT.len() {
        bad += 1;
    }
    defmt::println!(
        "ember-vad chunks {=usize} mismatches {=usize} max-abs-diff {=f32} ticks {=u64}",
        chunks,
        bad,
        worst,
        ticks
    );
    Ok(if bad == 0 { 0 } else { 1 })
}
