//! `LSTM`, `GRU` and `RNN` (float), unrolled over the sequence as ONNX
//! defines them: the input projection of every step is one fully connected
//! op over the whole sequence; each step then runs one product with the
//! recurrent weights and the gate arithmetic as element-wise ops. Every
//! attribute is honoured: directions (forward, reverse, bidirectional),
//! `layout`, activations with their alpha/beta, `clip`, `input_forget`,
//! peepholes, `linear_before_reset`, constant `sequence_lens`, initial
//! states (constant or runtime: a stream's state fed back), and all three
//! outputs.
//!
//! onnxruntime's `DynamicQuantizeLSTM` (what its `quantize_dynamic` makes
//! of an LSTM: int8 weights, float activations and state) lowers the same
//! way, its products becoming dynamic int8 fully connected ops that read
//! the weights as int8 from flash.
//!
//! The op count grows with the sequence (about twenty ops a step and
//! direction): right for the short windows and per-frame streams of edge
//! voice models, not for a thousand-step sequence.

mod activation;
mod nodes;
mod weights;

use tract_onnx::pb::NodeProto;

use super::attrs::{attr, attr_i, attr_s, unsupported};
use super::Lowerer;
use crate::error::{malformed, Result};
use activation::activations;
use weights::f32_data;

/// Which recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cell {
    /// `LSTM`: gates i, o, f, c; activations f, g, h.
    Lstm,
    /// `GRU`: gates z, r, h; activations f, g.
    Gru,
    /// `RNN`: one gate; activation f.
    Rnn,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn => 1,
        }
    }

    /// The activations per direction and their defaults.
    fn default_activations(self) -> &'static [&'static str] {
        match self {
            Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
            Cell::Gru => &["Sigmoid", "Tanh"],
            Cell::Rnn => &["Tanh"],
        }
    }
}

impl Lowerer<'_> {
    /// Lowers an `LSTM`, `GRU` or `RNN` node.
    pub(super) fn lower_recurrent(&mut self, i: usize, node: &NodeProto, cell: Cell) -> Result<()> {
        let name = if node.name.is_empty() {
            node.output
                .iter()
                .find(|o| !o.is_empty())
                .cloned()
                .unwrap_or_default()
        } else {
            node.name.clone()
        };
        let t = |s: &str| format!("{name}.{s}");
        let hidden = attr_i(node, "hidden_size", 0);
        let direction = attr_s(node, "direction").unwrap_or_else(|| "forward".into());
        let dirs: Vec<bool> = match direction.as_str() {
            "forward" => vec![false],
            "reverse" => vec![true],
            "bidirectional" => vec![false, true],
            other => {
                return Err(malformed(format!(
                    "node '{}': direction '{other}' (forward, reverse or bidirectional)",
                    node.name
                )))
            }
        };
        let nd = dirs.len();
        let layout = attr_i(node, "layout", 0);
        if layout != 0 && layout != 1 {
            return Err(malformed(format!("node '{}': layout {layout}", node.name)));
        }
        let clip = attr(node, "clip").map(|a| a.f);
        if clip.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return Err(malformed(format!(
                "node '{}': clip must be positive",
                node.name
            )));
        }
        let input_forget = attr_i(node, "input_forget", 0) != 0;
        let lbr = attr_i(node, "linear_before_reset", 0) != 0;
        let acts = activations(node, cell, nd)?;
        let per_dir = cell.default_activations().len();
        let g = cell.gates();

        let x = self.req_input(node, 0)?;
        let xs = x.shape().to_vec();
        if xs.len() != 3 {
            return Err(malformed(format!(
                "node '{}': X must be rank 3, not {xs:?}",
                node.name
            )));
        }
        let (seq, batch, isz) = if layout == 0 {
            (xs[0], xs[1], xs[2])
        } else {
            (xs[1], xs[0], xs[2])
        };
        let (w, r, h) =
            self.recurrent_weights(node, cell.gates(), (nd, seq, batch, isz), hidden)?;
        let gh = g * h;
        let b = match self.input_val(node, 3)? {
            None => vec![0.0; nd * 2 * g * h],
            Some(_) => {
                let c = self
                    .const_input(node, 3)?
                    .ok_or_else(|| unsupported(node, "B must be constant"))?;
                if c.shape() != [nd, 2 * g * h] {
                    return Err(malformed(format!(
                        "node '{}': B {:?} must be [{nd}, {}]",
                        node.name,
                        c.shape(),
                        2 * g * h
                    )));
                }
                f32_data(&c)
            }
        };
        // Constant sequence lengths become per-step masks; a batch that is
        // full length everywhere needs none.
        let lens: Option<Vec<usize>> = match self.input_val(node, 4)? {
            None => None,
            Some(_) => {
                let c = self.const_input(node, 4)?.ok_or_else(|| {
                    unsupported(
                        node,
                        "sequence_lens must be constant (leave it out for full-length batches)",
                    )
                })?;
                let v: Vec<f64> = c.to_f64();
                if v.len() != batch || v.iter().any(|&l| l < 0.0 || l > seq as f64) {
                    return Err(malformed(format!(
                        "node '{}': sequence_lens {v:?} for batch {batch} and sequence {seq}",
                        node.name
                    )));
                }
                let v: Vec<usize> = v.iter().map(|&l| l as usize).collect();
                (v.iter().any(|&l| l < seq)).then_some(v)
            }
        };
        let peep = match (cell, node.input.get(7).filter(|s| !s.is_empty())) {
            (Cell::Lstm, Some(_)) => {
                let c = self
                    .const_input(node, 7)?
                    .ok_or_else(|| unsupported(node, "P must be constant"))?;
                if c.shape() != [nd, 3 * h] {
                    return Err(malformed(format!(
                        "node '{}': P {:?} must be [{nd}, {}]",
                        node.name,
                        c.shape(),
                        3 * h
                    )));
                }
                Some(f32_data(&c))
            }
            _ => None,
        };
        let state_shape = if layout == 0 {
            [nd, batch, h]
        } else {
            [batch, nd, h]
        };
        // Initial states: [B, H] per direction.
        let mut initial = |k: usize, what: &str| -> Result<Vec<String>> {
            let v = self.input_val(node, k)?;
            if let Some(v) = &v {
                if v.shape() != state_shape {
                    return Err(malformed(format!(
                        "node '{}': {what} {:?} must be {state_shape:?}",
                        node.name,
                        v.shape()
                    )));
                }
            }
            (0..nd)
                .map(|d| {
                    let out = t(&format!("{what}{d}"));
                    match &v {
                        None => self.f32_const(out, &[batch, h], vec![0.0; batch * h]),
                        Some(_) => {
                            let src = node.input[k].clone();
                            let dir_axis = if layout == 0 { 0 } else { 1 };
                            let sl = format!("{out}.slice");
                            self.slice_axis(i, node, &src, dir_axis, (d, d + 1), &sl)?;
                            self.reshape(i, node, &sl, &[batch, h], &out)?;
                            Ok(out)
                        }
                    }
                })
                .collect()
        };
        let h0 = initial(5, "initial_h")?;
        let c0 = if cell == Cell::Lstm {
            initial(6, "initial_c")?
        } else {
            vec![]
        };

        // X as [T·B, I].
        let x_name = node.input[0].clone();
        let xt = if layout == 1 {
            let o = t("x_tbi");
            self.transpose(i, node, &x_name, vec![1, 0, 2], &o)?;
            o
        } else {
            x_name
        };
        let x2 = t("x2");
        self.reshape(i, node, &xt, &[seq * batch, isz], &x2)?;

        let mut ys: Vec<Vec<String>> = vec![vec![String::new(); nd]; seq];
        let mut finals_h = vec![];
        let mut finals_c = vec![];
        for (d, &reverse) in dirs.iter().enumerate() {
            let dn = |s: &str| t(&format!("d{d}.{s}"));
            let act = &acts[d * per_dir..(d + 1) * per_dir];
            let (wb, rb) = (
                &b[d * 2 * gh..d * 2 * gh + gh],
                &b[d * 2 * gh + gh..(d + 1) * 2 * gh],
            );
            // The input projection folds both biases, but for GRU with
            // linear_before_reset the recurrent bias of the candidate gate,
            // which goes inside the reset product.
            let mut bias: Vec<f32> = wb.iter().zip(rb).map(|(a, b)| a + b).collect();
            if cell == Cell::Gru && lbr {
                bias[2 * h..].copy_from_slice(&wb[2 * h..]);
            }
            let wm = self.mat(node, dn("W"), &w, d, 0..gh, Some(bias))?;
            let xw2 = dn("xw2");
            self.product(i, node, &x2, &wm, &xw2)?;
            let xw = dn("xw");
            self.reshape(i, node, &xw2, &[seq, batch, gh], &xw)?;
            // The recurrent weights: whole for LSTM and RNN; for GRU the
            // update and reset gates' part, and the candidate's apart.
            // With linear_before_reset, the candidate's recurrent bias
            // goes inside the reset product.
            let rbh = (cell == Cell::Gru && lbr).then(|| rb[2 * h..].to_vec());
            let (r_main, r_cand) = match cell {
                Cell::Gru => (
                    self.mat(node, dn("R_zr"), &r, d, 0..2 * h, None)?,
                    Some(self.mat(node, dn("R_h"), &r, d, 2 * h..gh, rbh)?),
                ),
                _ => (self.mat(node, dn("R"), &r, d, 0..gh, None)?, None),
            };
            let peeps = match &peep {
                Some(p) => {
                    let pd = &p[d * 3 * h..(d + 1) * 3 * h];
                    let mut v = vec![];
                    for (k, nm) in ["Pi", "Po", "Pf"].iter().enumerate() {
                        v.push(self.f32_const(dn(nm), &[h], pd[k * h..(k + 1) * h].to_vec())?);
                    }
                    Some(v)
                }
                None => None,
            };
            let one = self.f32_const(dn("one"), &[], vec![1.0])?;
            let (mut hp, mut cp) = (h0[d].clone(), c0.get(d).cloned());
            let order: Vec<usize> = if reverse {
                (0..seq).rev().collect()
            } else {
                (0..seq).collect()
            };
            for tt in order {
                let s = |x: &str| dn(&format!("t{tt}.{x}"));
                let xs1 = s("x_slice");
                self.slice_axis(i, node, &xw, 0, (tt, tt + 1), &xs1)?;
                let xg = s("x");
                self.reshape(i, node, &xs1, &[batch, gh], &xg)?;
                let gate = |this: &mut Self, src: &str, k: usize, width: usize, out: &str| {
                    this.slice_axis(i, node, src, 1, (k * h, k * h + width), out)
                };
                // The new state (before masking).
                let (h_new, c_new) = match cell {
                    Cell::Rnn | Cell::Lstm => {
                        let hr = s("hr");
                        self.product(i, node, &hp, &r_main, &hr)?;
                        let pre = s("pre");
                        self.binary(i, node, "Add", &xg, &hr, &pre)?;
                        if cell == Cell::Rnn {
                            let hn = s("h");
                            self.activate(i, node, &act[0], clip, &pre, &hn)?;
                            (hn, None)
                        } else {
                            let c_prev = cp.clone().unwrap_or_default();
                            let [pi, po, pf, pc] = ["pre_i", "pre_o", "pre_f", "pre_c"].map(s);
                            for (k, nm) in [&pi, &po, &pf, &pc].iter().enumerate() {
                                gate(self, &pre, k, h, nm)?;
                            }
                            // Peepholes on i and f read the previous cell.
                            let peeped = |this: &mut Self,
                                          x: &str,
                                          k: usize,
                                          c: &str,
                                          tag: &str|
                             -> Result<String> {
                                match &peeps {
                                    None => Ok(x.to_string()),
                                    Some(p) => {
                                        let (pc_, o) =
                                            (s(&format!("{tag}.pc")), s(&format!("{tag}.peeped")));
                                        this.binary(i, node, "Mul", &p[k], c, &pc_)?;
                                        this.binary(i, node, "Add", x, &pc_, &o)?;
                                        Ok(o)
                                    }
                                }
                            };
                            let pi2 = peeped(self, &pi, 0, &c_prev, "i")?;
                            let it = s("i");
                            self.activate(i, node, &act[0], clip, &pi2, &it)?;
                            let ft = s("f");
                            if input_forget {
                                self.binary(i, node, "Sub", &one, &it, &ft)?;
                            } else {
                                let pf2 = peeped(self, &pf, 2, &c_prev, "f")?;
                                self.activate(i, node, &act[0], clip, &pf2, &ft)?;
                            }
                            let ct = s("c_cand");
                            self.activate(i, node, &act[1], clip, &pc, &ct)?;
                            let (fc, ic, cn) = (s("fc"), s("ic"), s("c"));
                            self.binary(i, node, "Mul", &ft, &c_prev, &fc)?;
                            self.binary(i, node, "Mul", &it, &ct, &ic)?;
                            self.binary(i, node, "Add", &fc, &ic, &cn)?;
                            let po2 = peeped(self, &po, 1, &cn, "o")?;
                            let ot = s("o");
                            self.activate(i, node, &act[0], clip, &po2, &ot)?;
                            let hc = s("h_of_c");
                            self.activate(i, node, &act[2], None, &cn, &hc)?;
                            let hn = s("h");
                            self.binary(i, node, "Mul", &ot, &hc, &hn)?;
                            (hn, Some(cn))
                        }
                    }
                    Cell::Gru => {
                        let (xzr, xh) = (s("x_zr"), s("x_h"));
                        gate(self, &xg, 0, 2 * h, &xzr)?;
                        gate(self, &xg, 2, h, &xh)?;
                        let (hzr, pzr, zr) = (s("h_zr"), s("pre_zr"), s("zr"));
                        self.product(i, node, &hp, &r_main, &hzr)?;
                        self.binary(i, node, "Add", &xzr, &hzr, &pzr)?;
                        self.activate(i, node, &act[0], clip, &pzr, &zr)?;
                        let (z, rr) = (s("z"), s("r"));
                        gate(self, &zr, 0, h, &z)?;
                        gate(self, &zr, 1, h, &rr)?;
                        let rc = r_cand.clone().ok_or_else(|| malformed("GRU without R_h"))?;
                        let pre_h = s("pre_h");
                        if lbr {
                            let (hh, rhh) = (s("hh"), s("r_hh"));
                            self.product(i, node, &hp, &rc, &hh)?;
                            self.binary(i, node, "Mul", &rr, &hh, &rhh)?;
                            self.binary(i, node, "Add", &xh, &rhh, &pre_h)?;
                        } else {
                            let (rh, hh) = (s("r_h"), s("hh"));
                            self.binary(i, node, "Mul", &rr, &hp, &rh)?;
                            self.product(i, node, &rh, &rc, &hh)?;
                            self.binary(i, node, "Add", &xh, &hh, &pre_h)?;
                        }
                        let cand = s("h_cand");
                        self.activate(i, node, &act[1], clip, &pre_h, &cand)?;
                        // H = cand + z ⊙ (H_prev − cand)
                        let (diff, zd, hn) = (s("diff"), s("zd"), s("h"));
                        self.binary(i, node, "Sub", &hp, &cand, &diff)?;
                        self.binary(i, node, "Mul", &z, &diff, &zd)?;
                        self.binary(i, node, "Add", &cand, &zd, &hn)?;
                        (hn, None)
                    }
                };
                // Steps past a sequence's end keep its state and output 0.
                let (h_next, y) = match &lens {
                    None => (h_new.clone(), h_new),
                    Some(l) => {
                        let m: Vec<f32> =
                            l.iter().map(|&n| if tt < n { 1.0 } else { 0.0 }).collect();
                        let mask = self.f32_const(s("mask"), &[batch, 1], m)?;
                        let keep =
                            |this: &mut Self, new: &str, old: &str, tag: &str| -> Result<String> {
                                let (d1, d2, o) = (
                                    s(&format!("{tag}.d")),
                                    s(&format!("{tag}.md")),
                                    s(&format!("{tag}.kept")),
                                );
                                this.binary(i, node, "Sub", new, old, &d1)?;
                                this.binary(i, node, "Mul", &mask, &d1, &d2)?;
                                this.binary(i, node, "Add", old, &d2, &o)?;
                                Ok(o)
                            };
                        let hk = keep(self, &h_new, &hp, "h")?;
                        if let (Some(cn), Some(c_prev)) = (&c_new, &cp) {
                            cp = Some(keep(self, cn, c_prev, "c")?);
                        }
                        let y = s("y_masked");
                        self.binary(i, node, "Mul", &mask, &h_new, &y)?;
                        (hk, y)
                    }
                };
                if lens.is_none() {
                    if let Some(cn) = c_new {
                        cp = Some(cn);
                    }
                }
                hp = h_next;
                let y4 = s("y4");
                self.reshape(i, node, &y, &[1, 1, batch, h], &y4)?;
                ys[tt][d] = y4;
            }
            finals_h.push(hp);
            if let Some(c) = cp {
                finals_c.push(c);
            }
        }

        // Y: [T, D, B, H] (layout 1: [B, T, D, H]).
        if let Some(yn) = node.output.first().filter(|o| !o.is_empty()).cloned() {
            let mut steps = vec![];
            for (tt, per_dir_y) in ys.into_iter().enumerate() {
                let o = t(&format!("y_t{tt}"));
                self.concat_many(i, node, per_dir_y, 1, &o)?;
                steps.push(o);
            }
            let target = if layout == 1 { t("y_tdbh") } else { yn.clone() };
            self.concat_many(i, node, steps, 0, &target)?;
            if layout == 1 {
                self.transpose(i, node, &target, vec![2, 0, 1, 3], &yn)?;
            }
        }
        // Y_h and Y_c: [D, B, H] (layout 1: [B, D, H]).
        for (k, finals) in [(1, finals_h), (2, finals_c)] {
            let Some(on) = node.output.get(k).filter(|o| !o.is_empty()).cloned() else {
                continue;
            };
            if finals.len() != nd {
                return Err(malformed(format!(
                    "node '{}': output {k} has no state",
                    node.name
                )));
            }
            let parts = finals
                .iter()
                .enumerate()
                .map(|(d, f)| {
                    let o = t(&format!("out{k}.d{d}"));
                    self.reshape(i, node, f, &[1, batch, h], &o)?;
                    Ok(o)
                })
                .collect::<Result<Vec<_>>>()?;
            let target = if layout == 1 {
                t(&format!("out{k}.dbh"))
            } else {
                on.clone()
            };
            self.concat_many(i, node, parts, 0, &target)?;
            if layout == 1 {
                self.transpose(i, node, &target, vec![1, 0, 2], &on)?;
            }
        }
        Ok(())
    }
}
