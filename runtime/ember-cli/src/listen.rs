//! `ember listen MODEL WAV`: spoken audio in, label out, with the front end
//! the model was trained on (the model zoo's preprocessing).

use std::path::Path;

use anyhow::{bail, Context, Result};
use ember_audio::wav::Wav;
use ember_audio::{KwsMfcc, KWS_COEFFS, KWS_FRAMES, KWS_LABELS, KWS_SAMPLES};
use ember_runtime::{DType, Interpreter, Model};

/// Result of classifying one clip.
pub struct Heard {
    /// Winning label.
    pub label: &'static str,
    /// Its probability.
    pub score: f32,
}

/// Runs a keyword-spotting model on a WAV file.
pub fn listen(model: &Model<'_>, wav_path: &Path) -> Result<Heard> {
    let input = model.input_info(0)?;
    if input.dims() != [1, KWS_FRAMES, KWS_COEFFS, 1] {
        bail!(
            "no audio front end for a model input of shape {:?} (supported: keyword-spotting MFCC [1, 49, 10, 1])",
            input.dims()
        );
    }
    let out_info = model.output_info(0)?;
    if out_info.numel() != KWS_LABELS.len() {
        bail!(
            "expected {} class scores, the model has {}",
            KWS_LABELS.len(),
            out_info.numel()
        );
    }
    let bytes =
        std::fs::read(wav_path).with_context(|| format!("cannot read {}", wav_path.display()))?;
    let wav = Wav::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", wav_path.display()))?;
    if wav.sample_rate != 16_000 {
        bail!(
            "{}: sample rate {} Hz, the keyword model needs 16000 Hz (resample the file, e.g. `sox in.wav -r 16000 out.wav`)",
            wav_path.display(),
            wav.sample_rate
        );
    }
    // Channel 0; shorter clips are zero-padded, longer ones use their first second.
    let mut pcm = vec![0i16; KWS_SAMPLES];
    wav.channel0_into(&mut pcm);
    let fe = KwsMfcc::new();
    let mut mfcc = [[0f32; KWS_COEFFS]; KWS_FRAMES];
    fe.compute(&pcm, &mut mfcc);

    let mut arena = ember_compiler::aligned_arena(model.arena_bytes());
    let mut it = Interpreter::new(model, arena.bytes_mut())?;
    match (input.dtype, input.quant) {
        (DType::I8, Some(q)) => {
            let mut x = [0i8; KWS_FRAMES * KWS_COEFFS];
            KwsMfcc::quantize(&mfcc, q.scale, q.zero_point, &mut x);
            it.input_mut(0)?.copy_from(&x)?;
        }
        (DType::F32, _) => {
            let x: Vec<f32> = mfcc.iter().flatten().copied().collect();
            it.input_mut(0)?.copy_from(&x)?;
        }
        (dt, _) => bail!("unsupported model input type {}", dt.name()),
    }
    it.invoke()?;
    let out = it.output(0)?;
    let scores: Vec<f32> = match (out.info.dtype, out.info.quant) {
        (DType::F32, _) => out.as_f32()?.to_vec(),
        (DType::I8, Some(q)) => out
            .as_i8()?
            .iter()
            .map(|&v| (v as i32 - q.zero_point) as f32 * q.scale)
            .collect(),
        (dt, _) => bail!("unsupported model output type {}", dt.name()),
    };
    let best = (0..scores.len()).fold(0, |b, i| if scores[i] > scores[b] { i } else { b });
    Ok(Heard {
        label: KWS_LABELS[best],
        score: scores[best],
    })
}
