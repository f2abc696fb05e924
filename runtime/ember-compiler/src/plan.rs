//! Offline memory planning: tensor lifetimes → arena offsets.
//!
//! Greedy by size (largest first), each buffer at the lowest 16-byte
//! aligned offset where it collides with no already placed buffer whose
//! lifetime overlaps. Views (free reshapes) share their root's buffer and
//! extend its lifetime. State tensors live through the whole invoke (and
//! so between invokes).

use crate::ir::Graph;
use ember_runtime::format::{ALIGN, NOT_LIVE};

/// Result of planning.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Arena offset of each tensor (constants: 0).
    pub offsets: Vec<usize>,
    /// Arena bytes needed.
    pub arena_bytes: usize,
    /// Each tensor's lifetime fields as the blob records them (see
    /// [`ember_runtime::format`]): steps `(from, to)` for an arena tensor
    /// that owns its bytes, [`NOT_LIVE`] twice for one that nothing uses,
    /// zeros for constants and views.
    pub lifetimes: Vec<(u32, u32)>,
}

fn align(v: usize) -> usize {
    v.div_ceil(ALIGN) * ALIGN
}

/// Plans the arena of `g`.
pub fn plan(g: &Graph) -> Plan {
    let n = g.tensors.len();
    let root = |t: usize| g.tensors[t].alias_of.unwrap_or(t);
    let n_ops = g.ops.len() as i64;
    let mut first = vec![i64::MAX; n];
    let mut last = vec![i64::MIN; n];
    for &t in &g.inputs {
        first[root(t)] = -1;
        last[root(t)] = last[root(t)].max(-1);
    }
    for (i, op) in g.ops.iter().enumerate() {
        let i = i as i64;
        let r = root(op.output);
        first[r] = first[r].min(i);
        last[r] = last[r].max(i);
        for t in op.inputs.iter().flatten() {
            let r = root(*t);
            last[r] = last[r].max(i);
            // A tensor nothing produces and no graph input provides is an
            // op's scratch: it lives from its first use.
            first[r] = first[r].min(i);
        }
    }
    for &t in &g.outputs {
        last[root(t)] = n_ops;
    }
    // State is kept between invokes: its bytes are nobody else's, ever.
    for p in &g.state {
        first[root(p.state)] = -1;
        last[root(p.state)] = n_ops;
        // Copied into the state when the invoke ends.
        last[root(p.next)] = n_ops;
    }
    let roots: Vec<usize> = (0..n)
        .filter(|&t| {
            g.tensors[t].data.is_none() && g.tensors[t].alias_of.is_none() && first[t] != i64::MAX
        })
        .collect();
    let size = |t: usize| align(g.tensors[t].bytes());
    let span = |t: usize| last[t].max(first[t]) - first[t] + 1;
    // Greedy placement is order-sensitive: try a few classic orders and
    // keep the smallest arena.
    type Key<'k> = Box<dyn Fn(&usize) -> (i64, i64) + 'k>;
    let orders: [Key<'_>; 4] = [
        Box::new(|&t| (-(size(t) as i64), first[t])),
        Box::new(|&t| (-(size(t) as i64 * span(t)), first[t])),
        Box::new(|&t| (-span(t), -(size(t) as i64))),
        Box::new(|&t| (first[t], -(size(t) as i64))),
    ];
    let mut best: Option<(usize, Vec<usize>)> = None;
    for key in orders.iter() {
        let mut order = roots.clone();
        order.sort_by_key(|t| key(t));
        let (arena, offsets) = place(&order, n, &size, &first, &last);
        if best.as_ref().is_none_or(|(a, _)| arena < *a) {
            best = Some((arena, offsets));
        }
    }
    let (arena, mut offsets) = best.unwrap_or((0, vec![0; n]));
    for t in 0..n {
        if let Some(r) = g.tensors[t].alias_of {
            offsets[t] = offsets[r];
        }
    }
    let lifetimes = (0..n)
        .map(|t| {
            let tensor = &g.tensors[t];
            if tensor.data.is_some() || tensor.alias_of.is_some() {
                (0, 0)
            } else if first[t] == i64::MAX {
                (NOT_LIVE, NOT_LIVE)
            } else {
                // Ops are steps 1..=n_ops; the caller's writes are step 0.
                let step = |i: i64| (i + 1) as u32;
                (step(first[t]), step(last[t].max(first[t])))
            }
        })
        .collect();
    Plan {
        offsets,
        arena_bytes: arena,
        lifetimes,
    }
}

/// Places `order` greedily; returns (arena bytes, offsets).
fn place(
    order: &[usize],
    n: usize,
    size: &dyn Fn(usize) -> usize,
    first: &[i64],
    last: &[i64],
) -> (usize, Vec<usize>) {
    let mut offsets = vec![0usize; n];
    let mut placed: Vec<(usize, usize, i64, i64)> = vec![]; // (offset, size, first, last)
    let mut arena = 0usize;
    for &t in order {
        let sz = size(t);
        let (f, l) = (first[t], last[t].max(first[t]));
        let mut conflicts: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&(_, _, pf, pl)| pf <= l && f <= pl)
            .map(|&(o, s, _, _)| (o, o + s))
            .collect();
        conflicts.sort();
        let mut off = 0usize;
        for (s, e) in conflicts {
            if off + sz <= s {
                break;
            }
            off = off.max(align(e));
        }
        offsets[t] = off;
        placed.push((off, sz, f, l));
        arena = arena.max(off + sz);
    }
    (arena, offsets)
}
