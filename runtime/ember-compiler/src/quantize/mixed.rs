//! Mixed precision: which scale groups stay in float so that the model's
//! outputs reach an SQNR target, chosen by a sensitivity sweep over the
//! calibration samples.
//!
//! Each scale group is tried alone in float (every node that reads or
//! writes one of its tensors then runs its float kernel); the groups that
//! help are then put in float one at a time, the most SQNR per
//! multiply-accumulate first, until the target is met. Everything else
//! stays int8.

use std::collections::{BTreeSet, HashMap, HashSet};

use tract_onnx::pb::GraphProto;

use super::observe::Stats;
use super::plan::{layer_weights, old_out, Plan};
use crate::error::Result;

/// A scale group the sweep left in float.
#[derive(Clone, Debug)]
pub struct FloatGroup {
    /// The group's activations.
    pub tensors: Vec<String>,
    /// The nodes that run their float kernel because of it.
    pub nodes: Vec<String>,
    /// Their multiply-accumulates per inference (elements for ops without
    /// weights): the cost the sweep weighs the gain by.
    pub macs: u64,
    /// The model's output SQNR in dB with only this group in float.
    pub alone_sqnr: f64,
    /// The model's output SQNR in dB with this group and those before it
    /// in float.
    pub sqnr: f64,
}

/// What the sweep chose.
#[derive(Clone, Debug, Default)]
pub struct Mixed {
    /// The SQNR target in dB.
    pub target: f64,
    /// The model's output SQNR in dB with every group in int8.
    pub int8_sqnr: f64,
    /// The groups left in float, in the order they were taken.
    pub float: Vec<FloatGroup>,
}

/// Multiply-accumulates of node `n` per inference, from the sizes the
/// calibration run saw: output elements times the reduction length for a
/// layer with weights, output elements otherwise.
fn node_macs(g: &GraphProto, plan: &Plan, stats: &HashMap<String, Stats>, n: usize) -> u64 {
    let elems = stats
        .get(&old_out(g, &plan.absorbed, n))
        .map_or(0, |s| s.len) as u64;
    match layer_weights(g, &g.node[n]) {
        Some(w) => {
            let total: usize = w.dims.iter().product();
            elems * (total / w.dims[w.axis].max(1)) as u64
        }
        None => elems,
    }
}

/// The plan with the groups of `tensors` (and every node they touch) in
/// float, and then every group that no int8 node reads or writes any more
/// (a quantize/dequantize pair between two float nodes would only add
/// error and work).
fn without(g: &GraphProto, plan: &Plan, tensors: &[String]) -> Plan {
    let mut p = plan.clone();
    let mut drop: HashSet<String> = tensors.iter().cloned().collect();
    while !drop.is_empty() {
        p.drop_groups(g, &drop);
        let touched: HashSet<String> = p
            .quantized_nodes
            .iter()
            .flat_map(|&n| {
                let mut t = g.node[n].input.clone();
                t.push(old_out(g, &p.absorbed, n));
                t
            })
            .collect();
        drop = p
            .tensors
            .iter()
            .filter(|t| !p.group(t).iter().any(|m| touched.contains(*m)))
            .cloned()
            .collect();
    }
    p
}

/// Names of the nodes quantized in `from` and not in `to`.
fn lost(g: &GraphProto, from: &Plan, to: &Plan) -> Vec<usize> {
    let kept: HashSet<usize> = to.quantized_nodes.iter().copied().collect();
    from.quantized_nodes
        .iter()
        .copied()
        .filter(|n| !kept.contains(n) && *n < g.node.len())
        .collect()
}

/// Sweeps `plan` for the fewest float multiply-accumulates that bring the
/// model to `target` dB; `score` gives the model's output SQNR under a
/// plan, and `progress(done, total)` hears of each one scored. Returns the
/// chosen plan and what was chosen.
pub(super) fn sweep(
    g: &GraphProto,
    plan: &Plan,
    stats: &HashMap<String, Stats>,
    target: f64,
    mut score: impl FnMut(&Plan) -> Result<f64>,
    progress: impl Fn(usize, usize),
) -> Result<(Plan, Mixed)> {
    let int8_sqnr = score(plan)?;
    let mut mixed = Mixed {
        target,
        int8_sqnr,
        float: vec![],
    };
    if int8_sqnr >= target {
        return Ok((plan.clone(), mixed));
    }
    // Each group alone in float: its gain and its cost.
    let groups: BTreeSet<Vec<String>> = plan
        .tensors
        .iter()
        .map(|t| {
            let mut m: Vec<String> = plan.group(t).iter().map(|s| s.to_string()).collect();
            m.sort();
            m
        })
        .collect();
    let mut tried = Vec::new();
    let total = 2 * groups.len();
    for members in groups {
        progress(tried.len(), total);
        let p = without(g, plan, &members);
        let macs = lost(g, plan, &p)
            .iter()
            .map(|&n| node_macs(g, plan, stats, n))
            .sum::<u64>();
        let alone = score(&p)?;
        tried.push((members, macs, alone));
    }
    // Most dB per multiply-accumulate first; groups that do not help last.
    let value = |&(_, macs, alone): &(Vec<String>, u64, f64)| {
        let gain = alone - int8_sqnr;
        if gain > 0.0 {
            gain / (macs.max(1) as f64)
        } else {
            gain - 1e9
        }
    };
    tried.sort_by(|a, b| value(b).total_cmp(&value(a)));
    let mut cur = plan.clone();
    let n = tried.len();
    for (i, (members, _, alone)) in tried.into_iter().enumerate() {
        progress(n + i, total);
        if !members.iter().any(|t| cur.is_quantized(t)) {
            continue;
        }
        let next = without(g, &cur, &members);
        let gone = lost(g, &cur, &next);
        let macs = gone.iter().map(|&n| node_macs(g, &cur, stats, n)).sum();
        let nodes = gone
            .iter()
            .map(|&n| format!("{} ({})", g.node[n].name, g.node[n].op_type))
            .collect();
        cur = next;
        let sqnr = score(&cur)?;
        mixed.float.push(FloatGroup {
            tensors: members,
            nodes,
            macs,
            alone_sqnr: alone,
            sqnr,
        });
        if sqnr >= target {
            break;
        }
    }
    progress(total, total);
    Ok((cur, mixed))
}
