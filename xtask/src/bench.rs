//! `cargo xtask bench`: instructions per inference, MACs per instruction,
//! flash and RAM, per model and board, with a per-layer breakdown.

use std::time::Duration;

use anyhow::{Context, Result};
use ember_runtime::Model;
use serde_json::json;

use crate::boards::Board;
use ember_cli::report::thousands;

use crate::{firmware, qemu, size};

/// One layer's share.
pub struct Layer {
    /// Op index.
    pub index: usize,
    /// Operator.
    pub op: String,
    /// Op name from the ONNX graph.
    pub name: String,
    /// Instructions (under `-icount`).
    pub instructions: u64,
    /// Multiply-accumulates.
    pub macs: u64,
}

/// One model on one board.
pub struct Measurement {
    /// Model name.
    pub model: String,
    /// Board name.
    pub board: String,
    /// Instructions for one inference after a warm-up.
    pub instructions: u64,
    /// Instructions `Model::load` and `Interpreter::with_kernels` (full
    /// validation, the arena plan included) took.
    pub load_instructions: u64,
    /// MACs per inference.
    pub macs: u64,
    /// Memory use.
    pub size: size::Size,
    /// Arena bytes.
    pub arena_bytes: u64,
    /// Stack high-water mark.
    pub stack_bytes: u64,
    /// Outputs equal the host reference.
    pub outputs_match: bool,
    /// Per-layer profile.
    pub layers: Vec<Layer>,
    /// The compiled model the firmware embedded.
    pub blob: Vec<u8>,
    /// MicroFlow on the same model, board and input: its instruction
    /// count, or why it did not run (`None`: not a model/board it runs).
    pub microflow: Option<std::result::Result<u64, String>>,
}

impl Measurement {
    /// Flash: code + model + other constants.
    pub fn flash_bytes(&self) -> u64 {
        self.size.flash_bytes
    }

    /// RAM: statics (arena included) + stack.
    pub fn ram_bytes(&self) -> u64 {
        self.size.static_ram_bytes + self.stack_bytes
    }

    /// MACs per instruction.
    pub fn macs_per_instruction(&self) -> f64 {
        if self.instructions == 0 {
            0.0
        } else {
            self.macs as f64 / self.instructions as f64
        }
    }

    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "model": self.model,
            "board": self.board,
            "instructions": self.instructions,
            "load_instructions": self.load_instructions,
            "macs": self.macs,
            "macs_per_instruction": self.macs_per_instruction(),
            "flash_bytes": self.flash_bytes(),
            "code_bytes": self.size.code_bytes,
            "model_bytes": self.size.model_bytes,
            "code_by_part": self.size.code_by_part.iter()
                .map(|(p, b)| json!({"part": p, "bytes": b}))
                .collect::<Vec<_>>(),
            "ram_bytes": self.ram_bytes(),
            "arena_bytes": self.arena_bytes,
            "stack_bytes": self.stack_bytes,
            "static_ram_bytes": self.size.static_ram_bytes,
            "outputs_match": self.outputs_match,
            "microflow": match &self.microflow {
                None => serde_json::Value::Null,
                Some(Ok(n)) => json!({"instructions": n}),
                Some(Err(e)) => json!({"error": e}),
            },
            "layers": self.layers.iter().map(|l| json!({
                "index": l.index,
                "op": l.op,
                "name": l.name,
                "instructions": l.instructions,
                "macs": l.macs,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Builds and runs `model` on `board` and collects the numbers.
pub fn measure(board: &Board, model: &str, row: usize) -> Result<Measurement> {
    let p = firmware::prepare(model, board, None, None, row)?;
    let elf = firmware::build(board, &p)?;
    crate::step(&format!("run {} on {}", p.name, board.name));
    let r = qemu::run(board, &elf, Duration::from_secs(600))?;
    let aligned = ember_compiler::AlignedBlob::new(&p.blob);
    let m = Model::load(aligned.bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let outputs: Vec<u8> = r.outputs.concat();
    if r.exit_code != 0 || !r.errors.is_empty() {
        anyhow::bail!(
            "{} on {} failed (exit {}): {}",
            p.name,
            board.name,
            r.exit_code,
            r.errors.join("; ")
        );
    }
    let mut layers = Vec::new();
    for (i, &t) in r.op_ticks.iter().enumerate() {
        let op = m.op(i as u32).map_err(|e| anyhow::anyhow!("{e}"))?;
        layers.push(Layer {
            index: i,
            op: format!("{:?}", op.opcode),
            name: op.name.to_string(),
            instructions: r.instructions(t),
            macs: m.op_macs(i as u32),
        });
    }
    let microflow = crate::microflow::supports(board, model).then(|| {
        let dims = m
            .input_info(0)
            .map(|i| i.dims().to_vec())
            .unwrap_or_default();
        crate::microflow::measure(board, model, &p.input, &dims).map_err(|e| format!("{e:#}"))
    });
    Ok(Measurement {
        microflow,
        model: p.name.clone(),
        board: board.name.to_string(),
        instructions: r.instructions(r.total_ticks.context("no total tick count reported")?),
        load_instructions: r.instructions(r.load_ticks.unwrap_or(0)),
        macs: m.total_macs(),
        size: size::of(&elf)?,
        arena_bytes: m.arena_bytes() as u64,
        stack_bytes: r.stack_bytes.unwrap_or(0),
        outputs_match: outputs == p.expect,
        layers,
        blob: p.blob.clone(),
    })
}

/// The summary table in Markdown.
pub fn markdown(rows: &[Measurement]) -> String {
    let mut s = String::from(
        "| model | board | instructions | MACs | MACs/instr | flash B (code + model) | RAM B (arena + stack + other statics) | outputs | MicroFlow instructions | MicroFlow ÷ Ember |\n|---|---|---:|---:|---:|---:|---:|---|---:|---:|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {:.3} | {} ({} + {}) | {} ({} + {} + {}) | {} | {} | {} |\n",
            r.model,
            r.board,
            thousands(r.instructions),
            thousands(r.macs),
            r.macs_per_instruction(),
            thousands(r.flash_bytes()),
            thousands(r.size.code_bytes),
            thousands(r.size.model_bytes),
            thousands(r.ram_bytes()),
            thousands(r.arena_bytes),
            thousands(r.stack_bytes),
            thousands(r.size.static_ram_bytes.saturating_sub(r.arena_bytes)),
            if r.outputs_match {
                "= reference"
            } else {
                "DIFFER"
            },
            match &r.microflow {
                None => "—".to_string(),
                Some(Ok(n)) => thousands(*n),
                Some(Err(e)) => format!("failed: {}", e.lines().next().unwrap_or("")),
            },
            match &r.microflow {
                Some(Ok(n)) if r.instructions > 0 => {
                    format!("{:.1}×", *n as f64 / r.instructions as f64)
                }
                _ => "—".to_string(),
            }
        );
    }
    s
}

/// A readable layer name: TFLite-converted graphs name fused ops after every
/// tensor they absorbed (`a;b;c`); the last one is the layer's own.
fn short_name(name: &str) -> String {
    let last = name.rsplit(';').next().unwrap_or(name);
    let n = last.chars().count();
    if n <= 48 {
        last.to_string()
    } else {
        let tail: String = last.chars().skip(n - 47).collect();
        format!("…{tail}")
    }
}

/// Per-layer profile in Markdown.
pub fn layers_markdown(r: &Measurement) -> String {
    let mut s = format!(
        "{} on {}: per-layer instructions\n\n| # | op | name | instructions | MACs | MACs/instr |\n|---:|---|---|---:|---:|---:|\n",
        r.model, r.board
    );
    for l in &r.layers {
        s += &format!(
            "| {} | {} | {} | {} | {} | {:.3} |\n",
            l.index,
            l.op,
            short_name(&l.name),
            thousands(l.instructions),
            thousands(l.macs),
            if l.instructions == 0 {
                0.0
            } else {
                l.macs as f64 / l.instructions as f64
            }
        );
    }
    s
}
