//! Mixed precision: which scale groups stay in float so that the model's
//! outputs reach an SQNR target, chosen by a sensitivity sweep over the
//! calibration samples.
//!
//! Each scale group is tried alone in float (every node that reads or
//! writes one of its tensors then runs its float kernel); the groups are
//! then put in float one at a time until the target is met, in two orders
//! (the most sensitive first, and the most dB per multiply-accumulate
//! first); in each, every group taken is then given back to int8, the
//! costliest first, where the target holds without it; the order that
//! leaves fewer multiply-accumulates in float wins. Everything else stays
//! int8.

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

/// Indices of the nodes quantized in `from` and not in `to`.
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
    let n = groups.len();
    let total = 2 * n;
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
    // Two orders to take groups in until the target is met: the most
    // sensitive first (of two equal, the cheaper), and the most dB per
    // multiply-accumulate first. Each gives back what it can; the one with
    // fewer float multiply-accumulates wins.
    let alone: HashMap<Vec<String>, f64> = tried.iter().map(|(m, _, a)| (m.clone(), *a)).collect();
    let mut by_sensitivity = tried.clone();
    by_sensitivity.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.1.cmp(&b.1)));
    let per_mac = |&(_, macs, a): &(Vec<String>, u64, f64)| {
        let gain = a - int8_sqnr;
        if gain > 0.0 {
            gain / (macs.max(1) as f64)
        } else {
            gain - 1e9
        }
    };
    let mut by_value = tried;
    by_value.sort_by(|a, b| per_mac(b).total_cmp(&per_mac(a)));
    let mut best: Option<(u64, Vec<Vec<String>>)> = None;
    for (k, order) in [by_sensitivity, by_value].into_iter().enumerate() {
        progress(n + k * n / 2, total);
        let chosen = take(g, plan, order, target, &mut score)?;
        let flat: Vec<String> = chosen.iter().flatten().cloned().collect();
        let macs = lost(g, plan, &without(g, plan, &flat))
            .iter()
            .map(|&n| node_macs(g, plan, stats, n))
            .sum::<u64>();
        if best.as_ref().is_none_or(|(b, _)| macs < *b) {
            best = Some((macs, chosen));
        }
    }
    let taken = best.map(|(_, c)| c).unwrap_or_default();
    // What each kept group adds, in the order taken.
    let mut names: Vec<String> = Vec::new();
    let mut cur = plan.clone();
    for members in taken {
        names.extend(members.iter().cloned());
        let next = without(g, plan, &names);
        let gone = lost(g, &cur, &next);
        let macs = gone.iter().map(|&n| node_macs(g, &cur, stats, n)).sum();
        let nodes = gone
            .iter()
            .map(|&n| format!("{} ({})", g.node[n].name, g.node[n].op_type))
            .collect();
        cur = next;
        mixed.float.push(FloatGroup {
            alone_sqnr: alone.get(&members).copied().unwrap_or(f64::NAN),
            tensors: members,
            nodes,
            macs,
            sqnr: score(&cur)?,
        });
    }
    progress(total, total);
    Ok((cur, mixed))
}

/// Takes the groups of `order` (members, multiply-accumulates) into float
/// one by one until `score` reaches `target`, then gives back to int8, the
/// costliest first, each one the target holds without (a group taken
/// early can be made redundant by later ones). Returns the groups kept, in
/// the order taken.
fn take(
    g: &GraphProto,
    plan: &Plan,
    order: Vec<(Vec<String>, u64, f64)>,
    target: f64,
    score: &mut impl FnMut(&Plan) -> Result<f64>,
) -> Result<Vec<Vec<String>>> {
    let mut taken: Vec<(Vec<String>, u64)> = Vec::new();
    let mut cur = plan.clone();
    for (members, macs, _) in order {
        if !members.iter().any(|t| cur.is_quantized(t)) {
            continue;
        }
        cur = without(g, &cur, &members);
        taken.push((members, macs));
        if score(&cur)? >= target {
            break;
        }
    }
    let mut by_cost: Vec<usize> = (0..taken.len()).collect();
    by_cost.sort_by_key(|&i| std::cmp::Reverse(taken[i].1));
    let mut keep = vec![true; taken.len()];
    for i in by_cost {
        keep[i] = false;
        let rest: Vec<String> = taken
            .iter()
            .zip(&keep)
            .filter(|(_, &k)| k)
            .flat_map(|((m, _), _)| m.iter().cloned())
            .collect();
        if rest.is_empty() || score(&without(g, plan, &rest))? < target {
            keep[i] = true;
        }
    }
    Ok(taken
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|((m, _), _)| m)
        .collect())
}
