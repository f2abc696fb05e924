//! State that persists between invokes: binding an ONNX model's state
//! outputs to the inputs they feed on the next frame.
//!
//! A recurrent or streaming model exported to ONNX carries its state as an
//! input/output pair (`h_in` → `h_out`) that the application would feed
//! back every frame. Bound here, the input stops being a graph input: it
//! becomes a state tensor the planner keeps out of the shared arena, the
//! runtime zeroes it on reset and copies the output into it after every
//! invoke (see `ember_runtime::format`).

use crate::error::{CompileError, Result};
use crate::ir::{Graph, TId};

/// Which state pairs to bind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateSpec {
    /// Pairs `(next-state output, state input)` by ONNX name.
    pub pairs: Vec<(String, String)>,
    /// Also find pairs by the names common exports use (`h_in`/`h_out`,
    /// `h0`/`hn`, `state`/`stateN`, `prev_*`/`next_*`, …).
    pub auto: bool,
}

impl StateSpec {
    /// Parses one `--state` value: `OUT=IN`, or `auto`.
    pub fn add(&mut self, arg: &str) -> std::result::Result<(), String> {
        if arg == "auto" {
            self.auto = true;
            return Ok(());
        }
        match arg.split_once('=') {
            Some((o, i)) if !o.is_empty() && !i.is_empty() && !i.contains('=') => {
                self.pairs.push((o.to_string(), i.to_string()));
                Ok(())
            }
            _ => Err(format!(
                "--state {arg}: expected OUTPUT=INPUT (the output that feeds the input on the next frame) or auto"
            )),
        }
    }

    /// Whether nothing is to be bound.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty() && !self.auto
    }
}

fn bad(what: String) -> CompileError {
    CompileError::BadState(what)
}

fn names(g: &Graph, ts: &[TId]) -> String {
    ts.iter()
        .map(|&t| g.tensors[t].name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(g: &Graph, t: TId) -> String {
    let t = &g.tensors[t];
    let q = t
        .quant
        .map(|(s, z)| format!(" (scale {s}, zero point {z})"))
        .unwrap_or_default();
    format!("{} {:?}{q}", t.dtype.name(), t.dims)
}

/// Binds the pairs of `spec` in `g` (after lowering, before planning).
pub fn bind(g: &mut Graph, spec: &StateSpec) -> Result<()> {
    let mut pairs: Vec<(TId, TId)> = vec![];
    for (out, inp) in &spec.pairs {
        let flag = format!("--state {out}={inp}");
        let o = *g
            .outputs
            .iter()
            .find(|&&t| g.tensors[t].name == *out)
            .ok_or_else(|| {
                bad(format!(
                    "{flag}: the model has no output named {out} (its outputs: {})",
                    names(g, &g.outputs)
                ))
            })?;
        let i = *g
            .inputs
            .iter()
            .find(|&&t| g.tensors[t].name == *inp)
            .ok_or_else(|| {
                bad(format!(
                    "{flag}: the model has no input named {inp} (its inputs: {})",
                    names(g, &g.inputs)
                ))
            })?;
        pairs.push((i, o));
    }
    if spec.auto {
        let found = find_auto(g, &pairs)?;
        if found.is_empty() && pairs.is_empty() {
            return Err(bad(format!(
                "--state auto: no output is named like the next value of an input \
                 (inputs: {}; outputs: {}); bind them with --state OUTPUT=INPUT",
                names(g, &g.inputs),
                names(g, &g.outputs)
            )));
        }
        pairs.extend(found);
    }
    for (k, &(i, o)) in pairs.iter().enumerate() {
        let flag = format!("--state {}={}", g.tensors[o].name, g.tensors[i].name);
        if let Some(&(_, o2)) = pairs[..k].iter().find(|p| p.0 == i) {
            return Err(bad(format!(
                "{flag}: input {} is already fed by {}",
                g.tensors[i].name, g.tensors[o2].name
            )));
        }
        let (ti, to) = (&g.tensors[i], &g.tensors[o]);
        if ti.dtype != to.dtype || ti.dims != to.dims || ti.quant != to.quant {
            return Err(bad(format!(
                "{flag}: the output is {} but the input is {}; a state pair must agree in type and shape",
                describe(g, o),
                describe(g, i)
            )));
        }
        if to.alias_of.unwrap_or(o) == i {
            return Err(bad(format!(
                "{flag}: the output is the input itself (the state would never change)"
            )));
        }
    }
    if !pairs.is_empty() && pairs.len() == g.inputs.len() {
        return Err(bad(format!(
            "binding every input ({}) as state leaves the model nothing to read each frame",
            names(g, &g.inputs)
        )));
    }
    g.inputs.retain(|t| !pairs.iter().any(|p| p.0 == *t));
    g.state
        .extend(pairs.into_iter().map(|(state, next)| crate::ir::StatePair {
            state,
            next,
            from_byte: 0,
        }));
    Ok(())
}

/// The output names an input called `name` is often paired with.
fn next_names(name: &str) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let mut v = vec![];
    for suffix in ["n", "_n", "_out", "out", "_new", "_next"] {
        v.push(format!("{lower}{suffix}"));
    }
    for prefix in ["new_", "next_", "out_"] {
        v.push(format!("{prefix}{lower}"));
    }
    // Whole words swapped: in/out, prev/next, past/present, old/new, and
    // a trailing 0 for n (h0 → hn).
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let seps: Vec<char> = lower
        .chars()
        .filter(|c| !c.is_ascii_alphanumeric())
        .collect();
    for (w, word) in words.iter().enumerate() {
        let swapped = match *word {
            "in" => "out",
            "input" => "output",
            "inp" => "out",
            "prev" | "previous" => "next",
            "past" => "present",
            "old" => "new",
            "cur" | "current" => "next",
            _ if word.ends_with('0') => {
                let stem = &word[..word.len() - 1];
                v.push(join(&words, &seps, w, &format!("{stem}n")));
                continue;
            }
            _ => continue,
        };
        v.push(join(&words, &seps, w, swapped));
    }
    v
}

fn join(words: &[&str], seps: &[char], at: usize, with: &str) -> String {
    let mut s = String::new();
    for (k, w) in words.iter().enumerate() {
        if k > 0 {
            s.push(seps[k - 1]);
        }
        s.push_str(if k == at { with } else { w });
    }
    s
}

/// Pairs found by name for the inputs `taken` does not bind already: an
/// output whose name is one of an input's usual next names and whose type
/// and shape agree. Two candidates for one input is an error.
fn find_auto(g: &Graph, taken: &[(TId, TId)]) -> Result<Vec<(TId, TId)>> {
    let mut found = vec![];
    for &i in &g.inputs {
        if taken.iter().any(|p| p.0 == i) {
            continue;
        }
        let want = next_names(&g.tensors[i].name);
        let ti = &g.tensors[i];
        let hits: Vec<TId> = g
            .outputs
            .iter()
            .copied()
            .filter(|&o| {
                let to = &g.tensors[o];
                want.contains(&to.name.to_ascii_lowercase())
                    && to.dtype == ti.dtype
                    && to.dims == ti.dims
                    && !taken.iter().chain(&found).any(|p| p.1 == o)
            })
            .collect();
        match hits[..] {
            [] => {}
            [o] => found.push((i, o)),
            _ => {
                return Err(bad(format!(
                    "--state auto: input {} could be fed by {}; bind it with --state OUTPUT={}",
                    ti.name,
                    names(g, &hits),
                    ti.name
                )))
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::next_names;

    #[test]
    fn usual_export_names_pair_up() {
        let pairs = [
            ("h_in", "h_out"),
            ("h0", "hn"),
            ("c0", "cn"),
            ("state", "stateN"),
            ("h", "hn"),
            ("prev_state", "next_state"),
            ("past.h", "present.h"),
            ("conv_cache", "conv_cache_out"),
            ("hidden.input", "hidden.output"),
            ("state_0", "state_n"),
        ];
        for (i, o) in pairs {
            assert!(
                next_names(i).contains(&o.to_ascii_lowercase()),
                "{i} → {o}: {:?}",
                next_names(i)
            );
        }
        assert!(!next_names("x").contains(&"y".to_string()));
    }
}
