//! `ember report`: one self-contained HTML page about a compiled model —
//! a summary table, the graph as a layered diagram, the arena plan as a
//! picture (every tensor a box at its offset over its lifetime), per-layer
//! bars (MACs, weight bytes and, given `cargo xtask bench --json` results,
//! instructions per board against the ISA's MACs-per-instruction limit)
//! and where the flash goes (weights by layer; each board's code by part:
//! kernel families, dispatch, loader, board). Inline SVG and CSS only: no script, no
//! network, so the page opens anywhere.
//!
//! The SVG elements carry their numbers as `data-*` attributes (offsets,
//! lifetimes, bytes, MACs) so that a test can check the picture against
//! the planner and `ember inspect --json`.

use std::collections::HashMap;
use std::fmt::Write;

use anyhow::{bail, Context, Result};
use ember_runtime::format::{Storage, SCRATCH_INPUT};
use ember_runtime::Model;

use crate::inspect;

/// One board's measurement of the model, from `cargo xtask bench --json`.
#[derive(Clone, Debug, Default)]
pub struct BenchRun {
    /// Board name (e.g. `mps3-an547`).
    pub board: String,
    /// Model name the bench used.
    pub model: String,
    /// Instructions for one inference.
    pub instructions: u64,
    /// Instructions loading and binding took.
    pub load_instructions: u64,
    /// Flash: code + model + other constants.
    pub flash_bytes: u64,
    /// Code bytes.
    pub code_bytes: u64,
    /// The embedded model's bytes.
    pub model_bytes: u64,
    /// RAM: statics (arena included) + stack.
    pub ram_bytes: u64,
    /// Stack high-water mark.
    pub stack_bytes: u64,
    /// MicroFlow's instructions on the same model and board, when measured.
    pub microflow_instructions: Option<u64>,
    /// Instructions per op, indexed like the model's ops.
    pub layer_instructions: Vec<u64>,
    /// The firmware's code by part (kernel families, dispatch, loader,
    /// board, …), largest first; empty when the bench did not say.
    pub code_by_part: Vec<(String, u64)>,
}

/// Reads `cargo xtask bench --json` output: one measurement or a list.
pub fn parse_bench(text: &str) -> Result<Vec<BenchRun>> {
    let v: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    let items = match v {
        serde_json::Value::Array(a) => a,
        o @ serde_json::Value::Object(_) => vec![o],
        _ => bail!("expected a bench result object or a list of them"),
    };
    items
        .iter()
        .map(|o| {
            let u = |k: &str| -> Result<u64> {
                o.get(k)
                    .and_then(|v| v.as_u64())
                    .with_context(|| format!("bench result without a numeric '{k}'"))
            };
            let s = |k: &str| -> Result<String> {
                o.get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .with_context(|| format!("bench result without a '{k}'"))
            };
            let layers = o
                .get("layers")
                .and_then(|l| l.as_array())
                .context("bench result without 'layers'")?;
            let mut layer_instructions = vec![0; layers.len()];
            for l in layers {
                let i = l.get("index").and_then(|v| v.as_u64());
                let n = l.get("instructions").and_then(|v| v.as_u64());
                match (i, n) {
                    (Some(i), Some(n)) if (i as usize) < layer_instructions.len() => {
                        layer_instructions[i as usize] = n
                    }
                    _ => bail!("bench layer without a valid 'index' and 'instructions'"),
                }
            }
            Ok(BenchRun {
                board: s("board")?,
                model: s("model")?,
                instructions: u("instructions")?,
                load_instructions: u("load_instructions").unwrap_or(0),
                flash_bytes: u("flash_bytes")?,
                code_bytes: u("code_bytes")?,
                model_bytes: u("model_bytes")?,
                ram_bytes: u("ram_bytes")?,
                stack_bytes: u("stack_bytes").unwrap_or(0),
                microflow_instructions: o
                    .get("microflow")
                    .and_then(|m| m.get("instructions"))
                    .and_then(|v| v.as_u64()),
                layer_instructions,
                code_by_part: match o.get("code_by_part") {
                    None => vec![],
                    Some(v) => v
                        .as_array()
                        .context("bench 'code_by_part' is not a list")?
                        .iter()
                        .map(|p| {
                            let part = p.get("part").and_then(|v| v.as_str());
                            let bytes = p.get("bytes").and_then(|v| v.as_u64());
                            part.zip(bytes)
                                .map(|(p, b)| (p.to_string(), b))
                                .context("bench code part without a 'part' and 'bytes'")
                        })
                        .collect::<Result<_>>()?,
                },
            })
        })
        .collect()
}

/// The best int8 MACs one instruction can do on a board's core, and the
/// instruction that does it.
pub fn isa_limit(board: &str) -> Option<(f64, &'static str)> {
    match board {
        "mps3-an547" => Some((16.0, "Helium VMLADAVA.S8, 16 lanes")),
        "mps2-an386" => Some((2.0, "DSP SMLAD, 2 lanes")),
        "virt-a53" => Some((8.0, "NEON SMLAL, 8 lanes")),
        _ => None,
    }
}

/// What an arena tensor holds, for its colour.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Input,
    Output,
    Scratch,
    /// Kept between invokes (a recurrent state, a streaming ring).
    State,
    Activation,
}

impl Role {
    fn class(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Output => "output",
            Role::Scratch => "scratch",
            Role::State => "state",
            Role::Activation => "activation",
        }
    }
}

/// One arena tensor that owns bytes over a lifetime.
struct Planned {
    index: u32,
    name: String,
    offset: usize,
    bytes: usize,
    from: u32,
    to: u32,
    role: Role,
}

/// One op, as the pictures need it: what `inspect` shows, and its place in
/// the graph.
struct Layer {
    info: inspect::Layer,
    /// Ops whose outputs this one reads.
    preds: Vec<u32>,
    /// Graph inputs it reads (indices into the model's inputs).
    graph_inputs: Vec<usize>,
    /// Whether it writes a graph output.
    writes_output: bool,
}

impl std::ops::Deref for Layer {
    type Target = inspect::Layer;
    fn deref(&self) -> &inspect::Layer {
        &self.info
    }
}

/// The HTML page for `m` (named `title`), with `bench` results if any.
pub fn html(m: &Model<'_>, title: &str, bench: &[BenchRun]) -> Result<String> {
    let e = |e: ember_runtime::Error| anyhow::anyhow!("{e}");
    let n_ops = m.num_ops() as u32;
    for b in bench {
        if b.layer_instructions.len() != n_ops as usize {
            bail!(
                "bench result for {} on {} covers {} layers, the model has {}: not the same model",
                b.model,
                b.board,
                b.layer_instructions.len(),
                n_ops
            );
        }
    }
    // The tensor whose bytes `t` uses: the loader allows no alias chains.
    let root = |t: u32| -> Result<u32> { Ok(m.tensor(t).map_err(e)?.alias_of.unwrap_or(t)) };
    let inputs: Vec<u32> = (0..m.num_inputs())
        .map(|i| m.input_info(i).map(|t| t.index).map_err(e))
        .collect::<Result<_>>()?;
    let outputs: Vec<u32> = (0..m.num_outputs())
        .map(|i| m.output_info(i).map(|t| t.index).map_err(e))
        .collect::<Result<_>>()?;
    let mut producer: HashMap<u32, u32> = HashMap::new();
    let mut scratch = vec![];
    let mut layers = vec![];
    for info in inspect::layers(m)? {
        let op = m.op(info.index).map_err(e)?;
        let mut l = Layer {
            info,
            preds: vec![],
            graph_inputs: vec![],
            writes_output: false,
        };
        for i in 0..op.n_inputs {
            let Some(t) = op.input(i) else { continue };
            if i == SCRATCH_INPUT && op.variant != 0 {
                scratch.push(root(t)?);
            } else if m.tensor(t).map_err(e)?.storage == Storage::Arena {
                let r = root(t)?;
                if let Some(&p) = producer.get(&r) {
                    if !l.preds.contains(&p) {
                        l.preds.push(p);
                    }
                } else if let Some(k) = inputs.iter().position(|&g| root(g).ok() == Some(r)) {
                    if !l.graph_inputs.contains(&k) {
                        l.graph_inputs.push(k);
                    }
                }
            }
        }
        let out = root(op.output)?;
        l.writes_output = outputs.iter().any(|&o| root(o).ok() == Some(out));
        producer.insert(out, l.index);
        layers.push(l);
    }
    let states: Vec<u32> = (0..m.num_state())
        .map(|i| m.state_info(i).map(|(s, _)| s.index).map_err(e))
        .collect::<Result<_>>()?;
    let mut planned = vec![];
    for t in 0..m.num_tensors() as u32 {
        let info = m.tensor(t).map_err(e)?;
        let (Storage::Arena, Some((from, to)), None) = (info.storage, info.live, info.alias_of)
        else {
            continue;
        };
        let role = if inputs.contains(&t) {
            Role::Input
        } else if states.contains(&t) {
            Role::State
        } else if outputs.iter().any(|&o| root(o).ok() == Some(t)) {
            Role::Output
        } else if scratch.contains(&t) {
            Role::Scratch
        } else {
            Role::Activation
        };
        planned.push(Planned {
            index: t,
            name: info.name.to_string(),
            offset: info.offset,
            bytes: info.size,
            from,
            to,
            role,
        });
    }

    let mut h = String::new();
    h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
    writeln!(h, "<title>Ember report: {}</title>", esc(title))?;
    h += STYLE;
    h += "</head><body>\n";
    writeln!(h, "<h1>Ember report: {}</h1>", esc(title))?;
    summary(&mut h, m, bench)?;
    graph(&mut h, m, &layers, &inputs)?;
    arena(&mut h, m, &planned)?;
    per_layer(&mut h, &layers, bench)?;
    flash(&mut h, m, &layers, bench)?;
    h += "<footer>Made by <code>ember report</code>. Numbers are in the elements' <code>data-*</code> attributes; hover a box for its details.</footer>\n";
    h += "</body></html>\n";
    Ok(h)
}

const STYLE: &str = r#"<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccd; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { white-space: nowrap; padding: 3px 8px; border-bottom: 1px solid #e4e6ef; text-align: left; vertical-align: middle; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.barcell { width: 180px; }
.bar { height: 12px; background: #4a78c2; border-radius: 2px; }
.bar.weights { background: #d08a2e; } .bar.instr { background: #5a9e5a; } .bar.eff { background: #8a5ac2; }
svg text { font: 11px system-ui, sans-serif; fill: #1d2330; } svg text.kernel { fill: #5a6378; }
.node rect { fill: #eef2fb; stroke: #4a78c2; } .node.int8 rect { fill: #fdf1e2; stroke: #d08a2e; } .node.output rect { stroke-width: 2.5; }
.gio rect { fill: #e6f4e6; stroke: #5a9e5a; }
.edge { fill: none; stroke: #8891a8; stroke-width: 1.2; }
rect.tensor { stroke: #1d2330; stroke-width: 0.4; }
.parts { font-size: 12px; line-height: 1.8; } .part { white-space: nowrap; margin-right: 10px; }
.part i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
rect.activation { fill: #7aa0dc; } rect.input { fill: #6dbb6d; } rect.output { fill: #e07070; }
rect.scratch { fill: #e0b040; } rect.state { fill: #a07ad0; }
.peak { stroke: #c03030; stroke-width: 1.5; stroke-dasharray: 5 3; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -2px; }
footer { margin-top: 40px; color: #667; font-size: 12px; }
</style>
"#;

/// Escapes text for HTML and SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `v` with thousands separators (`1,234,567`).
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn summary(h: &mut String, m: &Model<'_>, bench: &[BenchRun]) -> Result<()> {
    let weights = inspect::weights_total(m)?;
    h.push_str("<h2>Summary</h2>\n<table class=\"summary\">\n");
    let row = |h: &mut String, k: &str, v: String| {
        let _ = writeln!(h, "<tr><th>{k}</th><td class=\"num\">{v}</td></tr>");
    };
    row(h, "ops", m.num_ops().to_string());
    row(h, "blob bytes", thousands(m.blob_bytes() as u64));
    row(h, "weight bytes", thousands(weights as u64));
    row(h, "arena bytes", thousands(m.arena_bytes() as u64));
    row(h, "MACs per inference", thousands(m.total_macs()));
    row(h, "rounding", m.rounding().name().to_string());
    h.push_str("</table>\n");
    if bench.is_empty() {
        h.push_str("<p>No bench results given (<code>ember report M.ember --bench BENCH.json</code> with the output of <code>cargo xtask bench --json</code> adds instructions, flash and RAM per board).</p>\n");
        return Ok(());
    }
    h.push_str("<table class=\"boards\"><tr><th>board</th><th class=\"num\">instructions</th><th class=\"num\">MACs / instruction</th><th class=\"num\">ISA limit</th><th class=\"num\">load + bind</th><th class=\"num\">flash B (code + model)</th><th class=\"num\">RAM B (stack)</th><th class=\"num\">MicroFlow instructions</th><th class=\"num\">MicroFlow ÷ Ember</th></tr>\n");
    for b in bench {
        let mpi = m.total_macs() as f64 / b.instructions.max(1) as f64;
        let limit = isa_limit(&b.board)
            .map(|(l, what)| format!("<span title=\"{}\">{l}</span>", esc(what)))
            .unwrap_or_else(|| "—".into());
        let (mf, ratio) = match b.microflow_instructions {
            Some(n) => (
                thousands(n),
                format!("{:.1}×", n as f64 / b.instructions.max(1) as f64),
            ),
            None => ("—".into(), "—".into()),
        };
        writeln!(
            h,
            "<tr data-board=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{mpi:.3}</td><td class=\"num\">{limit}</td><td class=\"num\">{}</td><td class=\"num\">{} ({} + {})</td><td class=\"num\">{} ({})</td><td class=\"num\">{mf}</td><td class=\"num\">{ratio}</td></tr>",
            esc(&b.board),
            esc(&b.board),
            thousands(b.instructions),
            thousands(b.load_instructions),
            thousands(b.flash_bytes),
            thousands(b.code_bytes),
            thousands(b.model_bytes),
            thousands(b.ram_bytes),
            thousands(b.stack_bytes),
        )?;
    }
    h.push_str("</table>\n");
    Ok(())
}

/// Box size and spacing of the graph diagram.
const NODE_W: usize = 260;
const NODE_H: usize = 58;
const ROW_GAP: usize = 34;
const COL_GAP: usize = 24;

fn graph(h: &mut String, m: &Model<'_>, layers: &[Layer], inputs: &[u32]) -> Result<()> {
    // Row of each op: one below its deepest producer (graph inputs are
    // row 0); ops come in execution order, so producers are placed first.
    let mut row = vec![0usize; layers.len()];
    for l in layers {
        row[l.index as usize] = 1 + l.preds.iter().map(|&p| row[p as usize]).max().unwrap_or(0);
    }
    let rows = row.iter().copied().max().unwrap_or(0) + 1;
    let mut col = vec![0usize; layers.len()];
    let mut per_row = vec![0usize; rows + 1];
    per_row[0] = inputs.len();
    for l in layers {
        let r = row[l.index as usize];
        col[l.index as usize] = per_row[r];
        per_row[r] += 1;
    }
    let widest = per_row.iter().copied().max().unwrap_or(1).max(1);
    let width = widest * (NODE_W + COL_GAP) + COL_GAP;
    let height = (rows + 1) * (NODE_H + ROW_GAP) + ROW_GAP;
    let x_of = |r: usize, c: usize| {
        let n = per_row[r].max(1);
        let used = n * NODE_W + (n - 1) * COL_GAP;
        (width - used) / 2 + c * (NODE_W + COL_GAP)
    };
    let y_of = |r: usize| ROW_GAP + r * (NODE_H + ROW_GAP);
    writeln!(
        h,
        "<h2>Graph</h2>\n<p>{} ops in execution order, placed one row below the deepest op they read; int8 ops in orange.</p>\n<svg class=\"graph\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">",
        layers.len()
    )?;
    // Edges first, under the boxes.
    for l in layers {
        let (r, c) = (row[l.index as usize], col[l.index as usize]);
        let (x1, y1) = (x_of(r, c) + NODE_W / 2, y_of(r));
        let mut srcs: Vec<(usize, usize)> = l
            .preds
            .iter()
            .map(|&p| (row[p as usize], col[p as usize]))
            .collect();
        srcs.extend(l.graph_inputs.iter().map(|&k| (0, k)));
        for (pr, pc) in srcs {
            let (x0, y0) = (x_of(pr, pc) + NODE_W / 2, y_of(pr) + NODE_H);
            let my = (y0 + y1) / 2;
            writeln!(
                h,
                "<path class=\"edge\" d=\"M{x0},{y0} C{x0},{my} {x1},{my} {x1},{y1}\"/>"
            )?;
        }
    }
    for (k, &t) in inputs.iter().enumerate() {
        let info = m.tensor(t).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (x, y) = (x_of(0, k), y_of(0));
        writeln!(
            h,
            "<g class=\"gio\"><rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"10\"/><text x=\"{}\" y=\"{}\">input {}</text><text x=\"{}\" y=\"{}\">{} {:?}</text></g>",
            x + 8,
            y + 18,
            esc(&clip(info.name, 32)),
            x + 8,
            y + 34,
            info.dtype.name(),
            info.dims()
        )?;
    }
    for l in layers {
        let (r, c) = (row[l.index as usize], col[l.index as usize]);
        let (x, y) = (x_of(r, c), y_of(r));
        let out = if l.writes_output { " output" } else { "" };
        writeln!(
            h,
            "<g class=\"node {}{out}\" data-op=\"{}\"><title>#{} {} ({})\n{}\nkernel {}\nout {} {:?}\nMACs {}, weights {} B</title><rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"4\"/><text x=\"{}\" y=\"{}\">#{} {}</text><text x=\"{}\" y=\"{}\" class=\"kernel\">{}</text><text x=\"{}\" y=\"{}\">{} {:?}</text></g>",
            l.dtype,
            l.index,
            l.index,
            l.op,
            esc(&l.name),
            esc(&l.name),
            l.kernel,
            l.dtype,
            l.out_shape,
            thousands(l.macs),
            thousands(l.weight_bytes as u64),
            x + 8,
            y + 17,
            l.index,
            l.op,
            x + 8,
            y + 32,
            esc(&clip(l.kernel, 40)),
            x + 8,
            y + 47,
            l.dtype,
            l.out_shape,
        )?;
    }
    h.push_str("</svg>\n");
    Ok(())
}

/// `s` cut to `n` characters, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}

/// Width and height of the arena picture's plot area.
const ARENA_W: f64 = 1000.0;
const ARENA_H: f64 = 360.0;

fn arena(h: &mut String, m: &Model<'_>, planned: &[Planned]) -> Result<()> {
    let steps = m.num_ops() + 2; // inputs written, each op, outputs read
    let bytes = m.arena_bytes().max(1) as f64;
    // Live bytes per step, for the peak.
    let mut live = vec![0usize; steps];
    for p in planned {
        let end = (p.to as usize).min(steps - 1);
        for l in live.iter_mut().take(end + 1).skip(p.from as usize) {
            *l += p.bytes;
        }
    }
    let (peak_step, peak) = live
        .iter()
        .copied()
        .enumerate()
        .max_by_key(|&(i, v)| (v, usize::MAX - i))
        .unwrap_or((0, 0));
    let top = planned
        .iter()
        .map(|p| p.offset + p.bytes)
        .max()
        .unwrap_or(0);
    let (ml, mt) = (70.0, 10.0);
    let (w, hh) = (ARENA_W + ml + 20.0, ARENA_H + mt + 40.0);
    let sx = ARENA_W / steps as f64;
    let sy = ARENA_H / bytes;
    writeln!(
        h,
        "<h2>Arena</h2>\n<p>{} bytes, {} tensors planned. Each box is a tensor: across, the steps it is live (step 0: the inputs are written; step k: op k − 1 runs; last: the outputs are read); down, its bytes. Most bytes live at once: {} at step {peak_step}; highest byte used: {}.</p>\n<div class=\"legend\"><span style=\"background:#6dbb6d\"></span>graph input<span style=\"background:#7aa0dc\"></span>activation<span style=\"background:#e0b040\"></span>scratch<span style=\"background:#e07070\"></span>graph output<span style=\"background:#a07ad0\"></span>state</div>",
        thousands(m.arena_bytes() as u64),
        planned.len(),
        thousands(peak as u64),
        thousands(top as u64),
    )?;
    writeln!(
        h,
        "<svg class=\"arena\" width=\"{w:.0}\" height=\"{hh:.0}\" viewBox=\"0 0 {w:.0} {hh:.0}\" data-arena-bytes=\"{}\" data-steps=\"{steps}\">",
        m.arena_bytes()
    )?;
    writeln!(
        h,
        "<rect x=\"{ml}\" y=\"{mt}\" width=\"{ARENA_W}\" height=\"{ARENA_H}\" fill=\"#f6f7fb\" stroke=\"#ccd\"/>"
    )?;
    for p in planned {
        let x = ml + p.from as f64 * sx;
        let wd = (p.to - p.from + 1) as f64 * sx;
        let y = mt + p.offset as f64 * sy;
        let ht = (p.bytes as f64 * sy).max(0.8);
        writeln!(
            h,
            "<rect class=\"tensor {}\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{wd:.2}\" height=\"{ht:.2}\" data-tensor=\"{}\" data-from=\"{}\" data-to=\"{}\" data-offset=\"{}\" data-bytes=\"{}\"><title>{} ({})\nbytes {}..{} ({} B)\nlive steps {}..={}</title></rect>",
            p.role.class(),
            p.index,
            p.from,
            p.to,
            p.offset,
            p.bytes,
            esc(&p.name),
            p.role.class(),
            p.offset,
            p.offset + p.bytes,
            thousands(p.bytes as u64),
            p.from,
            p.to
        )?;
    }
    let px = ml + (peak_step as f64 + 0.5) * sx;
    writeln!(
        h,
        "<line class=\"peak\" x1=\"{px:.2}\" y1=\"{mt}\" x2=\"{px:.2}\" y2=\"{:.2}\"><title>most bytes live: {} at step {peak_step}</title></line>",
        mt + ARENA_H,
        thousands(peak as u64)
    )?;
    let ty = mt + top as f64 * sy;
    writeln!(
        h,
        "<line class=\"peak\" x1=\"{ml}\" y1=\"{ty:.2}\" x2=\"{:.2}\" y2=\"{ty:.2}\"><title>highest byte used: {}</title></line>",
        ml + ARENA_W,
        thousands(top as u64)
    )?;
    writeln!(
        h,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">0 B</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text x=\"{ml}\" y=\"{}\">step 0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">step {}</text>",
        ml - 4.0,
        mt + 10.0,
        ml - 4.0,
        mt + ARENA_H,
        thousands(m.arena_bytes() as u64),
        mt + ARENA_H + 16.0,
        ml + ARENA_W,
        mt + ARENA_H + 16.0,
        steps - 1
    )?;
    h.push_str("</svg>\n");
    Ok(())
}

/// A bar `value / max` of the cell's width.
fn bar(class: &str, value: f64, max: f64, key: &str, shown: &str) -> String {
    let pct = if max > 0.0 { 100.0 * value / max } else { 0.0 };
    format!(
        "<td class=\"barcell\"><div class=\"bar {class}\" style=\"width:{pct:.2}%\" data-{key}=\"{value}\" title=\"{shown}\"></div></td><td class=\"num\">{shown}</td>"
    )
}

fn per_layer(h: &mut String, layers: &[Layer], bench: &[BenchRun]) -> Result<()> {
    let max_macs = layers.iter().map(|l| l.macs).max().unwrap_or(0) as f64;
    let max_w = layers.iter().map(|l| l.weight_bytes).max().unwrap_or(0) as f64;
    let max_i: Vec<f64> = bench
        .iter()
        .map(|b| b.layer_instructions.iter().copied().max().unwrap_or(0) as f64)
        .collect();
    h.push_str("<h2>Layers</h2>\n<table class=\"layers\"><tr><th>#</th><th>op</th><th>kernel</th><th>output</th><th colspan=\"2\">MACs</th><th colspan=\"2\">weight bytes</th>");
    for b in bench {
        let limit = isa_limit(&b.board)
            .map(|(l, _)| format!(" (limit {l})"))
            .unwrap_or_default();
        write!(
            h,
            "<th colspan=\"2\">instructions, {}</th><th colspan=\"2\">MACs / instruction{limit}</th>",
            esc(&b.board)
        )?;
    }
    h.push_str("<th>name</th></tr>\n");
    for l in layers {
        write!(
            h,
            "<tr class=\"layer\" data-index=\"{}\"><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{} {:?}</td>",
            l.index, l.index, l.op, l.kernel, l.dtype, l.out_shape
        )?;
        h.push_str(&bar(
            "macs",
            l.macs as f64,
            max_macs,
            "macs",
            &thousands(l.macs),
        ));
        h.push_str(&bar(
            "weights",
            l.weight_bytes as f64,
            max_w,
            "weight-bytes",
            &thousands(l.weight_bytes as u64),
        ));
        for (b, mx) in bench.iter().zip(&max_i) {
            let n = b.layer_instructions[l.index as usize];
            h.push_str(&bar("instr", n as f64, *mx, "instructions", &thousands(n)));
            let eff = if n > 0 { l.macs as f64 / n as f64 } else { 0.0 };
            let limit = isa_limit(&b.board).map_or(eff.max(1.0), |(v, _)| v);
            h.push_str(&bar(
                "eff",
                eff,
                limit,
                "macs-per-instruction",
                &format!("{eff:.2}"),
            ));
        }
        writeln!(h, "<td>{}</td></tr>", esc(&clip(&l.name, 60)))?;
    }
    h.push_str("</table>\n");
    Ok(())
}

fn flash(h: &mut String, m: &Model<'_>, layers: &[Layer], bench: &[BenchRun]) -> Result<()> {
    h.push_str("<h2>Flash</h2>\n");
    let weights = inspect::weights_total(m)?;
    let other = m.blob_bytes().saturating_sub(weights);
    writeln!(
        h,
        "<p>The blob: {} B, of which weights {} B and tables, params and names {} B.</p>",
        thousands(m.blob_bytes() as u64),
        thousands(weights as u64),
        thousands(other as u64)
    )?;
    // One stacked bar: each layer's weights, largest first, the rest merged.
    let mut by: Vec<&Layer> = layers.iter().filter(|l| l.weight_bytes > 0).collect();
    by.sort_by_key(|l| std::cmp::Reverse(l.weight_bytes));
    let total = m.blob_bytes().max(1) as f64;
    let w = 1000.0;
    h.push_str("<svg class=\"flash\" width=\"1000\" height=\"40\" viewBox=\"0 0 1000 40\">");
    let mut x = 0.0;
    let palette = ["#d08a2e", "#e0a85a", "#c27a20", "#eac089"];
    for (i, l) in by.iter().enumerate() {
        // Layers sharing a constant count it each: stop at the weights' end.
        let wd = (l.weight_bytes as f64 / total * w).min(weights as f64 / total * w - x);
        if wd <= 0.0 {
            break;
        }
        write!(
            h,
            "<rect x=\"{x:.2}\" y=\"0\" width=\"{wd:.2}\" height=\"28\" fill=\"{}\" data-layer=\"{}\" data-bytes=\"{}\"><title>#{} {} {}: {} B</title></rect>",
            palette[i % palette.len()],
            l.index,
            l.weight_bytes,
            l.index,
            l.op,
            esc(&l.name),
            thousands(l.weight_bytes as u64)
        )?;
        x += wd;
    }
    write!(
        h,
        "<rect x=\"{x:.2}\" y=\"0\" width=\"{:.2}\" height=\"28\" fill=\"#b8bfd0\"><title>tables, params, names: {} B</title></rect>",
        (w - x).max(0.0),
        thousands(other as u64)
    )?;
    h.push_str("</svg>\n");
    if !bench.is_empty() {
        h.push_str("<table><tr><th>board</th><th class=\"num\">code</th><th class=\"num\">model</th><th class=\"num\">other constants</th><th class=\"num\">flash</th></tr>\n");
        for b in bench {
            writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&b.board),
                thousands(b.code_bytes),
                thousands(b.model_bytes),
                thousands(b.flash_bytes.saturating_sub(b.code_bytes + b.model_bytes)),
                thousands(b.flash_bytes)
            )?;
        }
        h.push_str("</table>\n");
        code_parts(h, bench)?;
    }
    Ok(())
}

/// Each board's code as one stacked bar by part (kernel families warm,
/// the rest grey), with the parts listed under it.
fn code_parts(h: &mut String, bench: &[BenchRun]) -> Result<()> {
    for b in bench.iter().filter(|b| !b.code_by_part.is_empty()) {
        let total: u64 = b.code_by_part.iter().map(|p| p.1).sum();
        writeln!(
            h,
            "<h3>Code on {}: {} B by part</h3>",
            esc(&b.board),
            thousands(total)
        )?;
        write!(
            h,
            "<svg class=\"code\" data-board=\"{}\" width=\"1000\" height=\"30\" viewBox=\"0 0 1000 30\">",
            esc(&b.board)
        )?;
        let mut x = 0.0;
        let (warm, grey) = (
            ["#c0504d", "#d9826a", "#e8ab8f", "#b04040"],
            ["#8d95a8", "#b8bfd0"],
        );
        let mut list = String::new();
        for (i, (part, bytes)) in b.code_by_part.iter().enumerate() {
            let wd = *bytes as f64 / total.max(1) as f64 * 1000.0;
            let fill = if part.starts_with("kernel") {
                warm[i % warm.len()]
            } else {
                grey[i % grey.len()]
            };
            write!(
                h,
                "<rect x=\"{x:.2}\" y=\"0\" width=\"{wd:.2}\" height=\"24\" fill=\"{fill}\" data-part=\"{}\" data-bytes=\"{bytes}\"><title>{}: {} B</title></rect>",
                esc(part),
                esc(part),
                thousands(*bytes)
            )?;
            x += wd;
            write!(
                list,
                "<span class=\"part\"><i style=\"background:{fill}\"></i>{} {} B</span> ",
                esc(part),
                thousands(*bytes)
            )?;
        }
        h.push_str("</svg>\n");
        writeln!(h, "<p class=\"parts\">{list}</p>")?;
    }
    Ok(())
}
