//! `ember inspect`: the compiled model layer by layer.

use anyhow::Result;
use ember_runtime::format::{DType, Storage, SCRATCH_INPUT};
use ember_runtime::{Interpreter, Model};
use serde_json::json;
use std::fmt::Write;

/// One op as `inspect` shows it.
pub(crate) struct Layer {
    pub(crate) index: u32,
    pub(crate) op: &'static str,
    pub(crate) name: String,
    pub(crate) dtype: &'static str,
    /// What it computes in (see [`precision`]).
    pub(crate) precision: &'static str,
    pub(crate) out_shape: Vec<usize>,
    pub(crate) in_shape: Vec<usize>,
    pub(crate) macs: u64,
    pub(crate) weight_bytes: usize,
    pub(crate) arena_offset: usize,
    pub(crate) arena_bytes: usize,
    pub(crate) kernel: &'static str,
    pub(crate) scratch_bytes: usize,
}

/// What an op computes in, from the type of its (first) activation input,
/// of its (first) constant input and of its output: `int8` (int8
/// activations, integer weights if any), `f32`, `w8 f32` (int8 weights,
/// float activations: dynamic quantization or weights only), `convert`
/// (between float and int8), else the output's type.
fn precision(act: Option<DType>, weights: Option<DType>, out: DType) -> &'static str {
    let int8 = |d: DType| matches!(d, DType::I8 | DType::U8);
    match (act, weights, out) {
        (Some(a), _, o) if int8(a) && int8(o) => "int8",
        (Some(DType::F32), Some(w), DType::F32) if int8(w) || w == DType::I16 => "w8 f32",
        (Some(DType::F32), _, DType::F32) => "f32",
        (Some(a), None, o) if (int8(a) && o == DType::F32) || (a == DType::F32 && int8(o)) => {
            "convert"
        }
        _ => out.name(),
    }
}

/// Every op of `m`, in execution order.
pub(crate) fn layers(m: &Model<'_>) -> Result<Vec<Layer>> {
    let mut v = vec![];
    for o in 0..m.num_ops() as u32 {
        let op = m.op(o)?;
        let out = m.tensor(op.output)?;
        let mut weight_bytes = 0;
        let mut in_shape = vec![];
        let (mut act, mut weights) = (None, None);
        let mut scratch_bytes = 0;
        for i in 0..op.n_inputs {
            if let Some(t) = op.input(i) {
                let t = m.tensor(t)?;
                if i == SCRATCH_INPUT && op.variant != 0 {
                    scratch_bytes = t.size;
                } else if t.storage == Storage::Const {
                    weight_bytes += t.size;
                    weights.get_or_insert(t.dtype);
                } else if act.is_none() {
                    in_shape = t.dims().to_vec();
                    act = Some(t.dtype);
                }
            }
        }
        v.push(Layer {
            index: o,
            op: op.opcode.name(),
            name: op.name.to_string(),
            dtype: out.dtype.name(),
            precision: precision(act, weights, out.dtype),
            out_shape: out.dims().to_vec(),
            in_shape,
            macs: m.op_macs(o),
            weight_bytes,
            arena_offset: out.offset,
            arena_bytes: out.size,
            kernel: op.opcode.variant_name(op.variant).unwrap_or("?"),
            scratch_bytes,
        });
    }
    Ok(v)
}

/// Bytes of RAM the runtime needs besides the arena: the loaded model view
/// and the interpreter state (kernels allocate nothing).
fn runtime_state_bytes() -> usize {
    std::mem::size_of::<Model<'static>>() + std::mem::size_of::<Interpreter<'static, 'static>>()
}

/// Bytes of all constants (weights, biases, tables) in the blob.
pub(crate) fn weights_total(m: &Model<'_>) -> Result<usize> {
    let mut s = 0;
    for t in 0..m.num_tensors() as u32 {
        let t = m.tensor(t)?;
        if t.storage == Storage::Const {
            s += t.size;
        }
    }
    Ok(s)
}

/// Human-readable table.
pub fn table(m: &Model<'_>) -> Result<String> {
    let ls = layers(m)?;
    let mut s = String::new();
    writeln!(
        s,
        "{:>3}  {:<16} {:<4} {:<9} {:<18} {:<18} {:>10} {:>9} {:>8} {:>8}  {:<24} {:>7}  name",
        "#",
        "op",
        "type",
        "precision",
        "input",
        "output",
        "MACs",
        "weights",
        "offset",
        "bytes",
        "kernel",
        "scratch"
    )?;
    for l in &ls {
        let name: String = if l.name.chars().count() > 48 {
            format!("{}…", l.name.chars().take(47).collect::<String>())
        } else {
            l.name.clone()
        };
        writeln!(
            s,
            "{:>3}  {:<16} {:<4} {:<9} {:<18} {:<18} {:>10} {:>9} {:>8} {:>8}  {:<24} {:>7}  {}",
            l.index,
            l.op,
            l.dtype,
            l.precision,
            format!("{:?}", l.in_shape),
            format!("{:?}", l.out_shape),
            l.macs,
            l.weight_bytes,
            l.arena_offset,
            l.arena_bytes,
            l.kernel,
            l.scratch_bytes,
            name
        )?;
    }
    writeln!(s)?;
    writeln!(s, "ops            {}", ls.len())?;
    writeln!(s, "blob bytes     {}", m.blob_bytes())?;
    writeln!(s, "weight bytes   {}", weights_total(m)?)?;
    writeln!(s, "arena bytes    {}", m.arena_bytes())?;
    writeln!(
        s,
        "runtime state  {} bytes (model view + interpreter, besides the arena)",
        runtime_state_bytes()
    )?;
    writeln!(s, "MACs           {}", m.total_macs())?;
    let mut by: Vec<(&str, usize, u64)> = Vec::new();
    for l in &ls {
        match by.iter_mut().find(|(p, _, _)| *p == l.precision) {
            Some(e) => {
                e.1 += 1;
                e.2 += l.macs;
            }
            None => by.push((l.precision, 1, l.macs)),
        }
    }
    by.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)));
    let total = m.total_macs().max(1);
    let parts: Vec<String> = by
        .iter()
        .map(|(p, n, macs)| {
            format!(
                "{p} {n} ops ({:.0} % of MACs)",
                *macs as f64 * 100.0 / total as f64
            )
        })
        .collect();
    writeln!(s, "precision      {}", parts.join(", "))?;
    writeln!(s, "rounding       {}", m.rounding().name())?;
    let ks = m.kernels()?;
    writeln!(
        s,
        "kernels        {} of {} linked into firmware for this model: {}",
        ks.len(),
        ember_runtime::Kernel::ALL.len(),
        kernel_names(ks).join(", ")
    )?;
    let io_line = |kind: &str, i: usize, t: ember_runtime::TensorInfo<'_>| {
        let q = t
            .quant
            .map(|q| format!(" scale {} zero point {}", q.scale, q.zero_point))
            .unwrap_or_default();
        format!(
            "{kind} {i}       {} {} {:?}{q}",
            t.name,
            t.dtype.name(),
            t.dims()
        )
    };
    for i in 0..m.num_inputs() {
        writeln!(s, "{}", io_line("input ", i, m.input_info(i)?))?;
    }
    for i in 0..m.num_outputs() {
        writeln!(s, "{}", io_line("output", i, m.output_info(i)?))?;
    }
    for i in 0..m.num_state() {
        let (state, next) = m.state_info(i)?;
        writeln!(
            s,
            "{} ← {} (kept between invokes, arena offset {})",
            io_line("state ", i, state),
            next.name,
            state.offset
        )?;
    }
    Ok(s)
}

fn kernel_names(ks: ember_runtime::Kernels) -> Vec<&'static str> {
    ks.iter().map(|k| k.name()).collect()
}

/// `x` as the f64 nearest its shortest decimal form (`0.5847029`, not
/// `0.5847029089927673`), whichever way serde_json writes numbers.
fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// JSON summary (`blob_bytes`, `arena_bytes`, `macs`, `layers`, …).
pub fn json(m: &Model<'_>) -> Result<String> {
    let ls: Vec<_> = layers(m)?
        .into_iter()
        .map(|l| {
            json!({
                "index": l.index, "op": l.op, "name": l.name, "dtype": l.dtype, "precision": l.precision,
                "input_shape": l.in_shape, "output_shape": l.out_shape, "macs": l.macs,
                "weight_bytes": l.weight_bytes, "arena_offset": l.arena_offset, "arena_bytes": l.arena_bytes,
                "kernel": l.kernel, "scratch_bytes": l.scratch_bytes,
            })
        })
        .collect();
    let io = |info: ember_runtime::TensorInfo<'_>| {
        json!({"name": info.name, "dtype": info.dtype.name(), "shape": info.dims(),
               "scale": info.quant.map(|q| shortest(q.scale)), "zero_point": info.quant.map(|q| q.zero_point)})
    };
    let inputs: Vec<_> = (0..m.num_inputs())
        .map(|i| m.input_info(i).map(io))
        .collect::<Result<_, _>>()?;
    let outputs: Vec<_> = (0..m.num_outputs())
        .map(|i| m.output_info(i).map(io))
        .collect::<Result<_, _>>()?;
    let state: Vec<_> = (0..m.num_state())
        .map(|i| {
            m.state_info(i).map(|(state, next)| {
                let mut v = io(state);
                v["next"] = json!(next.name);
                v["arena_offset"] = json!(state.offset);
                v
            })
        })
        .collect::<Result<_, _>>()?;
    let v = json!({
        "blob_bytes": m.blob_bytes(),
        "arena_bytes": m.arena_bytes(),
        "weight_bytes": weights_total(m)?,
        "runtime_state_bytes": runtime_state_bytes(),
        "macs": m.total_macs(),
        "rounding": m.rounding().name(),
        "kernels": kernel_names(m.kernels()?),
        "inputs": inputs,
        "outputs": outputs,
        "state": state,
        "layers": ls,
    });
    Ok(serde_json::to_string_pretty(&v)?)
}
