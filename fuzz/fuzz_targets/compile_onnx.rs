//! Fuzzes the ONNX compiler: `compile` of the input bytes and, when they
//! compile, loading the blob, binding an arena and one invocation; then
//! the same through the streaming conversion (`--stream`), whose blobs are
//! invoked twice (the second invoke reads the state the first left). A
//! compile error is the expected answer to most inputs; a panic, an abort,
//! a hang or running out of memory is a finding, and so is a blob the
//! compiler produced that does not load or bind.
//!
//! The custom mutator is structure-aware: inputs that decode as an ONNX
//! `ModelProto` with nodes (the seeds are real models) get one edit to the
//! graph — a dimension, an attribute, an operator type, an input name, an
//! initializer, a node dropped, duplicated or moved — and are encoded
//! again; other inputs, and some of those, get libFuzzer's byte mutations.
#![no_main]

use ember_compiler::{try_aligned_arena, AlignedBlob, Options};
use ember_fuzz::{Rng, MAX_ARENA, MAX_MACS};
use ember_runtime::{Interpreter, Model};
use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};
use prost::Message;
use std::sync::OnceLock;
use tract_onnx::pb;

/// The compiler's memory budget here: an eighth of libFuzzer's 2 GiB RSS
/// limit, so that exceeding the limit means the compiler overran its
/// budget several times over (with the default 2 GiB budget, a model
/// folding up to the budget met the limit by design).
const MAX_MEMORY: usize = 256 << 20;

fuzz_target!(|data: &[u8]| {
    let opts = Options {
        max_memory: Some(MAX_MEMORY),
        ..Default::default()
    };
    if !check(data, &opts, 1) {
        return;
    }
    let streamed = Options {
        stream: Some(ember_compiler::stream::StreamAxis::Auto),
        ..opts
    };
    check(data, &streamed, 2);
});

/// Compiles `data` with `opts`; if that works, the blob must load and
/// bind, and is invoked `invokes` times. Whether it compiled.
fn check(data: &[u8], opts: &Options, invokes: usize) -> bool {
    let Ok(c) = ember_compiler::compile(data, opts) else {
        return false;
    };
    let blob = AlignedBlob::new(&c.blob);
    let model = match Model::load(blob.bytes()) {
        Ok(m) => m,
        Err(e) => panic!("the compiler produced a blob that does not load: {e:?}"),
    };
    if model.arena_bytes() > MAX_ARENA || model.total_macs() > MAX_MACS {
        return true;
    }
    let Some(mut arena) = try_aligned_arena(model.arena_bytes()) else {
        return true;
    };
    let mut it = match Interpreter::new(&model, arena.bytes_mut()) {
        Ok(it) => it,
        Err(e) => panic!("the compiler produced a blob that does not bind: {e:?}"),
    };
    for _ in 0..invokes {
        let _ = it.invoke();
    }
    true
}

/// The operator types the compiler knows, for swapping one for another.
fn known_ops() -> &'static [&'static str] {
    static OPS: OnceLock<Vec<&'static str>> = OnceLock::new();
    OPS.get_or_init(|| {
        let mut v: Vec<&'static str> = ember_compiler::supported_ops()
            .iter()
            .map(|o| o.op_type)
            .collect();
        v.push("NotAnOp");
        v
    })
}

/// Integers that tend to matter: zero, one, signs, powers of two around
/// the limits the compiler enforces, the extremes.
const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    7,
    16,
    255,
    -128,
    127,
    1 << 16,
    1 << 26,
    (1 << 26) + 1,
    1 << 31,
    (1 << 32) + 4,
    1 << 40,
    i32::MAX as i64,
    i32::MIN as i64,
    i64::MAX,
    i64::MIN,
];

fn interesting_int(rng: &mut Rng, old: i64) -> i64 {
    match rng.below(4) {
        0 => *rng.pick(INTERESTING).unwrap_or(&0),
        1 => old.wrapping_add(rng.below(5) as i64 - 2),
        2 => old.wrapping_mul(2),
        _ => (rng.next() as i64) >> rng.below(64),
    }
}

fn interesting_float(rng: &mut Rng, old: f32) -> f32 {
    match rng.below(8) {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => f32::NEG_INFINITY,
        3 => 0.0,
        4 => -old,
        5 => old * 1e30,
        6 => f32::MIN_POSITIVE / 4.0,
        _ => f32::from_bits(rng.next() as u32),
    }
}

/// Every tensor name the graph mentions (for rewiring inputs).
fn names(g: &pb::GraphProto) -> Vec<String> {
    let mut v: Vec<String> = g.input.iter().map(|i| i.name.clone()).collect();
    v.extend(g.initializer.iter().map(|t| t.name.clone()));
    for n in &g.node {
        v.extend(n.output.iter().cloned());
    }
    v.push(String::new());
    v.push("no_such_tensor".into());
    v
}

fn mutate_dims(rng: &mut Rng, vi: &mut pb::ValueInfoProto) {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let Some(pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(t)),
        ..
    }) = vi.r#type.as_mut()
    else {
        return;
    };
    match rng.below(5) {
        0 => t.elem_type = rng.below(18) as i32,
        1 => t.shape = None,
        _ => {
            let shape = t.shape.get_or_insert_with(Default::default);
            match rng.below(6) {
                0 => shape.dim.push(Dimension {
                    value: Some(Value::DimValue(1)),
                    ..Default::default()
                }),
                1 => {
                    shape.dim.pop();
                }
                2 => {
                    let i = rng.below(shape.dim.len());
                    if let Some(d) = shape.dim.get_mut(i) {
                        d.value = Some(Value::DimParam("n".into()));
                    }
                }
                _ => {
                    let i = rng.below(shape.dim.len().max(1));
                    if let Some(d) = shape.dim.get_mut(i) {
                        let old = match d.value {
                            Some(Value::DimValue(v)) => v,
                            _ => 1,
                        };
                        d.value = Some(Value::DimValue(interesting_int(rng, old)));
                    }
                }
            }
        }
    }
}

fn mutate_attr(rng: &mut Rng, a: &mut pb::AttributeProto) {
    match rng.below(6) {
        0 if !a.ints.is_empty() => {
            let i = rng.below(a.ints.len());
            a.ints[i] = interesting_int(rng, a.ints[i]);
        }
        1 => {
            if rng.one_in(2) {
                a.ints.pop();
            } else {
                a.ints.push(*rng.pick(INTERESTING).unwrap_or(&1));
            }
        }
        2 if !a.floats.is_empty() => {
            let i = rng.below(a.floats.len());
            a.floats[i] = interesting_float(rng, a.floats[i]);
        }
        3 => a.f = interesting_float(rng, a.f),
        4 => a.r#type = rng.below(15) as i32,
        _ => a.i = interesting_int(rng, a.i),
    }
}

fn mutate_tensor(rng: &mut Rng, t: &mut pb::TensorProto) {
    match rng.below(6) {
        0 if !t.dims.is_empty() => {
            let i = rng.below(t.dims.len());
            t.dims[i] = interesting_int(rng, t.dims[i]);
        }
        1 => {
            if rng.one_in(2) {
                t.dims.pop();
            } else {
                t.dims.push(1);
            }
        }
        2 => {
            let n = rng.below(t.raw_data.len() + 1);
            t.raw_data.truncate(n);
        }
        3 => t.data_type = rng.below(18) as i32,
        _ if !t.raw_data.is_empty() => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(t.raw_data.len());
                t.raw_data[i] = rng.next() as u8;
            }
        }
        _ => t.int64_data.push(interesting_int(rng, 0)),
    }
}

/// One structural edit of `m`'s graph.
fn mutate_model(rng: &mut Rng, m: &mut pb::ModelProto) {
    if rng.one_in(40) {
        if let Some(o) = m.opset_import.first_mut() {
            o.version = interesting_int(rng, o.version);
        }
        return;
    }
    let Some(g) = m.graph.as_mut() else { return };
    let all = names(g);
    let nn = g.node.len();
    match rng.below(12) {
        0 => {
            let i = rng.below(nn);
            if let (Some(n), Some(op)) = (g.node.get_mut(i), rng.pick(known_ops())) {
                n.op_type = op.to_string();
            }
        }
        1 | 2 => {
            let i = rng.below(nn);
            if let Some(n) = g.node.get_mut(i) {
                if n.attribute.is_empty() || rng.one_in(8) {
                    n.attribute.push(pb::AttributeProto {
                        name: ["axis", "group", "pads", "strides", "perm", "to"][rng.below(6)]
                            .into(),
                        r#type: 2,
                        i: interesting_int(rng, 1),
                        ..Default::default()
                    });
                } else {
                    let k = rng.below(n.attribute.len());
                    mutate_attr(rng, &mut n.attribute[k]);
                }
            }
        }
        3 => {
            let i = rng.below(nn);
            if let Some(n) = g.node.get_mut(i) {
                let name = rng.pick(&all).cloned().unwrap_or_default();
                match rng.below(3) {
                    0 => n.input.push(name),
                    1 => {
                        n.input.pop();
                    }
                    _ => {
                        let k = rng.below(n.input.len());
                        if let Some(s) = n.input.get_mut(k) {
                            *s = name;
                        }
                    }
                }
            }
        }
        4 => {
            if nn > 0 {
                g.node.remove(rng.below(nn));
            }
        }
        5 => {
            if let Some(n) = g.node.get(rng.below(nn)).cloned() {
                let at = rng.below(nn + 1);
                g.node.insert(at, n);
            }
        }
        6 => {
            if nn > 1 {
                g.node.swap(rng.below(nn), rng.below(nn));
            }
        }
        7 | 8 => {
            let k = rng.below(g.initializer.len());
            if let Some(t) = g.initializer.get_mut(k) {
                mutate_tensor(rng, t);
            }
        }
        9 => {
            let k = rng.below(g.input.len());
            if let Some(vi) = g.input.get_mut(k) {
                mutate_dims(rng, vi);
            }
        }
        10 => {
            let k = rng.below(g.output.len());
            if let Some(vi) = g.output.get_mut(k) {
                if rng.one_in(2) {
                    vi.name = rng.pick(&all).cloned().unwrap_or_default();
                } else {
                    mutate_dims(rng, vi);
                }
            }
        }
        _ => {
            let k = rng.below(g.value_info.len());
            if let Some(vi) = g.value_info.get_mut(k) {
                mutate_dims(rng, vi);
            } else if let Some(vi) = g.input.first().cloned() {
                g.input.push(vi);
            }
        }
    }
}

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let mut rng = Rng::new(seed as u64);
    // A quarter of the time, or when the input is not a model with nodes:
    // libFuzzer's own byte-level mutations.
    if !rng.one_in(4) {
        if let Ok(mut m) = pb::ModelProto::decode(&data[..size]) {
            if m.graph.as_ref().is_some_and(|g| !g.node.is_empty()) {
                for _ in 0..=rng.below(3) {
                    mutate_model(&mut rng, &mut m);
                }
                let out = m.encode_to_vec();
                if out.len() <= max_size {
                    data[..out.len()].copy_from_slice(&out);
                    return out.len();
                }
            }
        }
    }
    fuzzer_mutate(data, size, max_size)
});
