//! The voice activity recording and host run shared by the Silero VAD
//! test, the CLI test and `cargo xtask stream-check`.

use std::path::Path;

use ember_audio::vad::VadFramer;
use ember_audio::wav::Wav;
use ember_compiler::{aligned_arena, AlignedBlob};
use ember_runtime::{Interpreter, Model};

/// The ten `audio/keywords/*_v0.wav` clips of the shared data `shared`,
/// sorted by name, one after the other: 10 s at 16 kHz, one spoken word
/// in each second.
pub fn keyword_recording(shared: &Path) -> Result<Vec<i16>, String> {
    let dir = shared.join("audio/keywords");
    let mut clips: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_v0.wav"))
        .collect();
    clips.sort();
    if clips.len() != 10 {
        return Err(format!(
            "{}: {} clips *_v0.wav, expected 10",
            dir.display(),
            clips.len()
        ));
    }
    let mut pcm = vec![];
    for c in clips {
        let bytes = std::fs::read(&c).map_err(|e| format!("{}: {e}", c.display()))?;
        let w = Wav::parse(&bytes).map_err(|e| format!("{}: {e:?}", c.display()))?;
        if (w.sample_rate, w.channels) != (16_000, 1) {
            return Err(format!("{}: not 16 kHz mono", c.display()));
        }
        let mut s = vec![0i16; w.frames()];
        w.channel0_into(&mut s);
        pcm.extend(s);
    }
    Ok(pcm)
}

/// Runs `pcm` through a compiled voice activity model on the host, chunk
/// by chunk with its state kept (as `ember listen` and the `ember-vad`
/// firmware feed it): one speech probability per chunk.
pub fn probabilities(blob: &[u8], pcm: &[i16]) -> Result<Vec<f32>, String> {
    let blob = AlignedBlob::new(blob);
    let m = Model::load(blob.bytes()).map_err(|e| e.to_string())?;
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).map_err(|e| e.to_string())?;
    let (mut probs, mut failure) = (vec![], None);
    VadFramer::new().push(pcm, |x| {
        let r = (|| -> Result<f32, ember_runtime::Error> {
            it.input_mut(0)?.copy_from(x)?;
            it.invoke()?;
            Ok(it.output(0)?.as_f32()?[0])
        })();
        match r {
            Ok(p) => probs.push(p),
            Err(e) => failure = Some(e.to_string()),
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(probs),
    }
}
