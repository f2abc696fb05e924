//! Fuzzes the WAV reader (`ember_audio::wav::Wav::parse`) and, for what it
//! accepts, what `ember listen` does with it: channel 0 of the first second
//! at 16 kHz (resampled from 4–192 kHz), the keyword model's MFCC and its
//! int8 quantization, and the streaming wake-word log-mel front end with
//! its feature window, on a bounded prefix.
#![no_main]

use ember_audio::resample::{resample, resampled_len};
use ember_audio::sww::{FeatureWindow, SwwLogMel, SWW_MELS};
use ember_audio::wav::Wav;
use ember_audio::{KwsMfcc, KWS_COEFFS, KWS_FRAMES, KWS_SAMPLES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(wav) = Wav::parse(data) else {
        return;
    };
    let rate = wav.sample_rate;
    for c in [0, wav.channels - 1, wav.channels] {
        for i in [0, wav.frames() - 1, wav.frames()] {
            let _ = wav.sample(i, c);
        }
    }
    if rate != 16_000 && !(4_000..=192_000).contains(&rate) {
        return;
    }
    // As `listen` reads a keyword clip: what one second at 16 kHz needs.
    let frames = wav
        .frames()
        .min(resampled_len(KWS_SAMPLES, 16_000, rate).saturating_add(rate as usize / 10 + 64));
    let mut pcm = vec![0i16; frames];
    let n = wav.channel0_into(&mut pcm);
    assert_eq!(n, frames);
    let clip = if rate == 16_000 {
        pcm.truncate(KWS_SAMPLES);
        pcm
    } else {
        let all = resampled_len(wav.frames(), rate, 16_000);
        let mut out = vec![0i16; KWS_SAMPLES.min(all)];
        let n = resample(&pcm, rate, 16_000, &mut out);
        assert!(n <= out.len());
        out.truncate(n);
        out
    };
    let mut x = vec![0i16; KWS_SAMPLES];
    x[..clip.len()].copy_from_slice(&clip);
    let mut mfcc = [[0f32; KWS_COEFFS]; KWS_FRAMES];
    KwsMfcc::new().compute(&x, &mut mfcc);
    let mut q = [0i8; KWS_FRAMES * KWS_COEFFS];
    KwsMfcc::quantize(&mfcc, 0.584_702_9, 83, &mut q);
    // The wake-word front end over the same samples, in 10 ms chunks.
    let mut fe = SwwLogMel::new();
    let mut win = FeatureWindow::new();
    let mut window = [0u8; 30 * SWW_MELS];
    for chunk in clip.chunks(160) {
        fe.push(chunk, |f| {
            let mut q = [0i8; SWW_MELS];
            SwwLogMel::quantize(f, 0.003_701, -128, &mut q);
            if win.push(&q) {
                assert!(win.copy_into(&mut window));
            }
        });
    }
});
