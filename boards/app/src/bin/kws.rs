//! Keyword spotting on the device, from microphone samples to a word: the
//! board's microphone (on simulated boards, a WAV clip embedded in flash
//! played through the same interface) → the MLPerf KWS MFCC front end
//! (`ember-audio`) → int8 quantization with the model's input parameters →
//! the model → label and confidence, with instruction counts for the front
//! end and the model.
#![no_std]
#![no_main]

use ember_audio::{KwsMfcc, KWS_COEFFS, KWS_FRAMES, KWS_LABELS, KWS_SAMPLES};
use ember_board::io::Microphone;
use ember_runtime::{DType, Interpreter};

use ember_app::{board, model, run_app, ARENA};

board::entry!(start);

fn start() -> ! {
    run_app(run)
}

fn run<B: ember_board::Board>(b: &B) -> Result<i32, ember_runtime::Error> {
    let Some(mut mic) = ember_app::voice_app_start(b, "keyword") else {
        return Ok(5);
    };
    let model = ember_app::load_model()?;
    let input = model.input_info(0)?;
    if input.dims() != [1, KWS_FRAMES, KWS_COEFFS, 1] || input.dtype != DType::I8 {
        defmt::error!("ember-error the model does not take int8 KWS MFCCs [1, 49, 10, 1]");
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

    // One second of audio, read from the microphone in 10 ms chunks (a real
    // microphone driver delivers DMA blocks of about this size).
    let t0 = b.now();
    let mut pcm = [0i16; KWS_SAMPLES];
    let mut got = 0;
    while got < KWS_SAMPLES {
        let end = (got + 160).min(KWS_SAMPLES);
        match mic.read(&mut pcm[got..end]) {
            Ok(0) => break, // clip shorter than a second: the rest stays silent
            Ok(n) => got += n,
            Err(e) => match e {},
        }
    }
    let t1 = b.now();
    let fe = KwsMfcc::new();
    let t2 = b.now();
    let mut mfcc = [[0f32; KWS_COEFFS]; KWS_FRAMES];
    fe.compute(&pcm, &mut mfcc);
    let mut x = [0i8; KWS_FRAMES * KWS_COEFFS];
    KwsMfcc::quantize(&mfcc, q_in.scale, q_in.zero_point, &mut x);
    let t3 = b.now();
    it.input_mut(0)?.copy_from(&x)?;
    it.invoke()?;
    let t4 = b.now();

    let scores = it.output(0)?.as_i8()?;
    if scores.len() != KWS_LABELS.len() {
        defmt::error!(
            "ember-error the model has {=usize} classes, not 12",
            scores.len()
        );
        return Ok(5);
    }
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    let score = (i32::from(scores[best]) - q_out.zero_point) as f32 * q_out.scale;
    defmt::println!(
        "ember-kws samples {=usize} mic-ticks {=u64} frontend-init-ticks {=u64} frontend-ticks {=u64} model-ticks {=u64}",
        got,
        t1 - t0,
        t2 - t1,
        t3 - t2,
        t4 - t3
    );
    defmt::println!("ember-heard {=str} score {=f32}", KWS_LABELS[best], score);
    Ok(0)
}
