//! `ember-linux-bench ember|tract MODEL INPUT OUTPUT`: loads `MODEL` (an
//! `.ember` blob for Ember, the `.onnx` file for tract), fills its input
//! from the raw bytes in `INPUT`, runs one warm-up inference, then one
//! inference between two marker system calls, and writes the output's raw
//! bytes to `OUTPUT`. Ember then runs once more with a marker after each
//! op (the per-layer profile).
//!
//! The markers are what `cargo xtask bench --board linux-aarch64` counts
//! between: its QEMU plugin (`xtask/qemu-plugin/insn_count.c`) reports the
//! guest instructions executed from the first marker to the second, so
//! loading, validation, tract's graph optimization and the warm-up are left
//! out for both engines alike.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The system-call number the counting plugin watches ("EM"). Linux has no
/// such call: it returns `ENOSYS` and does nothing else.
const MARKER_SYSCALL: u64 = 0x454d;

/// Tells the counting plugin that the measured region starts (`0`),
/// ends (`1`) or that lap `id` inside it ends (`2`).
fn marker(which: u64, id: u64) {
    #[cfg(all(target_arch = "aarch64", target_os = "linux"))]
    // SAFETY: an `svc` with an unknown system-call number; the kernel (or
    // qemu-user) only writes `-ENOSYS` into x0, which is declared clobbered.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") MARKER_SYSCALL,
            inlateout("x0") which => _,
            in("x1") id,
            options(nostack)
        );
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "linux")))]
    let _ = (which, id, MARKER_SYSCALL);
}

fn run_ember(model: &Path, input: &[u8]) -> Result<Vec<u8>> {
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    // The blob must be 16-byte aligned: copy it into u128 storage.
    let mut storage = vec![0u128; bytes.len().div_ceil(16)];
    let view: &mut [u8] = bytemuck_bytes(&mut storage);
    view[..bytes.len()].copy_from_slice(&bytes);
    let blob = &view[..bytes.len()];
    let m = ember_runtime::Model::load(blob).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut arena_storage = vec![0u128; m.arena_bytes().div_ceil(16)];
    let arena = &mut bytemuck_bytes(&mut arena_storage)[..m.arena_bytes()];
    let mut it = ember_runtime::Interpreter::new(&m, arena).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The planner may reuse the input's arena bytes once it is consumed, so
    // the input is written before each inference, outside the measured
    // region.
    let fill = |it: &mut ember_runtime::Interpreter<'_, '_>| -> Result<()> {
        let mut off = 0;
        for i in 0..m.num_inputs() {
            let t = it.input_mut(i).map_err(|e| anyhow::anyhow!("{e}"))?;
            let n = t.bytes.len();
            let src = input
                .get(off..off + n)
                .context("input file shorter than the model's inputs")?;
            t.bytes.copy_from_slice(src);
            off += n;
        }
        if off != input.len() {
            bail!(
                "input file has {} bytes, the model's inputs {off}",
                input.len()
            );
        }
        Ok(())
    };
    fill(&mut it)?;
    it.invoke().map_err(|e| anyhow::anyhow!("{e}"))?;
    fill(&mut it)?;
    marker(0, 0);
    it.invoke().map_err(|e| anyhow::anyhow!("{e}"))?;
    marker(1, 0);
    wall(|| {
        fill(&mut it)?;
        it.invoke().map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    // Once more with a lap per op, for the per-layer profile (after the
    // measured region, so its hook costs nothing there).
    fill(&mut it)?;
    marker(0, 0);
    it.invoke_with_hook(|ev| {
        if ev.done {
            marker(2, u64::from(ev.index));
        }
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::new();
    for i in 0..m.num_outputs() {
        out.extend_from_slice(it.output(i).map_err(|e| anyhow::anyhow!("{e}"))?.bytes);
    }
    Ok(out)
}

/// With `EMBER_WALL_RUNS=n` set, times up to `n` more inferences on this
/// machine (single thread; fewer past 20 s, at least three) and prints the median and the fastest in
/// microseconds to stderr as `wall_us <median> <min>`: the host
/// wall-clock comparison (not meaningful under QEMU).
fn wall(mut once: impl FnMut() -> Result<()>) -> Result<()> {
    let Some(n) = std::env::var("EMBER_WALL_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
    else {
        return Ok(());
    };
    // Large models (a Whisper encoder takes seconds) stop after 20 s, with
    // at least three runs.
    let mut t = Vec::with_capacity(n);
    let start = std::time::Instant::now();
    for i in 0..n {
        let s = std::time::Instant::now();
        once()?;
        t.push(s.elapsed().as_secs_f64() * 1e6);
        if i >= 2 && start.elapsed().as_secs_f64() > 20.0 {
            break;
        }
    }
    t.sort_by(f64::total_cmp);
    eprintln!("wall_us {:.1} {:.1}", t[t.len() / 2], t[0]);
    Ok(())
}

fn bytemuck_bytes(words: &mut [u128]) -> &mut [u8] {
    let n = std::mem::size_of_val(words);
    // SAFETY: u128 has no padding and every byte pattern is a valid u8; the
    // slice covers exactly the words' memory and borrows it mutably.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), n) }
}

/// Input shapes from `EMBER_BENCH_SHAPES` (`1x128;1x128;1x128`), for
/// models whose ONNX inputs have symbolic dimensions.
fn bench_shapes() -> Vec<Vec<usize>> {
    std::env::var("EMBER_BENCH_SHAPES")
        .unwrap_or_default()
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|s| s.split('x').filter_map(|d| d.parse().ok()).collect())
        .collect()
}

fn run_tract(model: &Path, input: &[u8]) -> Result<Vec<u8>> {
    use tract_onnx::prelude::*;
    let shapes = bench_shapes();
    // With fixed input shapes, the file's symbolic value infos (batch,
    // seq) would contradict them: let tract infer every shape instead.
    let mut m = tract_onnx::onnx()
        .with_ignore_output_shapes(!shapes.is_empty())
        .with_ignore_value_info(!shapes.is_empty())
        .model_for_path(model)
        .with_context(|| format!("tract cannot read {}", model.display()))?;
    let n_inputs = m.input_outlets()?.len();
    let mut facts = Vec::with_capacity(n_inputs);
    for i in 0..n_inputs {
        let fact = m.input_fact(i)?.clone();
        let dt = fact.datum_type().context("the input type is not known")?;
        let shape: Vec<usize> = match shapes.get(i) {
            Some(s) => s.clone(),
            None => fact
                .shape
                .as_concrete_finite()
                .ok()
                .flatten()
                .context("the input shape is not fixed: set EMBER_BENCH_SHAPES")?
                .to_vec(),
        };
        m.set_input_fact(i, InferenceFact::dt_shape(dt, shape.clone()))?;
        facts.push((dt, shape));
    }
    let plan = m.into_optimized()?.into_runnable()?;
    // The input file holds Ember's inputs back to back; int64 inputs (token
    // ids, masks) are int32 there, as Ember runs them.
    let mut inputs = TVec::new();
    let mut off = 0;
    for (dt, shape) in &facts {
        let n: usize = shape.iter().product();
        let t = match dt {
            DatumType::I64 => {
                let b = input
                    .get(off..off + 4 * n)
                    .context("input file too short")?;
                off += 4 * n;
                let v: Vec<i64> = b
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect();
                Tensor::from_shape(shape, &v)?
            }
            DatumType::I8 | DatumType::U8 | DatumType::F32 => {
                let size = n * dt.size_of();
                let b = input.get(off..off + size).context("input file too short")?;
                off += size;
                // SAFETY: int8, uint8 and f32 accept every bit pattern, and
                // from_raw_dt checks the byte count against the shape.
                unsafe { Tensor::from_raw_dt(*dt, shape, b) }
                    .context("input bytes do not fit the input shape")?
            }
            other => bail!(
                "input type {other:?}: only int8, uint8, f32 and int64 inputs are benchmarked"
            ),
        };
        inputs.push(t.into_tvalue());
    }
    if off != input.len() {
        bail!(
            "input file has {} bytes, the model's inputs {off}",
            input.len()
        );
    }
    plan.run(inputs.clone())?;
    marker(0, 0);
    let out = plan.run(inputs.clone())?;
    marker(1, 0);
    wall(|| {
        plan.run(inputs.clone())?;
        Ok(())
    })?;
    let mut bytes = Vec::new();
    for o in out.iter() {
        bytes.extend_from_slice(o.as_bytes());
    }
    Ok(bytes)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, engine, model, input, output] = args.as_slice() else {
        bail!("usage: ember-linux-bench ember|tract MODEL INPUT OUTPUT");
    };
    let input = std::fs::read(input).with_context(|| format!("cannot read {input}"))?;
    let out = match engine.as_str() {
        "ember" => run_ember(Path::new(model), &input)?,
        "tract" => run_tract(Path::new(model), &input)?,
        e => bail!("unknown engine '{e}': ember or tract"),
    };
    std::fs::write(output, out).with_context(|| format!("cannot write {output}"))?;
    Ok(())
}
