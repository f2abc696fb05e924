//! The MicroFlow side of `cargo xtask bench`: the same model (its original
//! `.tflite`) and the same int8 input run by the `microflow` crate on the
//! same simulated board, timed the same way (one inference after a
//! warm-up, board ticks under `-icount`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::boards::Board;
use crate::{cargo, qemu, root, shared, step};

/// The zoo models MicroFlow 0.1 can compile (it has no Add, so not ic),
/// with their `.tflite` files.
const MODELS: [(&str, &str); 4] = [
    ("kws", "kws/kws_ref_model_int8.tflite"),
    ("vww", "vww/vww_96_int8.tflite"),
    ("ad", "ad/ad01_int8.tflite"),
    ("sww", "sww/str_ww_ref_model_int8.tflite"),
];

/// Boards the MicroFlow firmware is built for.
const BOARDS: [&str; 2] = ["mps3-an547", "mps2-an386"];

/// Whether MicroFlow runs `model` on `board` here.
pub fn supports(board: &Board, model: &str) -> bool {
    BOARDS.contains(&board.name) && MODELS.iter().any(|(m, _)| *m == model)
}

/// Instructions MicroFlow takes for one inference of `model` on `board`
/// with the int8 `input` of shape `dims`; also prints its top class.
pub fn measure(board: &Board, model: &str, input: &[u8], dims: &[usize]) -> Result<u64> {
    let Some((_, file)) = MODELS.iter().find(|(m, _)| *m == model) else {
        bail!("MicroFlow does not run {model}");
    };
    let tflite = shared().join("models/mlperf-tiny").join(file);
    let dir = root().join(format!("target/fw/{}/{model}", board.name));
    std::fs::create_dir_all(&dir)?;
    let input_path = dir.join("microflow-input.bin");
    std::fs::write(&input_path, input)?;
    let shape: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    step(&format!(
        "build MicroFlow firmware: {model} on {} ({})",
        board.name,
        tflite.display()
    ));
    let target_dir = root().join(format!("target/boards/{}", board.name));
    let st = cargo()
        .current_dir(root().join("boards"))
        .args(["build", "--release", "--quiet", "-p", "microflow-app"])
        .args(["--target", board.target, "--features", board.name])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", board.rustflags())
        .env("MICROFLOW_MODEL", &tflite)
        .env("MICROFLOW_INPUT", &input_path)
        .env("MICROFLOW_INPUT_SHAPE", shape.join(","))
        .status()
        .context("cannot start cargo")?;
    if !st.success() {
        bail!(
            "the MicroFlow firmware for {model} on {} did not build",
            board.name
        );
    }
    let built: PathBuf = target_dir.join(format!("{}/release/microflow-app", board.target));
    let elf = dir.join(format!("microflow-{model}-{}.elf", board.name));
    std::fs::copy(&built, &elf)?;
    step(&format!("run MicroFlow {model} on {}", board.name));
    let r = qemu::run(board, &elf, Duration::from_secs(1200))?;
    if r.exit_code != 0 || !r.errors.is_empty() {
        bail!("exit {}: {}", r.exit_code, r.errors.join("; "));
    }
    if let Some(l) = r.lines.iter().find(|l| l.starts_with("microflow-output")) {
        eprintln!("    {l}");
    }
    Ok(r.instructions(
        r.total_ticks
            .context("MicroFlow run reported no tick count")?,
    ))
}
