//! The voice and vision apps on a simulated board: `demo` (keyword from a
//! WAV), `see` (label from a PNG), `wake` (wake word along a recording).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{boards, firmware, qemu, root, shared, step};

/// Runs `ember-see` with `image` as the camera frame; returns the label and
/// the report.
pub(crate) fn see_cmd(image: &Path, model: &str, board: &str) -> Result<(String, qemu::Report)> {
    if !matches!(model, "vww" | "ic") {
        bail!("ember-see runs the zoo's vision models: vww or ic (not '{model}')");
    }
    let board = boards::ready_simulated(board, "see")?;
    let p = firmware::prepare(model, board, None, None, 0)?;
    let sensors = firmware::vision_sensors(model, image)?;
    let elf = firmware::build_bin(board, &p, "ember-see", &sensors)?;
    step(&format!(
        "run on {}: {} as the camera frame → crop, resize, quantize → {model}",
        board.about,
        image.display()
    ));
    let r = qemu::run(board, &elf, Duration::from_secs(600))?;
    if r.exit_code != 0 || !r.errors.is_empty() {
        for l in &r.lines {
            eprintln!("    {l}");
        }
        bail!(
            "the vision firmware failed (exit {}): {}",
            r.exit_code,
            r.errors.join("; ")
        );
    }
    let saw = r
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("ember-saw "))
        .context("the firmware reported no label")?;
    let label = saw.split_whitespace().next().unwrap_or("?").to_string();
    for l in r
        .lines
        .iter()
        .filter(|l| l.starts_with("ember-see ") || l.starts_with("ember-saw "))
    {
        eprintln!("    {l}");
    }
    if let Some(see) = r.lines.iter().find(|l| l.starts_with("ember-see ")) {
        let w: Vec<&str> = see.split_whitespace().collect();
        let t = |k: &str| {
            w.iter()
                .position(|x| *x == k)
                .and_then(|i| w.get(i + 1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        eprintln!(
            "    preprocessing {} instructions, model {} instructions",
            r.instructions(t("preprocess-ticks")),
            r.instructions(t("model-ticks"))
        );
    }
    Ok((label, r))
}

/// Writes channel 0 of a 16-bit PCM WAV as a mono WAV (half the flash for
/// the stereo MLPerf recordings).
pub(crate) fn mono_wav(src: &Path) -> Result<PathBuf> {
    let bytes = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
    let w = ember_audio::wav::Wav::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", src.display()))?;
    let mut pcm = vec![0i16; w.frames()];
    w.channel0_into(&mut pcm);
    write_wav(
        &pcm,
        w.sample_rate,
        src.file_name().context("no file name")?,
    )
}

/// Writes `pcm` as a mono 16-bit WAV named `name` under `target/fw/wav/`
/// and returns its path.
pub(crate) fn write_wav(pcm: &[i16], rate: u32, name: &std::ffi::OsStr) -> Result<PathBuf> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    let dir = root().join("target/fw/wav");
    std::fs::create_dir_all(&dir)?;
    let dst = dir.join(name);
    std::fs::write(&dst, out)?;
    Ok(dst)
}

/// One run of the wake-word firmware with `model` (`sww`, windowed, or
/// `sww-stream`): the detections' windows, and the front end's and the
/// model's instructions per second of audio.
struct WakeRun {
    windows: Vec<usize>,
    frontend_per_s: f64,
    model_per_s: f64,
}

fn wake_run(wav: &Path, board: &'static crate::boards::Board, model: &str) -> Result<WakeRun> {
    let p = firmware::prepare(model, board, None, None, 0)?;
    let sensors = firmware::Sensors {
        wav: Some(mono_wav(wav)?),
        ..Default::default()
    };
    let elf = firmware::build_bin(board, &p, "ember-wake", &sensors)?;
    step(&format!(
        "run on {}: {} as the microphone → log-mel → {model}",
        board.about,
        wav.display()
    ));
    let r = qemu::run(board, &elf, Duration::from_secs(1200))?;
    if r.exit_code != 0 || !r.errors.is_empty() {
        for l in &r.lines {
            eprintln!("    {l}");
        }
        bail!(
            "the wake-word firmware failed (exit {}): {}",
            r.exit_code,
            r.errors.join("; ")
        );
    }
    let field = |line: &str, k: &str| -> u64 {
        let w: Vec<&str> = line.split_whitespace().collect();
        w.iter()
            .position(|x| *x == k)
            .and_then(|i| w.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut windows = Vec::new();
    for l in r.lines.iter().filter(|l| l.starts_with("ember-detection ")) {
        println!(
            "    {model}: wake word at {:.3} s (window {}, score {})",
            field(l, "time-ms") as f64 / 1000.0,
            field(l, "window"),
            l.rsplit(' ').next().unwrap_or("?")
        );
        windows.push(field(l, "window") as usize);
    }
    let summary = r
        .lines
        .iter()
        .find(|l| l.starts_with("ember-wake "))
        .context("the firmware reported no summary")?;
    let secs = (field(summary, "samples") as f64 / 16_000.0).max(1e-9);
    Ok(WakeRun {
        windows,
        frontend_per_s: r.instructions(field(summary, "frontend-ticks")) as f64 / secs,
        model_per_s: r.instructions(field(summary, "model-ticks")) as f64 / secs,
    })
}

/// `cargo xtask wake`: the wake-word firmware over a recording, with the
/// windowed model (the whole 30-frame window per new frame) and with the
/// same model compiled with `--stream` (one frame per invoke); the
/// detections must agree. Returns the detections' windows.
pub(crate) fn wake_cmd(wav: Option<&Path>, board: &str) -> Result<Vec<usize>> {
    let default = shared().join("audio/mlperf/short_wav_easy10s.wav");
    let wav = wav.unwrap_or(&default);
    let board = boards::ready_simulated(board, "wake")?;
    let before = wake_run(wav, board, "sww")?;
    let after = wake_run(wav, board, firmware::SWW_STREAM)?;
    let line = |what: &str, w: &WakeRun| {
        let per_s = w.frontend_per_s + w.model_per_s;
        println!(
            "{what:<9} front end {:.2} M + model {:.2} M = {:.2} M instructions per second of audio: real-time factor {:.4} on a 100 MHz core at 1 instruction per cycle",
            w.frontend_per_s / 1e6,
            w.model_per_s / 1e6,
            per_s / 1e6,
            per_s / 1e8
        );
    };
    println!("\nwake word on {}, {}:", board.name, wav.display());
    line("windowed", &before);
    line("streamed", &after);
    println!(
        "the streamed model takes {:.3}× the windowed model's instructions; detections in windows {:?}",
        after.model_per_s / before.model_per_s.max(1.0),
        after.windows
    );
    if after.windows != before.windows {
        bail!(
            "the streamed model detected in windows {:?}, the windowed one in {:?}",
            after.windows,
            before.windows
        );
    }
    Ok(after.windows)
}

/// A keyword clip by name: `audio/keywords/NAME.wav`, or the MLPerf
/// "unknown word" clips in `audio/mlperf/`.
pub(crate) fn clip_path(name: &str) -> PathBuf {
    let k = shared().join(format!("audio/keywords/{name}.wav"));
    if k.exists() {
        return k;
    }
    shared().join(format!("audio/mlperf/{name}.wav"))
}

/// The demo: a spoken keyword through the on-device audio front end and the
/// compiled int8 model, on a simulated board (default: the Cortex-M55).
pub(crate) fn demo(clip: Option<&str>, board: &str) -> Result<()> {
    let clip = clip.unwrap_or("yes_v0");
    let wav = clip_path(clip);
    if !wav.exists() {
        bail!(
            "no clip {} (the clips are audio/keywords/WORD_vN.wav and audio/mlperf/*.wav in the shared data)",
            wav.display()
        );
    }
    let board = boards::ready_simulated(board, "the demo")?;
    step("compile kws_int8_qdq.onnx (the MLPerf Tiny keyword spotter)");
    let p = firmware::prepare("kws", board, None, None, 0)?;
    let sensors = firmware::Sensors {
        wav: Some(wav),
        ..Default::default()
    };
    let elf = firmware::build_bin(board, &p, "ember-kws", &sensors)?;
    step(&format!(
        "run on {}: audio/keywords/{clip}.wav as the microphone → MFCC → int8 model",
        board.about
    ));
    let r = qemu::run(board, &elf, Duration::from_secs(300))?;
    if r.exit_code != 0 || !r.errors.is_empty() {
        for l in &r.lines {
            eprintln!("    {l}");
        }
        bail!(
            "the keyword firmware failed (exit {}): {}",
            r.exit_code,
            r.errors.join("; ")
        );
    }
    let heard = r
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("ember-heard "))
        .context("the firmware reported no word")?;
    let kws = r
        .lines
        .iter()
        .find(|l| l.starts_with("ember-kws "))
        .context("the firmware reported no timings")?;
    let words: Vec<&str> = kws.split_whitespace().collect();
    let ticks = |k: &str| -> u64 {
        words
            .iter()
            .position(|w| *w == k)
            .and_then(|i| words.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fe = r.instructions(ticks("frontend-ticks"));
    let model = r.instructions(ticks("model-ticks"));
    let mut h = heard.split_whitespace();
    let word = h.next().unwrap_or("?");
    let score: f32 = h.nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    println!(
        "\n{clip}.wav → heard \"{word}\" (score {score:.3}) on {}",
        board.name
    );
    println!(
        "  front end (MFCC) {fe} instructions + model {model} instructions = {} instructions per second of audio ({:.1} % of a 100 MHz core)",
        fe + model,
        (fe + model) as f64 / 1e6
    );
    Ok(())
}

/// Runs `ember-kernel-check` on a simulated board: generated cases through
/// the reference and the optimized kernels of that board's build, compared
/// byte for byte on the device. Returns the summary line.
pub(crate) fn kernel_check_cmd(board: &str) -> Result<String> {
    let board = boards::ready_simulated(board, "kernel-check")?;
    // The firmware library embeds a model; the smallest one will do.
    let p = firmware::prepare("ad", board, None, None, 0)?;
    let elf = firmware::build_bin(board, &p, "ember-kernel-check", &Default::default())?;
    step(&format!(
        "run on {}: optimized kernels vs reference on generated cases",
        board.about
    ));
    let r = qemu::run(board, &elf, Duration::from_secs(600))?;
    for l in r.lines.iter().filter(|l| l.starts_with("ember-kernel-")) {
        println!("    {l}");
    }
    if r.exit_code != 0 || !r.errors.is_empty() {
        bail!(
            "optimized kernels differ from the reference on {} (exit {}): {}",
            board.name,
            r.exit_code,
            r.errors.join("; ")
        );
    }
    r.lines
        .iter()
        .find(|l| l.starts_with("ember-kernel-check "))
        .cloned()
        .context("the firmware reported no summary")
}
