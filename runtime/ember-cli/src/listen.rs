//! `ember listen MODEL WAV`: spoken audio in, label out, with the front end
//! the model was trained on (the model zoo's preprocessing).

use std::path::Path;

use anyhow::{bail, Context, Result};
use ember_audio::resample::{resample, resampled_len};
use ember_audio::sww::{
    Detection, Detector, FeatureWindow, SwwLogMel, SWW_MELS, SWW_WINDOW_FRAMES,
};
use ember_audio::vad::{Segment, Segmenter, VadFramer, VAD_CHUNK, VAD_INPUT};
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

/// What a model heard in a clip.
pub enum Listened {
    /// A clip model (keyword spotting): one label.
    Clip(Heard),
    /// A streaming model (wake word): the detections.
    Stream(Vec<Detection>),
    /// A voice activity model: the speech segments.
    Speech(Vec<Segment>),
}

/// Reads channel 0 of a WAV file as 16 kHz samples: other rates (4 to
/// 192 kHz) are resampled, with a note on stderr. With `want`, only the
/// first `want` samples at 16 kHz are needed: only the start of the file is
/// read (the whole file when its `data` chunk starts further in) and only
/// those samples are converted and resampled — a keyword model reads one
/// second of a ten-minute recording.
fn read_wav(wav_path: &Path, what: &str, want: Option<usize>) -> Result<Vec<i16>> {
    use std::io::Read;
    let cannot = || format!("cannot read {}", wav_path.display());
    // One second at the highest rate, 8 channels of 32 bits, plus headers.
    const PREFIX: u64 = 8 << 20;
    let bytes = match want {
        Some(_) => {
            let mut prefix = Vec::new();
            std::fs::File::open(wav_path)
                .with_context(cannot)?
                .take(PREFIX)
                .read_to_end(&mut prefix)
                .with_context(cannot)?;
            let whole = (prefix.len() as u64) < PREFIX;
            if whole || Wav::parse(&prefix).is_ok() {
                prefix
            } else {
                ember_cli::limits::check_file(wav_path)?;
                std::fs::read(wav_path).with_context(cannot)?
            }
        }
        None => {
            // The whole recording is held twice: its bytes and its samples.
            let len = std::fs::metadata(wav_path).with_context(cannot)?.len();
            ember_cli::limits::check(
                &format!("reading {} (its bytes and its samples)", wav_path.display()),
                len.saturating_mul(2),
            )?;
            std::fs::read(wav_path).with_context(cannot)?
        }
    };
    let wav = Wav::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", wav_path.display()))?;
    if wav.channels > 1 {
        crate::note(&format!(
            "note: {} has {} channels; using channel 0",
            wav_path.display(),
            wav.channels
        ));
    }
    let rate = wav.sample_rate;
    if rate != 16_000 && !(4_000..=192_000).contains(&rate) {
        bail!(
            "{}: sample rate {rate} Hz is outside what can be resampled for the {what} model (4000 to 192000 Hz; it needs 16000 Hz)",
            wav_path.display(),
        );
    }
    // Input frames the wanted output reads: its span at the source rate
    // and the resampling kernel's reach past it, generously.
    let frames = match want {
        Some(n) => wav
            .frames()
            .min(resampled_len(n, 16_000, rate).saturating_add(rate as usize / 10 + 64)),
        None => wav.frames(),
    };
    let mut pcm = vec![0i16; frames];
    wav.channel0_into(&mut pcm);
    if rate == 16_000 {
        pcm.truncate(want.unwrap_or(usize::MAX).min(frames));
        return Ok(pcm);
    }
    crate::note(&format!(
        "note: {} is sampled at {rate} Hz; resampled to 16000 Hz for the {what} model",
        wav_path.display(),
    ));
    let all = resampled_len(wav.frames(), rate, 16_000);
    let mut out = vec![0i16; want.map_or(all, |n| n.min(all))];
    let n = resample(&pcm, rate, 16_000, &mut out);
    out.truncate(n);
    Ok(out)
}

/// Runs an audio model on a WAV file, with the front end its input shape
/// calls for: keyword-spotting MFCC [1, 49, 10, 1] (one label per clip),
/// the streaming wake-word log-mel window [1, 30, 1, 40] (detections), or
/// raw 16 kHz audio [1, 576] into a model that keeps state (voice
/// activity: speech segments).
pub fn listen_any(model: &Model<'_>, wav_path: &Path) -> Result<Listened> {
    let dims = model.input_info(0)?.dims().to_vec();
    if dims == [1, SWW_WINDOW_FRAMES, 1, SWW_MELS] {
        return wake_word(model, wav_path).map(Listened::Stream);
    }
    if dims == [1, VAD_INPUT] {
        return voice_activity(model, wav_path).map(Listened::Speech);
    }
    listen(model, wav_path).map(Listened::Clip)
}

/// Runs a voice activity model (Silero VAD's 16 kHz model compiled with
/// `--shape input=1x576 --state auto`) over a WAV file, 32 ms at a time
/// with its state kept, and returns the speech segments (probability 0.5
/// and above, see [`Segmenter`]).
pub fn voice_activity(model: &Model<'_>, wav_path: &Path) -> Result<Vec<Segment>> {
    let input = model.input_info(0)?;
    if input.dtype != DType::F32 {
        bail!(
            "the voice activity front end feeds float models (raw audio in [-1, 1)); this one takes {}",
            input.dtype.name()
        );
    }
    if model.num_state() == 0 {
        bail!(
            "a voice activity model must keep its state between chunks: compile it with --state (e.g. --state auto)"
        );
    }
    let out = model.output_info(0)?;
    if out.dtype != DType::F32 || out.numel() != 1 {
        bail!(
            "expected one float speech probability from the voice activity model, not {} {:?}",
            out.dtype.name(),
            out.dims()
        );
    }
    let pcm = read_wav(wav_path, "voice activity", None)?;
    let mut arena = crate::arena_for(model)?;
    let mut it = Interpreter::new(model, arena.bytes_mut())?;
    let mut framer = VadFramer::new();
    let mut seg = Segmenter::default();
    let mut found = Vec::new();
    let mut failure: Option<anyhow::Error> = None;
    let bar = ember_cli::progress::bar(
        pcm.len().div_ceil(VAD_CHUNK) as u64,
        "listening (32 ms chunks)",
    );
    for piece in pcm.chunks(VAD_CHUNK) {
        bar.inc(1);
        framer.push(piece, |x| {
            if failure.is_some() {
                return;
            }
            let step = (|| -> Result<f32> {
                it.input_mut(0)?.copy_from(x)?;
                it.invoke()?;
                Ok(it.output(0)?.as_f32()?[0])
            })();
            match step {
                Ok(p) => found.extend(seg.push(p)),
                Err(e) => failure = Some(e),
            }
        });
    }
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    found.extend(seg.finish());
    Ok(found)
}

/// Slides a streaming wake-word model over a WAV file one feature frame at
/// a time (the audio is fed in 10 ms chunks, as from a microphone) and
/// reports where class 0 rises above 0.95.
pub fn wake_word(model: &Model<'_>, wav_path: &Path) -> Result<Vec<Detection>> {
    let input = model.input_info(0)?;
    let (DType::I8, Some(q_in)) = (input.dtype, input.quant) else {
        bail!(
            "the wake-word front end feeds int8 models; this one takes {}",
            input.dtype.name()
        );
    };
    let out = model.output_info(0)?;
    let (DType::I8, Some(q_out)) = (out.dtype, out.quant) else {
        bail!("expected int8 class scores from the wake-word model");
    };
    let pcm = read_wav(wav_path, "wake-word", None)?;
    let mut arena = crate::arena_for(model)?;
    let mut it = Interpreter::new(model, arena.bytes_mut())?;
    let mut fe = SwwLogMel::new();
    let mut win = FeatureWindow::new();
    let mut det = Detector::new(0.95);
    let mut found = Vec::new();
    let mut n_win = 0usize;
    let mut failure: Option<anyhow::Error> = None;
    let bar = ember_cli::progress::bar(pcm.len().div_ceil(160) as u64, "listening (10 ms frames)");
    for chunk in pcm.chunks(160) {
        bar.inc(1);
        fe.push(chunk, |f| {
            if failure.is_some() {
                return;
            }
            let mut q = [0i8; SWW_MELS];
            SwwLogMel::quantize(f, q_in.scale, q_in.zero_point, &mut q);
            if !win.push(&q) {
                return;
            }
            let step = (|| -> Result<()> {
                let t = it.input_mut(0)?;
                if !win.copy_into(t.bytes) {
                    bail!("model input is not 30×40 bytes");
                }
                it.invoke()?;
                let o = it.output(0)?.as_i8()?;
                let p0 = (o[0] as i32 - q_out.zero_point) as f32 * q_out.scale;
                if let Some(d) = det.push(n_win, p0) {
                    found.push(d);
                }
                Ok(())
            })();
            if let Err(e) = step {
                failure = Some(e);
            }
            n_win += 1;
        });
    }
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(found)
}

/// The keyword-spotting MFCC `[49][10]` of a WAV clip's first second
/// (channel 0; a shorter clip is zero-padded).
pub fn kws_mfcc(wav_path: &Path) -> Result<[[f32; KWS_COEFFS]; KWS_FRAMES]> {
    let clip = read_wav(wav_path, "keyword", Some(KWS_SAMPLES))?;
    let mut pcm = vec![0i16; KWS_SAMPLES];
    let n = clip.len().min(KWS_SAMPLES);
    pcm[..n].copy_from_slice(&clip[..n]);
    let mut mfcc = [[0f32; KWS_COEFFS]; KWS_FRAMES];
    KwsMfcc::new().compute(&pcm, &mut mfcc);
    Ok(mfcc)
}

/// The wake-word log-mel frames (`[40]` every 10 ms) of a whole WAV
/// recording.
pub fn sww_frames(wav_path: &Path) -> Result<Vec<[f32; SWW_MELS]>> {
    let pcm = read_wav(wav_path, "wake-word", None)?;
    let mut fe = SwwLogMel::new();
    let mut frames = Vec::new();
    for chunk in pcm.chunks(160) {
        fe.push(chunk, |f| frames.push(*f));
    }
    Ok(frames)
}

/// Runs a keyword-spotting model on a WAV file.
pub fn listen(model: &Model<'_>, wav_path: &Path) -> Result<Heard> {
    let input = model.input_info(0)?;
    if input.dims() != [1, KWS_FRAMES, KWS_COEFFS, 1] {
        bail!(
            "no audio front end for a model input of shape {:?} (supported: keyword-spotting MFCC [1, 49, 10, 1], wake-word log-mel [1, 30, 1, 40], voice activity from raw audio [1, 576])",
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
    let mfcc = kws_mfcc(wav_path)?;

    let mut arena = crate::arena_for(model)?;
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
