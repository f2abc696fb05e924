//! `cargo xtask stream-check`: models that keep state between invokes,
//! run frame after frame on the simulated boards with their state in the
//! arena, every frame's outputs against the host's: the wake-word model
//! compiled with `--stream` over its recording four times (1,244 frames,
//! int8: identical), a float LSTM with its state bound over 1,000
//! frames (within 1e-5), and Silero VAD from audio: a 10 s recording
//! played as the microphone, chunked on the device, every chunk's speech
//! probability within 1e-4 of the host's and the same speech segments.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use ember_compiler::stream::StreamAxis;
use ember_compiler::{AlignedBlob, Options};
use ember_runtime::{Interpreter, Model};

use crate::boards::{self, Board};
use crate::firmware::{self, Prepared, Sensors};
use crate::{qemu, shared, step};

/// Compiles the wake-word model with `--stream` for `board`.
pub(crate) fn sww_stream_blob(board: &Board) -> Result<Vec<u8>> {
    let path = shared().join("models/mlperf-tiny/sww/sww_int8_qdq.onnx");
    let opts = Options {
        target: board.compile_target.parse().map_err(anyhow::Error::msg)?,
        stream: Some(StreamAxis::Auto),
        ..Default::default()
    };
    Ok(ember_compiler::compile_file(&path, &opts)
        .with_context(|| format!("cannot compile {} with --stream", path.display()))?
        .blob)
}

/// The wake-word test vectors' int8 log-mel frames (311 × 40 bytes).
pub(crate) fn sww_frames() -> Result<Vec<u8>> {
    let p = shared().join("vectors/sww_testvectors.npz");
    let mut z = ndarray_npy::NpzReader::new(std::fs::File::open(&p)?)?;
    let a: ndarray::ArrayD<i8> = z
        .by_name("lfbe_int8")
        .or_else(|_| z.by_name("lfbe_int8.npy"))?;
    Ok(a.iter().map(|&v| v as u8).collect())
}

/// Runs `frames` (whole frames of the model's one input) through `blob`
/// on the host, state kept, and returns every frame's outputs.
fn host_stream(blob: &[u8], frames: &[u8]) -> Result<Vec<u8>> {
    let aligned = AlignedBlob::new(blob);
    let m = Model::load(aligned.bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut arena = ember_compiler::aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = m.input_info(0).map_err(|e| anyhow::anyhow!("{e}"))?.size;
    let mut out = vec![];
    for f in frames.chunks(n) {
        let mut run = |it: &mut Interpreter<'_, '_>| -> Result<(), ember_runtime::Error> {
            it.input_mut(0)?.bytes.copy_from_slice(f);
            it.invoke()?;
            for o in 0..it.model().num_outputs() {
                out.extend_from_slice(it.output(o)?.bytes);
            }
            Ok(())
        };
        run(&mut it).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(out)
}

/// The line of `r` that starts with `prefix` (the firmware's summary);
/// the run's whole output and an error when it failed or has none.
fn summary<'r>(r: &'r qemu::Report, prefix: &str, name: &str, board: &Board) -> Result<&'r str> {
    let line = r.lines.iter().find(|l| l.starts_with(prefix));
    match line {
        Some(l) if r.exit_code == 0 && r.errors.is_empty() => Ok(l),
        _ => {
            for l in &r.lines {
                eprintln!("    {l}");
            }
            bail!(
                "{name} on {}: exit {}: {}",
                board.name,
                r.exit_code,
                r.errors.join("; ")
            )
        }
    }
}

/// The number after the word `k` in a firmware line (NaN if none).
fn field(line: &str, k: &str) -> f64 {
    let w: Vec<&str> = line.split_whitespace().collect();
    w.iter()
        .position(|x| *x == k)
        .and_then(|i| w.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// One stream case on `board`: returns instructions per frame.
fn run_case(board: &Board, name: &str, blob: Vec<u8>, frames: Vec<u8>, tol: f32) -> Result<u64> {
    let expect = host_stream(&blob, &frames)?;
    let mut input = frames;
    input.extend_from_slice(&tol.to_le_bytes());
    let p = Prepared {
        name: name.to_string(),
        blob,
        input,
        expect,
        expect_source: "the host, frame by frame".into(),
    };
    let elf = firmware::build_bin(board, &p, "ember-stream", &Sensors::default())?;
    step(&format!("ember-stream: {name} on {}", board.name));
    let r = qemu::run(board, &elf, Duration::from_secs(1200))?;
    let summary = summary(&r, "ember-stream ", name, board)?;
    let field = |k: &str| field(summary, k);
    let frames = field("frames") as u64;
    let per_frame = r.instructions(field("ticks") as u64) / frames.max(1);
    println!(
        "    {name:<12} {:<12} {frames} frames, {} mismatching, max |diff| {:e}, {per_frame} instructions per frame",
        board.name,
        field("mismatches"),
        field("max-abs-diff")
    );
    Ok(per_frame)
}

/// Compiles Silero VAD's 16 kHz model for one chunk, state bound; with
/// `int8_lstm`, its LSTM first rewritten as onnxruntime's
/// `quantize_dynamic` rewrites it (`DynamicQuantizeLSTM`, int8 weights).
fn vad_blob(target: &str, int8_lstm: bool) -> Result<Vec<u8>> {
    let path = crate::setup::voice_models()?.join("silero_vad_16k_sequence.onnx");
    let mut onnx =
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if int8_lstm {
        onnx = ember_tests::onnx::dynamic_quantize_lstm(&onnx, 0);
    }
    let mut opts = Options {
        target: target.parse().map_err(anyhow::Error::msg)?,
        ..Default::default()
    };
    opts.input_shapes
        .insert("input".into(), vec![1, ember_audio::vad::VAD_INPUT]);
    opts.state.add("auto").map_err(anyhow::Error::msg)?;
    Ok(ember_compiler::compile(&onnx, &opts)
        .with_context(|| format!("cannot compile {}", path.display()))?
        .blob)
}

/// Silero VAD (`int8_lstm`: with int8 LSTM weights) on `board` from the
/// keyword recording: returns instructions per 32 ms chunk.
fn run_vad(board: &Board, int8_lstm: bool) -> Result<u64> {
    use ember_audio::vad::Segmenter;
    let name = if int8_lstm {
        "silero-vad-i8lstm"
    } else {
        "silero-vad"
    };
    let pcm = ember_tests::voice::keyword_recording(&shared()).map_err(anyhow::Error::msg)?;
    let blob = vad_blob(board.compile_target, int8_lstm)?;
    // The host: the same chunks through the same blob.
    let probs = ember_tests::voice::probabilities(&blob, &pcm)
        .map_err(|e| anyhow::anyhow!("{name} on the host: {e}"))?;
    let mut seg = Segmenter::default();
    let mut want: Vec<(u32, u32)> = vec![];
    for s in probs.iter().filter_map(|&p| seg.push(p)) {
        want.push(((s.start_s() * 1000.0) as u32, (s.end_s() * 1000.0) as u32));
    }
    if let Some(s) = seg.finish() {
        want.push(((s.start_s() * 1000.0) as u32, (s.end_s() * 1000.0) as u32));
    }
    let tol = 1e-4f32;
    let p = Prepared {
        name: name.into(),
        blob,
        input: tol.to_le_bytes().to_vec(),
        expect: probs.iter().flat_map(|p| p.to_le_bytes()).collect(),
        expect_source: "the host, chunk by chunk".into(),
    };
    let wav = crate::apps::write_wav(&pcm, 16_000, std::ffi::OsStr::new("keywords_v0.wav"))?;
    let sensors = Sensors {
        wav: Some(wav),
        ..Default::default()
    };
    let elf = firmware::build_bin(board, &p, "ember-vad", &sensors)?;
    step(&format!("ember-vad: {name} on {}", board.name));
    let r = qemu::run(board, &elf, Duration::from_secs(1200))?;
    let summary = summary(&r, "ember-vad ", name, board)?;
    let got: Vec<(u32, u32)> = r
        .lines
        .iter()
        .filter(|l| l.starts_with("ember-speech "))
        .map(|l| (field(l, "start-ms") as u32, field(l, "end-ms") as u32))
        .collect();
    if got != want {
        bail!(
            "silero-vad on {}: speech at {got:?} (ms), the host found {want:?}",
            board.name
        );
    }
    let chunks = field(summary, "chunks") as u64;
    let per_chunk = r.instructions(field(summary, "ticks") as u64) / chunks.max(1);
    println!(
        "    {name:<12} {:<12} {chunks} chunks, {} mismatching, max |diff| {:e}, {} speech segments as on the host, {per_chunk} instructions per 32 ms chunk",
        board.name,
        field(summary, "mismatches"),
        field(summary, "max-abs-diff"),
        got.len()
    );
    Ok(per_chunk)
}

/// The stream cases on each simulated board named (default: the three).
pub(crate) fn stream_check_cmd(names: &[String]) -> Result<()> {
    let names: Vec<String> = if names.is_empty() {
        ["mps3-an547", "mps2-an386", "virt-a53"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        names.to_vec()
    };
    use ember_tests::streaming::{data, lstm_model, FEATURES};
    let lstm_onnx = lstm_model(1, ["h_in", "c_in", "h_out", "c_out"]);
    let sww = sww_frames()?;
    for name in &names {
        let board = boards::ready_simulated(name, "stream-check")?;
        let mut frames = vec![];
        for _ in 0..4 {
            frames.extend_from_slice(&sww);
        }
        run_case(board, "sww-stream", sww_stream_blob(board)?, frames, 0.0)?;
        let mut opts = Options {
            target: board.compile_target.parse().map_err(anyhow::Error::msg)?,
            ..Default::default()
        };
        for s in ["h_out=h_in", "c_out=c_in"] {
            opts.state.add(s).map_err(anyhow::Error::msg)?;
        }
        let blob = ember_compiler::compile(&lstm_onnx, &opts)
            .context("compiling the streaming LSTM")?
            .blob;
        let x: Vec<u8> = data(1000 * FEATURES, 9, 1.0)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        run_case(board, "lstm-stream", blob, x, 1e-5)?;
        run_vad(board, false)?;
        run_vad(board, true)?;
    }
    Ok(())
}
