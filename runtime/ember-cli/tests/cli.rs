//! The `ember` command-line contract: compile / run / inspect, exit codes,
//! one-line errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ember_tests::{mlperf, vectors};
use ndarray::{ArrayD, Axis};
use ndarray_npy::{NpzReader, ReadNpyExt, WriteNpyExt};

/// Runs the `ember` binary. When the tests themselves run under an emulator
/// (`cargo xtask test` runs them for aarch64 Linux under `qemu-aarch64`),
/// `EMBER_EXE_RUNNER` names the emulator command for the child too, since
/// the kernel cannot execute a foreign binary directly.
fn ember(args: &[&str]) -> Output {
    let exe = env!("CARGO_BIN_EXE_ember");
    let runner = std::env::var("EMBER_EXE_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut cmd = match words.next() {
        Some(emulator) => {
            let mut c = Command::new(emulator);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(args).output().expect("run ember")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ember-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A failure is exit status 1 with exactly one `error:` line on stderr.
fn assert_clean_failure(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

/// Compiles a zoo model into a file of its own: tests run in parallel, and
/// two of them writing the same blob while a third reads it would race.
fn compile(model: &str, file: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = tmp(&format!("{model}-{n}.ember"));
    let o = ember(&[
        "compile",
        s(&mlperf(model, file)),
        "-o",
        s(&out),
        "--target",
        "cortex-m55",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn compile_run_inspect_kws() {
    let blob = compile("kws", "kws_int8_qdq.onnx");
    let x: ArrayD<i8> = vectors("kws", "mfcc_int8");
    let want: ArrayD<i8> = vectors("kws", "int8_tflite_ref_out");
    for row in [0usize, 27, 50] {
        let input = tmp(&format!("kws_in_{row}.npy"));
        x.index_axis(Axis(0), row)
            .to_owned()
            .insert_axis(Axis(0))
            .write_npy(std::fs::File::create(&input).unwrap())
            .unwrap();
        let output = tmp(&format!("kws_out_{row}.npy"));
        let o = ember(&[
            "run",
            s(&blob),
            "--input",
            s(&input),
            "--output",
            s(&output),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let y = ArrayD::<i8>::read_npy(std::fs::File::open(&output).unwrap()).unwrap();
        assert_eq!(y.shape(), &[1, 12]);
        let w: Vec<i8> = want.index_axis(Axis(0), row).iter().copied().collect();
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), w, "row {row}");
    }
    // Without --output the values are printed.
    let input = tmp("kws_in_0.npy");
    let o = ember(&["run", s(&blob), "--input", s(&input)]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Identity i8 [1, 12]"));
    // The table and the JSON.
    let o = ember(&["inspect", s(&blob)]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("DepthwiseConv2d") && table.contains("arena bytes"),
        "{table}"
    );
    let o = ember(&["inspect", s(&blob), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["macs"], 2_664_780);
    assert_eq!(v["layers"].as_array().unwrap().len(), 12);
    assert_eq!(
        v["blob_bytes"].as_u64().unwrap(),
        std::fs::metadata(&blob).unwrap().len()
    );
}

/// Arena sizes must not exceed TensorFlow Lite Micro's for the same models.
#[test]
fn arenas_are_smaller_than_tflite_micro() {
    for (model, tflm) in [
        ("kws", 22_772u64),
        ("vww", 100_660),
        ("ic", 54_340),
        ("ad", 2_260),
        ("sww", 15_252),
    ] {
        let blob = compile(model, &format!("{model}_int8_qdq.onnx"));
        let o = ember(&["inspect", s(&blob), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let arena = v["arena_bytes"].as_u64().unwrap();
        eprintln!(
            "{model}: arena {arena} B = {:.2}× TFLM's {tflm} B, blob {} B",
            arena as f64 / tflm as f64,
            v["blob_bytes"]
        );
        assert!(arena <= tflm, "{model}: arena {arena} > TFLM {tflm}");
    }
}

#[test]
fn run_accepts_onnx_directly() {
    let x: ArrayD<f32> = vectors("ic", "input_float");
    let input = tmp("ic_in.npy");
    x.index_axis(Axis(0), 0)
        .to_owned()
        .insert_axis(Axis(0))
        .write_npy(std::fs::File::create(&input).unwrap())
        .unwrap();
    let output = tmp("ic_out.npy");
    let o = ember(&[
        "run",
        s(&mlperf("ic", "ic_float32.onnx")),
        "--input",
        s(&input),
        "--output",
        s(&output),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let y = ArrayD::<f32>::read_npy(std::fs::File::open(&output).unwrap()).unwrap();
    let want: ArrayD<f32> = vectors("ic", "float_onnx_out");
    for (a, b) in y.iter().zip(want.index_axis(Axis(0), 0).iter()) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
fn several_outputs_go_to_an_npz() {
    let model = tmp("two_out.onnx");
    let bytes = ember_tests::tiny_onnx(
        &[1, 4],
        &[
            ("Relu", "r", &["x"], &["relu_out"]),
            ("Add", "a", &["x", "x"], &["twice"]),
        ],
        &["relu_out", "twice"],
    );
    std::fs::write(&model, bytes).unwrap();
    let input = tmp("two_in.npy");
    ndarray::arr2(&[[-1.0f32, 2.0, -3.0, 4.0]])
        .into_dyn()
        .write_npy(std::fs::File::create(&input).unwrap())
        .unwrap();
    let out = tmp("two_out.npz");
    let o = ember(&["run", s(&model), "--input", s(&input), "--output", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut z = NpzReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    let r: ArrayD<f32> = z
        .by_name("relu_out")
        .or_else(|_| z.by_name("relu_out.npy"))
        .unwrap();
    let t: ArrayD<f32> = z
        .by_name("twice")
        .or_else(|_| z.by_name("twice.npy"))
        .unwrap();
    assert_eq!(
        r.iter().copied().collect::<Vec<_>>(),
        vec![0.0, 2.0, 0.0, 4.0]
    );
    assert_eq!(
        t.iter().copied().collect::<Vec<_>>(),
        vec![-2.0, 4.0, -6.0, 8.0]
    );
    // Two outputs do not fit one .npy.
    let o = ember(&[
        "run",
        s(&model),
        "--input",
        s(&input),
        "--output",
        s(&tmp("two.npy")),
    ]);
    assert_clean_failure(&o, "write them to an .npz");
    // Non-finite float inputs are refused with their index, unless allowed.
    let nan = tmp("nan_in.npy");
    ndarray::arr2(&[[1.0f32, 2.0, f32::NAN, 4.0]])
        .into_dyn()
        .write_npy(std::fs::File::create(&nan).unwrap())
        .unwrap();
    let o = ember(&["run", s(&model), "--input", s(&nan)]);
    assert_clean_failure(&o, "element 2 (index [0, 2]) is NaN");
    let o = ember(&["run", s(&model), "--input", s(&nan), "--allow-nonfinite"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // One output asked for as .npz is an archive too (issue 24: it was
    // written as an .npy under the .npz name).
    let one = tmp("one_out.onnx");
    std::fs::write(
        &one,
        ember_tests::tiny_onnx(
            &[1, 4],
            &[("Relu", "r", &["x"], &["relu_out"])],
            &["relu_out"],
        ),
    )
    .unwrap();
    let out = tmp("one_out.npz");
    let o = ember(&["run", s(&one), "--input", s(&input), "--output", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut z = NpzReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    let r: ArrayD<f32> = z
        .by_name("relu_out")
        .or_else(|_| z.by_name("relu_out.npy"))
        .unwrap();
    assert_eq!(r.len(), 4);
}

#[test]
fn bad_inputs_fail_with_one_line() {
    let blob = compile("kws", "kws_int8_qdq.onnx");
    // Missing model file.
    assert_clean_failure(
        &ember(&["run", "/nonexistent.ember", "--input", "x.npy"]),
        "cannot read",
    );
    // Wrong dtype.
    let f = tmp("f32.npy");
    ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 49, 10, 1]))
        .write_npy(std::fs::File::create(&f).unwrap())
        .unwrap();
    assert_clean_failure(
        &ember(&["run", s(&blob), "--input", s(&f)]),
        "expected a i8 array",
    );
    // Wrong shape.
    let f = tmp("shape.npy");
    ArrayD::<i8>::zeros(ndarray::IxDyn(&[1, 10, 49, 1]))
        .write_npy(std::fs::File::create(&f).unwrap())
        .unwrap();
    assert_clean_failure(
        &ember(&["run", s(&blob), "--input", s(&f)]),
        "does not match the model input",
    );
    // A header promising far more data than the file holds: refused
    // before anything is allocated.
    let mut dict =
        "{'descr': '|i1', 'fortran_order': False, 'shape': (1000000, 1000000), }".to_string();
    while !(10 + dict.len() + 1).is_multiple_of(64) {
        dict.push(' ');
    }
    dict.push('\n');
    let mut lie = b"\x93NUMPY\x01\x00".to_vec();
    lie.extend((dict.len() as u16).to_le_bytes());
    lie.extend(dict.bytes());
    lie.extend([0u8; 490]);
    let bomb = tmp("bomb.npy");
    std::fs::write(&bomb, &lie).unwrap();
    assert_clean_failure(
        &ember(&["run", s(&blob), "--input", s(&bomb)]),
        "the file holds",
    );
    // Wrong number of inputs.
    assert_clean_failure(
        &ember(&["run", s(&blob), "--input", s(&f), "--input", s(&f)]),
        "has 1 inputs, 2 given",
    );
    // Corrupted blob.
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    let bad = tmp("corrupt.ember");
    std::fs::write(&bad, &bytes).unwrap();
    assert_clean_failure(&ember(&["inspect", s(&bad)]), "checksum");
    std::fs::write(&bad, &bytes[..100]).unwrap();
    assert_clean_failure(&ember(&["inspect", s(&bad)]), "truncated");
    // A blob declaring a 4 GiB arena (checksum recomputed): refused, not
    // allocated (issue 24).
    let mut big = std::fs::read(&blob).unwrap();
    big[20..24].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let c = ember_runtime::format::crc32(&big[16..]);
    big[12..16].copy_from_slice(&c.to_le_bytes());
    let bad = tmp("big_arena.ember");
    std::fs::write(&bad, &big).unwrap();
    let zeros = tmp("kws_zeros.npy");
    ArrayD::<i8>::zeros(ndarray::IxDyn(&[1, 49, 10, 1]))
        .write_npy(std::fs::File::create(&zeros).unwrap())
        .unwrap();
    assert_clean_failure(
        &ember(&["run", s(&bad), "--input", s(&zeros)]),
        "the model's arena needs 4.0 GiB, over the memory budget of 2.0 GiB",
    );
    // Not ONNX.
    let junk = tmp("junk.onnx");
    std::fs::write(&junk, b"\x08\x07garbage").unwrap();
    assert_clean_failure(
        &ember(&["compile", s(&junk), "-o", s(&tmp("j.ember"))]),
        "ONNX",
    );
    // Unknown target and rounding.
    let model = mlperf("kws", "kws_int8_qdq.onnx");
    assert_clean_failure(
        &ember(&[
            "compile",
            s(&model),
            "-o",
            s(&tmp("t.ember")),
            "--target",
            "pentium",
        ]),
        "unknown target",
    );
    assert_clean_failure(
        &ember(&[
            "compile",
            s(&model),
            "-o",
            s(&tmp("t.ember")),
            "--rounding",
            "banker",
        ]),
        "unknown rounding",
    );
}

#[test]
fn list_ops_prints_the_operator_table() {
    let o = ember(&["--list-ops"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let ops: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    for op in [
        "Conv",
        "Gather",
        "LayerNormalization",
        "QuantizeLinear",
        "Where",
    ] {
        assert!(ops.contains(&op), "{op} missing from:\n{out}");
    }
    assert!(ops.windows(2).all(|w| w[0] < w[1]), "not sorted:\n{out}");
    assert!(out.lines().all(|l| l.contains(" | ")), "{out}");
    // The subcommand prints the same.
    let o = ember(&["list-ops"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8(o.stdout).unwrap(), out);
}

#[test]
fn rounding_option_is_recorded() {
    let out = tmp("kws_onnx_rounding.ember");
    let o = ember(&[
        "compile",
        s(&mlperf("kws", "kws_int8_qdq.onnx")),
        "-o",
        s(&out),
        "--rounding",
        "onnx",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ember(&["inspect", s(&out), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rounding"], "onnx");
    let o = ember(&["inspect", s(&compile("kws", "kws_int8_qdq.onnx")), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rounding"], "tflite");
}

#[test]
fn listen_recognises_spoken_keywords() {
    let blob = compile("kws", "kws_int8_qdq.onnx");
    let audio = ember_tests::shared_dir().join("audio/keywords");
    for (clip, word) in [("yes_v0", "yes"), ("stop_v2", "stop"), ("left_v1", "left")] {
        let o = ember(&[
            "listen",
            s(&blob),
            s(&audio.join(format!("{clip}.wav"))),
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["label"], word, "{clip}");
        assert!(v["score"].as_f64().unwrap() > 0.5);
    }
    // A WAV at another rate is resampled: the clip at 44.1 kHz (made with
    // the band-limited resampler) is still "yes"; an absurd rate is refused.
    let bytes = std::fs::read(audio.join("yes_v0.wav")).unwrap();
    let w = ember_audio::wav::Wav::parse(&bytes).unwrap();
    let mut pcm = vec![0i16; w.frames()];
    w.channel0_into(&mut pcm);
    let mut up = vec![0i16; ember_audio::resample::resampled_len(pcm.len(), 16_000, 44_100)];
    ember_audio::resample::resample(&pcm, 16_000, 44_100, &mut up);
    let hi = tmp("44k.wav");
    std::fs::write(&hi, wav_bytes(&up, 44_100)).unwrap();
    let o = ember(&["listen", s(&blob), s(&hi), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["label"], "yes", "44.1 kHz clip");
    assert!(String::from_utf8_lossy(&o.stderr).contains("resampled"));
    // Work in proportion to what the model reads (issue 24: a ten-minute
    // 44.1 kHz recording was resampled whole, 34 s): the same clip followed
    // by three minutes of noise (kept short: CI also runs this under
    // qemu-aarch64) gives the same answer as the clip alone, at once.
    let mut long = up.clone();
    let mut x = 1u32;
    long.extend((0..44_100 * 180).map(|_| {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (x >> 20) as i16 - 2048
    }));
    let long_wav = tmp("long44k.wav");
    std::fs::write(&long_wav, wav_bytes(&long, 44_100)).unwrap();
    let t = std::time::Instant::now();
    let o = ember(&["listen", s(&blob), s(&long_wav), "--json"]);
    let took = t.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let long_v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(long_v, v, "a long recording reads as its first second");
    assert!(took.as_secs() < 10, "{took:?}");
    // 24-bit PCM (as audio tools often write) reads as the same clip.
    let mut b24 = wav_bytes(&pcm, 16_000);
    b24.truncate(44);
    b24[34] = 24; // bits per sample
    b24[32] = 3; // block align
    b24[28..32].copy_from_slice(&(16_000u32 * 3).to_le_bytes());
    b24[40..44].copy_from_slice(&((pcm.len() * 3) as u32).to_le_bytes());
    for v in &pcm {
        let w = (*v as i32) << 8;
        b24.extend_from_slice(&w.to_le_bytes()[..3]);
    }
    let p24 = tmp("24bit.wav");
    std::fs::write(&p24, &b24).unwrap();
    let o = ember(&["listen", s(&blob), s(&p24), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["label"], "yes", "24-bit clip");
    let mut odd = bytes.clone();
    odd[24..28].copy_from_slice(&1000u32.to_le_bytes());
    let bad = tmp("1k.wav");
    std::fs::write(&bad, &odd).unwrap();
    assert_clean_failure(&ember(&["listen", s(&blob), s(&bad)]), "1000 Hz");
    // A model without an audio front end.
    let vww = compile("vww", "vww_int8_qdq.onnx");
    assert_clean_failure(
        &ember(&["listen", s(&vww), s(&audio.join("yes_v0.wav"))]),
        "no audio front end",
    );
}

/// `ember see`: PNG in, label out, for both vision models of the zoo; the
/// label equals TFLite's reference output for that image.
#[test]
fn see_recognises_images_like_the_reference() {
    let images = ember_tests::shared_dir().join("images");
    for (model, size, labels) in [
        ("vww", 96, vec!["notperson", "person"]),
        (
            "ic",
            32,
            vec![
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ],
        ),
    ] {
        let blob = compile(model, &format!("{model}_int8_qdq.onnx"));
        let golden: ArrayD<i8> = vectors(model, "int8_tflite_ref_out");
        for (row, name) in ember_tests::row_names(model).iter().enumerate().take(4) {
            let want =
                labels[ember_tests::argmax(golden.index_axis(Axis(0), row).as_slice().unwrap())];
            let png = images.join(format!("{name}_{size}.png"));
            let o = ember(&["see", s(&blob), s(&png), "--json"]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["label"], want, "{model} {name}");
        }
        // A picture of another size is centre-cropped and resized, not refused.
        let other = images.join(format!(
            "astronaut_{}.png",
            if size == 96 { 32 } else { 96 }
        ));
        let o = ember(&["see", s(&blob), s(&other), "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // A non-finite normalization is refused (issue 24: it gave a label).
        let o = ember(&["see", s(&blob), s(&other), "--pixel-scale", "NaN"]);
        assert_clean_failure(&o, "not a finite number");
    }
    // Not a PNG; a model without an image input.
    let vww = compile("vww", "vww_int8_qdq.onnx");
    let bad = tmp("not.png");
    std::fs::write(&bad, b"hello").unwrap();
    assert_clean_failure(&ember(&["see", s(&vww), s(&bad)]), "not a readable PNG");
    let kws = compile("kws", "kws_int8_qdq.onnx");
    assert_clean_failure(
        &ember(&["see", s(&kws), s(&images.join("astronaut_96.png"))]),
        "no image front end",
    );
}

/// `ember listen` on a streaming model: the wake-word detections along the
/// MLPerf 10 s clip are those of TFLite's reference outputs.
#[test]
fn listen_detects_the_wake_word_along_a_recording() {
    let blob = compile("sww", "sww_int8_qdq.onnx");
    let wav = ember_tests::shared_dir().join("audio/mlperf/short_wav_easy10s.wav");
    // The recording (640 KB) is held whole, bytes and samples: refused
    // under a budget smaller than twice the file, before it is read.
    assert_clean_failure(
        &ember(&["listen", s(&blob), s(&wav), "--max-memory", "500K"]),
        "(its bytes and its samples) needs",
    );
    let o = ember(&["listen", s(&blob), s(&wav), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<f64> = v["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["time_s"].as_f64().unwrap())
        .collect();
    // The same detector over the reference outputs (class 0 = "marvin",
    // output scale 1/256, zero point -128).
    let golden: ArrayD<i8> = vectors("sww", "int8_tflite_ref_out");
    let mut det = ember_audio::sww::Detector::new(0.95);
    let want: Vec<f64> = (0..golden.shape()[0])
        .filter_map(|w| {
            let p0 = (golden.index_axis(Axis(0), w)[0] as i32 + 128) as f32 / 256.0;
            det.push(w, p0)
                .map(|d| (d.time_s as f64 * 1000.0).round() / 1000.0)
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

/// `ember listen` on a voice activity model (Silero VAD from the
/// `silero-vad` wheel, which `cargo xtask test` points
/// `EMBER_VOICE_MODEL_DIR` at): compiled with its LSTM state bound, it
/// finds one stretch of speech per word in ten keyword clips played one
/// after the other, and the three wake words of the MLPerf recording;
/// without `--state` it is refused by name.
#[test]
fn listen_finds_speech_with_a_voice_activity_model() {
    let Some(dir) = std::env::var_os("EMBER_VOICE_MODEL_DIR").map(PathBuf::from) else {
        eprintln!("EMBER_VOICE_MODEL_DIR is not set: Silero VAD is skipped");
        return;
    };
    let onnx = dir.join("silero_vad_16k_sequence.onnx");
    let blob = tmp("silero_vad.ember");
    let shape = ["--shape", "input=1x576"];
    let o = ember(
        &[
            &["compile", s(&onnx), "-o", s(&blob), "--state", "auto"][..],
            &shape[..],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let pcm = ember_tests::voice::keyword_recording(&ember_tests::shared_dir()).unwrap();
    let words = tmp("ten_words.wav");
    std::fs::write(&words, wav_bytes(&pcm, 16_000)).unwrap();
    let o = ember(&["listen", s(&blob), s(&words), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let speech = v["speech"].as_array().unwrap();
    assert_eq!(speech.len(), 10, "{v}");
    for (k, seg) in speech.iter().enumerate() {
        let (a, b) = (
            seg["start_s"].as_f64().unwrap(),
            seg["end_s"].as_f64().unwrap(),
        );
        assert!(
            k as f64 <= a && a < b && b <= k as f64 + 1.0,
            "word {k} is spoken in second {k}: {seg}"
        );
    }

    let marvin = ember_tests::shared_dir().join("audio/mlperf/short_wav_easy10s.wav");
    let o = ember(&["listen", s(&blob), s(&marvin)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let starts: Vec<f64> = text
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    // "marvin" is mixed in at 1, 4 and 7 s (its spec file).
    assert_eq!(starts.len(), 3, "{text}");
    for (t, at) in starts.iter().zip([1.0, 4.0, 7.0]) {
        assert!((t - at).abs() < 0.3, "{text}");
    }

    let stateless = tmp("silero_vad_stateless.ember");
    let o = ember(&[&["compile", s(&onnx), "-o", s(&stateless)][..], &shape[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_clean_failure(
        &ember(&["listen", s(&stateless), s(&words)]),
        "must keep its state between chunks",
    );
}

/// A mono 16-bit PCM WAV file.
fn wav_bytes(pcm: &[i16], rate: u32) -> Vec<u8> {
    let data = (pcm.len() * 2) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data.to_le_bytes());
    for s in pcm {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

/// `ember keygen`, `sign` and `verify`: a signed blob verifies with the
/// public key and still runs; a changed byte, another key, an unsigned blob
/// and a malformed key file are one-line errors; keygen never overwrites.
#[test]
fn keygen_sign_verify() {
    let key = tmp("ota.key");
    let public = tmp("ota.key.pub");
    let o = ember(&["keygen", s(&key)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_clean_failure(&ember(&["keygen", s(&key)]), "not overwriting a key");
    let blob = compile("kws", "kws_int8_qdq.onnx");
    let signed = tmp("kws-signed.ember");
    let o = ember(&["sign", s(&blob), "--key", s(&key), "-o", s(&signed)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ember(&["verify", s(&signed), "--pubkey", s(&public)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("signature and blob valid"));
    // The signature rides after the blob: every other command still runs it.
    let o = ember(&["inspect", s(&signed)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let mut bytes = std::fs::read(&signed).unwrap();
    bytes[1000] ^= 1;
    let tampered = tmp("kws-tampered.ember");
    std::fs::write(&tampered, &bytes).unwrap();
    assert_clean_failure(
        &ember(&["verify", s(&tampered), "--pubkey", s(&public)]),
        "signature does not match",
    );
    assert_clean_failure(
        &ember(&["verify", s(&blob), "--pubkey", s(&public)]),
        "the blob is not signed",
    );
    let other = tmp("other.key");
    assert!(ember(&["keygen", s(&other)]).status.success());
    assert_clean_failure(
        &ember(&["verify", s(&signed), "--pubkey", s(&tmp("other.key.pub"))]),
        "signed with another key",
    );
    assert_clean_failure(
        &ember(&["verify", s(&signed), "--pubkey", s(&blob)]),
        "not a public key",
    );
    assert_clean_failure(
        &ember(&["sign", s(&public), "--key", s(&key)]),
        "not a valid blob",
    );
}

/// `--max-memory` bounds what every command reads and allocates, checked
/// before the allocation: the arena, the model file, an ONNX file being
/// compiled, the constants it folds, an image's decoded pixels, a WAV.
#[test]
fn max_memory_is_enforced_before_allocating() {
    let blob = compile("kws", "kws_int8_qdq.onnx");
    let zeros = tmp("kws_zeros_budget.npy");
    ArrayD::<i8>::zeros(ndarray::IxDyn(&[1, 49, 10, 1]))
        .write_npy(std::fs::File::create(&zeros).unwrap())
        .unwrap();
    // The kws blob is 50 KB and its arena 16 KB: fine under 1M, refused
    // under 8K (the file is checked first; the arena's own check is the
    // 4 GiB-arena case of `bad_inputs_fail_with_one_line`).
    let o = ember(&["run", s(&blob), "--input", s(&zeros), "--max-memory", "1M"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_clean_failure(
        &ember(&["run", s(&blob), "--input", s(&zeros), "--max-memory", "8K"]),
        "needs 49.5 KiB, over the memory budget of 8.0 KiB",
    );
    assert_clean_failure(
        &ember(&["inspect", s(&blob), "--max-memory", "4K"]),
        "over the memory budget of 4.0 KiB",
    );
    let onnx = mlperf("kws", "kws_int8_qdq.onnx");
    assert_clean_failure(
        &ember(&[
            "compile",
            s(&onnx),
            "-o",
            s(&tmp("b.ember")),
            "--max-memory",
            "16K",
        ]),
        "reading the ONNX file needs",
    );
    // A 57-byte PNG whose header says 1024×1024 (1 MiB of pixels), for the
    // image classifier (a 93 KB blob): refused under 512K before decoding.
    let ic = compile("ic", "ic_int8_qdq.onnx");
    let chunk = |kind: &[u8], data: &[u8]| -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let crc = ember_runtime::format::crc32(&c[4..]);
        c.extend_from_slice(&crc.to_be_bytes());
        c
    };
    let mut ihdr = 1024u32.to_be_bytes().repeat(2);
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[]));
    png.extend(chunk(b"IEND", &[]));
    let big = tmp("claims_1024.png");
    std::fs::write(&big, &png).unwrap();
    assert_clean_failure(
        &ember(&["see", s(&ic), s(&big), "--max-memory", "512K"]),
        "a 1024×1024 image decodes to more than the 512 KiB",
    );
    for bad in ["0", "lots", "12X"] {
        assert_clean_failure(
            &ember(&["inspect", s(&blob), "--max-memory", bad]),
            "--max-memory",
        );
    }
}

/// `ember report`: a self-contained page with one arena box per planned
/// tensor and one bar row per layer; bench results are read and a bench of
/// another model or broken JSON is a one-line error. (Chromium opens the
/// pages in `cargo xtask report-check`.)
#[test]
fn report_writes_a_self_contained_page() {
    let blob = compile("kws", "kws_int8_qdq.onnx");
    let page = tmp("kws-report.html");
    let o = ember(&["report", s(&blob), "-o", s(&page)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    for remote in ["http://", "https://", "<script", "<link"] {
        assert!(
            !html.contains(remote),
            "the page must stand alone: {remote}"
        );
    }
    let inspect = ember(&["inspect", s(&blob), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let layers = v["layers"].as_array().unwrap().len();
    assert_eq!(html.matches("<tr class=\"layer\"").count(), layers);
    assert_eq!(html.matches("<div class=\"bar macs\"").count(), layers);
    assert!(html.matches("<rect class=\"tensor ").count() > layers);

    // A bench result: per-layer instructions become a column.
    let layer_rows: Vec<_> = (0..layers)
        .map(|i| serde_json::json!({"index": i, "instructions": 1000 + i}))
        .collect();
    let bench = serde_json::json!({
        "model": "kws", "board": "mps3-an547", "instructions": 123456,
        "load_instructions": 1, "flash_bytes": 3, "code_bytes": 1, "model_bytes": 1,
        "ram_bytes": 2, "stack_bytes": 1, "microflow": null, "layers": layer_rows,
        "code_by_part": [{"part": "kernel conv", "bytes": 700}, {"part": "loader: validation", "bytes": 300}],
    });
    let bench_path = tmp("kws-bench.json");
    let with_bench = |json: &str| {
        std::fs::write(&bench_path, json).unwrap();
        ember(&[
            "report",
            s(&blob),
            "--bench",
            s(&bench_path),
            "-o",
            s(&page),
        ])
    };
    let o = with_bench(&bench.to_string());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("123,456"));
    assert_eq!(html.matches("<div class=\"bar instr\"").count(), layers);
    assert!(html.contains("data-instructions=\"1011\""));
    assert!(html.contains("<svg class=\"code\" data-board=\"mps3-an547\""));
    assert!(html.contains("data-part=\"kernel conv\" data-bytes=\"700\""));
    let bad = bench
        .to_string()
        .replace("\"bytes\":700", "\"bytes\":\"x\"");
    assert_clean_failure(
        &with_bench(&bad),
        "bench code part without a 'part' and 'bytes'",
    );

    let short = serde_json::json!({
        "model": "vww", "board": "mps3-an547", "instructions": 1, "flash_bytes": 1,
        "code_bytes": 1, "model_bytes": 1, "ram_bytes": 1,
        "layers": [{"index": 0, "instructions": 5}],
    });
    let o = with_bench(&short.to_string());
    assert_clean_failure(
        &o,
        "bench result for vww on mps3-an547 covers 1 layers, the model has 12",
    );
    let o = with_bench("{not json");
    assert_clean_failure(&o, "not JSON");
}

/// Progress bars are for people at a terminal: through a pipe (as here,
/// and in CI logs) stderr holds only the plain notes, and `--quiet` drops
/// those too; the output files are the same either way.
#[test]
fn progress_is_silent_off_a_terminal_and_with_quiet() {
    let model = mlperf("kws", "kws_int8_qdq.onnx");
    let (a, b) = (tmp("progress-a.ember"), tmp("progress-b.ember"));
    let o = ember(&["compile", s(&model), "-o", s(&a)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "{err:?}");
    assert_eq!(err.lines().count(), 2, "{err}");
    let o = ember(&["-q", "compile", s(&model), "-o", s(&b)]);
    assert!(o.status.success() && o.stderr.is_empty(), "{:?}", o);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let x = tmp("progress-x.npy");
    vectors::<i8>("kws", "mfcc_int8")
        .index_axis(Axis(0), 0)
        .insert_axis(Axis(0))
        .write_npy(std::fs::File::create(&x).unwrap())
        .unwrap();
    let o = ember(&["run", s(&a), "--input", s(&x), "--quiet"]);
    assert!(o.status.success() && o.stderr.is_empty(), "{:?}", o);
}

/// On a terminal (a pseudo-terminal from util-linux's `script`), `ember
/// compile` and `ember run` draw their bars on stderr.
#[test]
fn progress_bars_are_drawn_on_a_terminal() {
    if std::env::var_os("EMBER_EXE_RUNNER").is_some() {
        return; // `script` runs host binaries only; the host run covers it.
    }
    let model = mlperf("kws", "kws_int8_qdq.onnx");
    let out = tmp("progress-tty.ember");
    let cmd = format!(
        "{} compile {} -o {}",
        env!("CARGO_BIN_EXE_ember"),
        s(&model),
        s(&out)
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("util-linux's script (Debian's bsdutils)");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("lowering [") && text.contains("/4"),
        "{text:?}"
    );
    let o = Command::new("script")
        .args(["-qec", &format!("{cmd} --quiet"), "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("lowering ["), "{text:?}");
    // --json output stays pure JSON even on a terminal (`inspect` of an
    // .onnx compiles it first, which draws a bar otherwise).
    let o = Command::new("script")
        .args([
            "-qec",
            &format!(
                "{} inspect {} --json",
                env!("CARGO_BIN_EXE_ember"),
                s(&model)
            ),
            "/dev/null",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    // The note ("compiling …") comes first on the merged terminal stream;
    // the rest is the JSON alone, with no bar drawn anywhere.
    assert!(
        !text.contains("lowering [") && !text.contains('\x1b'),
        "{text:?}"
    );
    let json = &text[text.find('{').expect("JSON")..];
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("only JSON");
    assert!(v["layers"].is_array());
}

/// `ember --list-ops | head -1`: a reader that has gone away ends the
/// command quietly (it panicked on the write before).
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    if std::env::var_os("EMBER_EXE_RUNNER").is_some() {
        return; // the same code; the emulator's pipes add nothing.
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg("--list-ops")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the child writes: its first line meets a broken pipe.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.is_empty(), "{:?} {err}", o.status);
}

/// `compile --state` and `run --stream`: a recording fed a frame at a time
/// through a streaming LSTM equals the whole-sequence model's outputs, and
/// `inspect` shows the state.
#[test]
fn stream_a_recording_through_a_model_with_state() {
    use ember_tests::streaming::{data, lstm_model, CLASSES, FEATURES, HIDDEN};
    const FRAMES: usize = 50;
    let names = ["h_in", "c_in", "h_out", "c_out"];
    let whole_onnx = tmp("lstm_whole.onnx");
    std::fs::write(&whole_onnx, lstm_model(FRAMES as i64, names)).unwrap();
    let step_onnx = tmp("lstm_step.onnx");
    std::fs::write(&step_onnx, lstm_model(1, names)).unwrap();
    let step = tmp("lstm_step.ember");
    let o = ember(&[
        "compile",
        s(&step_onnx),
        "-o",
        s(&step),
        "--state",
        "h_out=h_in",
        "--state",
        "c_out=c_in",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let save = |name: &str, a: ArrayD<f32>| {
        let p = tmp(name);
        a.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        p
    };
    let x =
        ArrayD::from_shape_vec(vec![FRAMES, 1, FEATURES], data(FRAMES * FEATURES, 3, 1.0)).unwrap();
    let rec = save("lstm_rec.npy", x);
    let zeros = save("lstm_zeros.npy", ArrayD::zeros(vec![1, 1, HIDDEN]));
    let whole_out = tmp("lstm_whole.npz");
    let o = ember(&[
        "run",
        s(&whole_onnx),
        "--input",
        s(&rec),
        "--input",
        s(&zeros),
        "--input",
        s(&zeros),
        "--output",
        s(&whole_out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stream_out = tmp("lstm_stream.npz");
    let o = ember(&[
        "run",
        s(&step),
        "--stream",
        "--input",
        s(&rec),
        "--output",
        s(&stream_out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |p: &Path, name: &str| -> ArrayD<f32> {
        let mut z = NpzReader::new(std::fs::File::open(p).unwrap()).unwrap();
        z.by_name(name)
            .or_else(|_| z.by_name(&format!("{name}.npy")))
            .unwrap()
    };
    let want = read(&whole_out, "logits");
    let got = read(&stream_out, "logits");
    assert_eq!(want.shape(), [FRAMES, 1, CLASSES]);
    // One [1, 1, K] output per frame, stacked along a new first axis.
    assert_eq!(got.shape(), [FRAMES, 1, 1, CLASSES]);
    for (a, b) in got.iter().zip(want.iter()) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
    // The final state is the whole sequence's.
    let h_whole = read(&whole_out, "h_out");
    let h_stream = read(&stream_out, "h_out");
    let last = h_stream.index_axis(Axis(0), FRAMES - 1);
    for (a, b) in last.iter().zip(h_whole.iter()) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }

    let o = ember(&["inspect", s(&step)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("state  0       h_in f32 [1, 1, 12] ← h_out"),
        "{text}"
    );
    let o = ember(&["inspect", s(&step), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"][1]["name"], "c_in");
    assert_eq!(v["state"][1]["next"], "c_out");
    assert_eq!(v["inputs"].as_array().unwrap().len(), 1);

    // Outputs that would not fit the memory budget are refused before
    // the stream runs (the blob, arena and recording fit 16 KiB).
    let o = ember(&[
        "--max-memory",
        "16K",
        "run",
        s(&step),
        "--stream",
        "--input",
        s(&rec),
    ]);
    assert_clean_failure(
        &o,
        "keeping the outputs of 50 frames needs 29.3 KiB, over the memory budget of 16.0 KiB",
    );
    // A recording that is not the input's shape along the other axes.
    let bad = save("lstm_bad.npy", ArrayD::zeros(vec![FRAMES, 1, FEATURES - 1]));
    let o = ember(&["run", s(&step), "--stream", "--input", s(&bad)]);
    assert_clean_failure(
        &o,
        "recording of shape [50, 1, 7] for input 'x' [1, 1, 8] differs in more than one axis",
    );
    // A bad binding is a one-line compile error.
    let o = ember(&[
        "compile",
        s(&step_onnx),
        "-o",
        s(&tmp("x.ember")),
        "--state",
        "h_out=nope",
    ]);
    assert_clean_failure(
        &o,
        "the model has no input named nope (its inputs: x, h_in, c_in)",
    );
}

/// `compile --stream` turns the windowed wake-word model into a per-frame
/// one; `run --stream` over the 311 frames of its test vectors gives, from
/// frame 30 on, TFLite's reference output for each 30-frame window.
#[test]
fn compile_stream_and_run_stream_the_wake_word_model() {
    let step = tmp("sww_stream.ember");
    let o = ember(&[
        "compile",
        s(&mlperf("sww", "sww_int8_qdq.onnx")),
        "-o",
        s(&step),
        "--stream",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let note = String::from_utf8_lossy(&o.stderr);
    assert!(
        note.contains("streaming input 'serving_default_input_1:0' along axis 1"),
        "{note}"
    );
    let frames: ArrayD<i8> = vectors("sww", "lfbe_int8");
    let n = frames.shape()[0];
    let rec = tmp("sww_rec.npy");
    frames
        .into_shape_with_order(vec![1, n, 1, 40])
        .unwrap()
        .write_npy(std::fs::File::create(&rec).unwrap())
        .unwrap();
    let out = tmp("sww_stream_out.npy");
    let o = ember(&[
        "run",
        s(&step),
        "--stream",
        "--input",
        s(&rec),
        "--output",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = ArrayD::<i8>::read_npy(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(got.shape(), [n, 1, 3]);
    let want: ArrayD<i8> = vectors("sww", "int8_tflite_ref_out");
    for w in 0..want.shape()[0] {
        assert_eq!(
            got.index_axis(Axis(0), w + 29).iter().collect::<Vec<_>>(),
            want.index_axis(Axis(0), w).iter().collect::<Vec<_>>(),
            "window {w}"
        );
    }
    // The report's arena picture shows the four ring buffers as state.
    let page = tmp("sww_stream.html");
    let o = ember(&["report", s(&step), "-o", s(&page)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<rect class=\"tensor state\"").count(), 4);
    // --stream-axis without --stream is refused by the argument parser.
    let o = ember(&[
        "compile",
        s(&mlperf("sww", "sww_int8_qdq.onnx")),
        "-o",
        s(&step),
        "--stream-axis",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn quantize_a_float_model_from_wav_files_and_compile_it() {
    // Calibration from audio: ten one-second keyword clips through the
    // same MFCC front end as `ember listen`.
    let audio = ember_tests::shared_dir().join("audio/keywords");
    let cal = tmp("kws_cal_wavs");
    std::fs::create_dir_all(&cal).unwrap();
    for w in [
        "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    ] {
        let f = format!("{w}_v0.wav");
        std::fs::copy(audio.join(&f), cal.join(&f)).unwrap();
    }
    std::fs::write(cal.join(".DS_Store"), b"not a sample").unwrap();
    let float = mlperf("kws", "kws_float32.onnx");
    let blob = tmp("kws_quantized.ember");
    let report = tmp("kws_quantized.json");
    let o = ember(&[
        "compile",
        s(&float),
        "--quantize",
        "int8",
        "--calibrate",
        s(&cal),
        "--report",
        s(&report),
        "--target",
        "cortex-m55",
        "-o",
        s(&blob),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("on 10 calibration samples"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["samples"], 10);
    // Ten samples are too few to correct the biases with.
    assert_eq!(r["bias_corrected"], false);
    assert_eq!(r["weights"].as_array().unwrap().len(), 10);
    assert!(r["calibration_sqnr_db"].as_f64().unwrap() > 20.0, "{r}");
    assert!(r["top1_agreement"].as_f64().unwrap() >= 0.8, "{r}");
    for a in r["activations"].as_array().unwrap() {
        assert!(a["sqnr_db"].as_f64().unwrap() > 15.0, "{a}");
    }
    // On clips it was not calibrated on, it hears what the float model
    // hears.
    let float_blob = tmp("kws_float.ember");
    let o = ember(&["compile", s(&float), "-o", s(&float_blob)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let label = |blob: &Path, clip: &Path| -> serde_json::Value {
        let o = ember(&["listen", s(blob), s(clip), "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["label"].clone()
    };
    for w in [
        "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    ] {
        let clip = audio.join(format!("{w}_v1.wav"));
        assert_eq!(label(&blob, &clip), label(&float_blob, &clip), "{w}_v1");
    }
    // The inspect table shows int8 kernels between the float ends.
    let o = ember(&["inspect", s(&blob)]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("conv2d_s8") && table.contains("fully_connected_s8"),
        "{table}"
    );

    assert!(table.contains("precision      int8 "), "{table}");

    // Mixed precision: a target above what int8 gives leaves some layers
    // in float; inspect shows which.
    let int8_db = r["calibration_sqnr_db"].as_f64().unwrap();
    let mixed = tmp("kws_mixed.ember");
    let mixed_report = tmp("kws_mixed.json");
    let target = format!("{:.1}", int8_db + 4.0);
    let o = ember(&[
        "compile",
        s(&float),
        "--quantize",
        "mixed",
        "--sqnr-target",
        &target,
        "--calibrate",
        s(&cal),
        "--report",
        s(&mixed_report),
        "-o",
        s(&mixed),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("+ float "), "{err}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&mixed_report).unwrap()).unwrap();
    assert!(
        r["calibration_sqnr_db"].as_f64().unwrap() >= int8_db + 4.0,
        "{r}"
    );
    assert!(!r["mixed"]["float"].as_array().unwrap().is_empty(), "{r}");
    let o = ember(&["inspect", s(&mixed), "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let precisions: Vec<&str> = j["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["precision"].as_str().unwrap())
        .collect();
    assert!(
        precisions.contains(&"int8") && precisions.contains(&"f32"),
        "{precisions:?}"
    );
    for (args, want) in [
        (vec!["--quantize", "mixed"], "--sqnr-target DB"),
        (
            vec!["--quantize", "int8", "--sqnr-target", "40"],
            "needs --quantize mixed",
        ),
        (
            vec!["--quantize", "mixed", "--sqnr-target", "0"],
            "a positive number of dB",
        ),
    ] {
        let mut a = vec![
            "compile",
            s(&float),
            "--calibrate",
            s(&cal),
            "-o",
            s(&mixed),
        ];
        a.extend(args);
        assert_clean_failure(&ember(&a), want);
    }

    // `ember quantize` writes the QDQ ONNX, which compiles like any other.
    let qdq = tmp("kws_qdq.onnx");
    let o = ember(&[
        "quantize",
        s(&float),
        "--calibrate",
        s(&cal),
        "--no-bias-correction",
        "-o",
        s(&qdq),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A table of every activation on stdout, the last one the output.
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.starts_with("tensor") && table.contains("SQNR dB"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 16, "{table}");
    let o = ember(&["compile", s(&qdq), "-o", s(&tmp("kws_qdq.ember"))]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Bad calibration data: one line naming the problem.
    let bad_dir = tmp("kws_cal_bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    std::fs::write(bad_dir.join("notes.txt"), b"hello").unwrap();
    let o = ember(&[
        "quantize",
        s(&float),
        "--calibrate",
        s(&bad_dir),
        "-o",
        s(&qdq),
    ]);
    assert_clean_failure(&o, "notes.txt: not a .npy, .wav or .png file");
    let empty = tmp("kws_cal_empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = ember(&[
        "quantize",
        s(&float),
        "--calibrate",
        s(&empty),
        "-o",
        s(&qdq),
    ]);
    assert_clean_failure(&o, "no samples in");
    let ints = tmp("kws_cal_int8.npy");
    let mfcc_i8: ArrayD<i8> = vectors("kws", "mfcc_int8");
    mfcc_i8
        .write_npy(std::fs::File::create(&ints).unwrap())
        .unwrap();
    let o = ember(&[
        "quantize",
        s(&float),
        "--calibrate",
        s(&ints),
        "-o",
        s(&qdq),
    ]);
    assert_clean_failure(&o, "must be float32 or float64");
    let o = ember(&["compile", s(&float), "--quantize", "int8", "-o", s(&blob)]);
    assert_clean_failure(&o, "--calibrate");
    let o = ember(&[
        "quantize",
        s(&float),
        "--calibrate",
        s(&cal),
        "--calibration-method",
        "best",
        "-o",
        s(&qdq),
    ]);
    assert_clean_failure(&o, "one of auto, minmax, percentile, mse, entropy");
}
