//! Serialization of a planned graph into the blob format of
//! [`ember_runtime::format`].

use crate::ir::Graph;
use crate::plan::Plan;
use ember_runtime::format::*;
use ember_runtime::Rounding;

fn pad_to(buf: &mut Vec<u8>, align: usize) {
    while !buf.len().is_multiple_of(align) {
        buf.push(0);
    }
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes the blob.
pub fn write(g: &Graph, plan: &Plan, rounding: Rounding) -> Vec<u8> {
    let mut strings: Vec<u8> = vec![];
    let mut name = |s: &str| -> (u32, u32) {
        let off = strings.len() as u32;
        strings.extend_from_slice(s.as_bytes());
        (off, s.len() as u32)
    };
    // Constant data.
    let mut data: Vec<u8> = vec![];
    let mut data_off = vec![0usize; g.tensors.len()];
    for (i, t) in g.tensors.iter().enumerate() {
        if let Some(d) = &t.data {
            pad_to(&mut data, ALIGN);
            data_off[i] = data.len();
            data.extend_from_slice(d);
        }
    }
    // Tensor table.
    let mut tensors = vec![0u8; g.tensors.len() * TENSOR_RECORD_BYTES];
    for (i, t) in g.tensors.iter().enumerate() {
        let r = &mut tensors[i * TENSOR_RECORD_BYTES..(i + 1) * TENSOR_RECORD_BYTES];
        r[0] = t.dtype as u8;
        r[1] = if t.data.is_some() {
            Storage::Const
        } else {
            Storage::Arena
        } as u8;
        r[2] = t.dims.len() as u8;
        for (k, &d) in t.dims.iter().enumerate() {
            put_u32(r, 4 + 4 * k, d as u32);
        }
        let off = if t.data.is_some() {
            data_off[i]
        } else {
            plan.offsets[i]
        };
        put_u32(r, 28, off as u32);
        put_u32(r, 32, t.bytes() as u32);
        let (s, z) = t.quant.unwrap_or((0.0, 0));
        put_u32(r, 36, s.to_bits());
        put_u32(r, 40, z as u32);
        let (no, nl) = name(&t.name);
        put_u32(r, 44, no);
        put_u32(r, 48, nl);
        put_u32(r, 52, t.alias_of.map(|a| a as u32).unwrap_or(NO_TENSOR));
        let (from, to) = plan.lifetimes[i];
        put_u32(r, 56, from);
        put_u32(r, 60, to);
    }
    // Ops, operands, params.
    let mut ops = vec![0u8; g.ops.len() * OP_RECORD_BYTES];
    let mut operands: Vec<u32> = vec![];
    let mut params: Vec<i32> = vec![];
    for (i, op) in g.ops.iter().enumerate() {
        let r = &mut ops[i * OP_RECORD_BYTES..(i + 1) * OP_RECORD_BYTES];
        r[0..2].copy_from_slice(&(op.opcode as u16).to_le_bytes());
        r[2..4].copy_from_slice(&op.variant.to_le_bytes());
        r[4..6].copy_from_slice(&(op.inputs.len() as u16).to_le_bytes());
        r[6..8].copy_from_slice(&1u16.to_le_bytes());
        put_u32(r, 8, operands.len() as u32);
        operands.extend(
            op.inputs
                .iter()
                .map(|t| t.map(|t| t as u32).unwrap_or(NO_TENSOR)),
        );
        operands.push(op.output as u32);
        put_u32(r, 12, params.len() as u32);
        put_u32(r, 16, op.params.len() as u32);
        params.extend_from_slice(&op.params);
        let (no, nl) = name(&op.name);
        put_u32(r, 20, no);
        put_u32(r, 24, nl);
    }
    let u32s = |v: &[u32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let inputs: Vec<u32> = g.inputs.iter().map(|&t| t as u32).collect();
    let outputs: Vec<u32> = g.outputs.iter().map(|&t| t as u32).collect();
    let state: Vec<u32> = g
        .state
        .iter()
        .flat_map(|p| [p.state as u32, p.next as u32, p.from_byte as u32])
        .collect();
    let params_b: Vec<u8> = params.iter().flat_map(|x| x.to_le_bytes()).collect();

    let mut blob = vec![0u8; HEADER_BYTES];
    let section = |blob: &mut Vec<u8>, hdr: usize, count: usize, bytes: &[u8]| {
        pad_to(blob, ALIGN);
        let off = blob.len();
        blob.extend_from_slice(bytes);
        put_u32(blob, hdr, count as u32);
        put_u32(blob, hdr + 4, off as u32);
    };
    section(&mut blob, 24, g.tensors.len(), &tensors);
    section(&mut blob, 32, g.ops.len(), &ops);
    section(&mut blob, 40, inputs.len(), &u32s(&inputs));
    section(&mut blob, 48, outputs.len(), &u32s(&outputs));
    section(&mut blob, 56, operands.len(), &u32s(&operands));
    section(&mut blob, 64, params.len(), &params_b);
    section(&mut blob, 72, data.len(), &data);
    section(&mut blob, 80, strings.len(), &strings);
    section(&mut blob, 96, g.state.len(), &u32s(&state));
    pad_to(&mut blob, ALIGN);
    blob[0..4].copy_from_slice(&MAGIC);
    put_u32(&mut blob, 4, FORMAT_VERSION);
    let total = blob.len() as u32;
    put_u32(&mut blob, 8, total);
    put_u32(&mut blob, 20, plan.arena_bytes as u32);
    put_u32(&mut blob, 88, rounding as u32);
    let crc = crc32(&blob[16..]);
    put_u32(&mut blob, 12, crc);
    blob
}
