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

use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::{AttributeProto, NodeProto};

use super::attrs::{attr, attr_i, attr_s, step, unsupported};
use super::dynamic_quant::{DynamicFc, DynamicFcWeights};
use super::op_table;
use super::{Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;

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

/// One activation function of a recurrent op, with its parameters.
#[derive(Clone, Debug)]
struct Activation {
    name: String,
    alpha: Option<f32>,
    beta: Option<f32>,
}

fn attr_floats(node: &NodeProto, name: &str) -> Vec<f32> {
    attr(node, name)
        .map(|a| a.floats.clone())
        .unwrap_or_default()
}

fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: v,
        r#type: 1, // FLOAT
        ..Default::default()
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2, // INT
        ..Default::default()
    }
}

fn ints_attr(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v,
        r#type: 7, // INTS
        ..Default::default()
    }
}

/// The activations of `node`, `per_dir` for each of `dirs` directions,
/// with `activation_alpha`/`activation_beta` consumed in order by the
/// functions that take them.
fn activations(node: &NodeProto, cell: Cell, dirs: usize) -> Result<Vec<Activation>> {
    let defaults = cell.default_activations();
    let names: Vec<String> = match attr(node, "activations") {
        Some(a) if !a.strings.is_empty() => a
            .strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).to_string())
            .collect(),
        _ => (0..dirs)
            .flat_map(|_| defaults.iter().map(|s| s.to_string()))
            .collect(),
    };
    if names.len() != defaults.len() * dirs {
        return Err(malformed(format!(
            "node '{}': {} activations given, {} needed ({} per direction)",
            node.name,
            names.len(),
            defaults.len() * dirs,
            defaults.len()
        )));
    }
    let (alphas, betas) = (
        attr_floats(node, "activation_alpha"),
        attr_floats(node, "activation_beta"),
    );
    let (mut a, mut b) = (alphas.iter(), betas.iter());
    names
        .into_iter()
        .map(|name| {
            let (takes_alpha, takes_beta) = match name.to_ascii_lowercase().as_str() {
                "sigmoid" | "tanh" | "relu" | "softsign" | "softplus" => (false, false),
                "leakyrelu" | "thresholdedrelu" | "elu" => (true, false),
                "affine" | "scaledtanh" | "hardsigmoid" => (true, true),
                _ => {
                    return Err(unsupported(
                        node,
                        format!("activation '{name}' (Ember has Sigmoid, Tanh, Relu, LeakyRelu, ThresholdedRelu, Elu, HardSigmoid, Softsign, Softplus, Affine, ScaledTanh)"),
                    ))
                }
            };
            Ok(Activation {
                name,
                alpha: if takes_alpha { a.next().copied() } else { None },
                beta: if takes_beta { b.next().copied() } else { None },
            })
        })
        .collect()
}

/// A constant's data as f32.
fn f32_data(c: &HostTensor) -> Vec<f32> {
    c.to_f64().into_iter().map(|v| v as f32).collect()
}

/// The weights `[directions, gates · hidden, cols]` of a recurrent op.
struct Weights {
    /// Their values (dequantized when int8), for products folded at
    /// compile time and for float kernels.
    f: Vec<f32>,
    /// int8 weights (zero point 0) with one scale per row, computed from
    /// directly by dynamic fully connected ops.
    q: Option<(Vec<i8>, Vec<f32>)>,
    /// Rows per direction.
    rows: usize,
    /// Columns.
    cols: usize,
}

/// Rows `lo..hi` of one direction's weights, `[hi − lo, cols]`, under a
/// name, with the bias added after the product.
#[derive(Clone)]
struct Mat {
    /// The constant's name (bound only for float weights).
    name: String,
    /// Columns.
    cols: usize,
    /// Values, row-major.
    f: Vec<f32>,
    /// The bias's name and values.
    bias: Option<(String, Vec<f32>)>,
    /// For int8 weights, the dynamic fully connected op's constants, made
    /// once for every step.
    q: Option<DynamicFcWeights>,
}

/// `DynamicQuantizeLSTM`'s weights: int8 `[D, cols, rows]` (transposed
/// from LSTM's) with scales and zero points per tensor, per direction or
/// per row, as `[D, rows, cols]`. Non-zero zero points dequantize to float.
fn dequantize_weights(
    node: &NodeProto,
    q: &HostTensor,
    scale: &HostTensor,
    zp: Option<&HostTensor>,
    (nd, rows, cols): (usize, usize, usize),
) -> Result<Weights> {
    let HostTensor::I8(qa) = q else {
        return Err(unsupported(
            node,
            format!("{} weights (int8 only)", q.dtype_name()),
        ));
    };
    if qa.shape() != [nd, cols, rows] {
        return Err(malformed(format!(
            "node '{}': int8 weights {:?} must be [{nd}, {cols}, {rows}]",
            node.name,
            qa.shape()
        )));
    }
    let per_row = |t: &HostTensor, what: &str| -> Result<Vec<f64>> {
        let v = t.to_f64();
        match v.len() {
            1 => Ok(vec![v[0]; nd * rows]),
            n if n == nd => Ok(v.iter().flat_map(|&s| vec![s; rows]).collect()),
            n if n == nd * rows => Ok(v),
            n => Err(malformed(format!(
                "node '{}': {n} weight {what}s for {nd} direction(s) of {rows} rows",
                node.name
            ))),
        }
    };
    let s = per_row(scale, "scale")?;
    if s.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
        return Err(malformed(format!(
            "node '{}': weight scales must be positive and finite",
            node.name
        )));
    }
    let z = match zp {
        Some(z) => per_row(z, "zero point")?,
        None => vec![0.0; nd * rows],
    };
    let mut qv = vec![0i8; nd * rows * cols];
    let mut f = vec![0f32; nd * rows * cols];
    for d in 0..nd {
        for r in 0..rows {
            let row = d * rows + r;
            for c in 0..cols {
                let v = qa[[d, c, r]];
                qv[row * cols + c] = v;
                f[row * cols + c] = ((f64::from(v) - z[row]) * s[row]) as f32;
            }
        }
    }
    let symmetric = z.iter().all(|&v| v == 0.0);
    Ok(Weights {
        f,
        q: symmetric.then(|| (qv, s.iter().map(|&v| v as f32).collect())),
        rows,
        cols,
    })
}

impl Lowerer<'_> {
    /// Lowers a synthesized node through the operator table.
    fn sub(&mut self, i: usize, n: NodeProto) -> Result<()> {
        match op_table::find(&n.domain, &n.op_type) {
            Some(op) => (op.lower)(self, i, &n),
            None => Err(op_table::unknown_op(&n)),
        }
    }

    /// Binds a constant under `name` and returns the name.
    fn konst(&mut self, name: String, t: HostTensor) -> String {
        self.vals.insert(name.clone(), Val::Const(t));
        name
    }

    fn f32_const(&mut self, name: String, dims: &[usize], v: Vec<f32>) -> Result<String> {
        let a = ArrayD::from_shape_vec(IxDyn(dims), v).map_err(|e| malformed(e.to_string()))?;
        Ok(self.konst(name, HostTensor::F32(a)))
    }

    fn i64_const(&mut self, name: String, v: Vec<i64>) -> Result<String> {
        let n = v.len();
        let a = ArrayD::from_shape_vec(IxDyn(&[n]), v).map_err(|e| malformed(e.to_string()))?;
        Ok(self.konst(name, HostTensor::I64(a)))
    }

    /// `out = x[.., lo..hi, ..]` along `axis`.
    fn slice_axis(
        &mut self,
        i: usize,
        node: &NodeProto,
        x: &str,
        axis: usize,
        (lo, hi): (usize, usize),
        out: &str,
    ) -> Result<()> {
        let s = self.i64_const(format!("{out}.starts"), vec![lo as i64])?;
        let e = self.i64_const(format!("{out}.ends"), vec![hi as i64])?;
        let a = self.i64_const(format!("{out}.axes"), vec![axis as i64])?;
        self.sub(i, step(node, "Slice", &[x.into(), s, e, a], out))
    }

    fn reshape(
        &mut self,
        i: usize,
        node: &NodeProto,
        x: &str,
        dims: &[usize],
        out: &str,
    ) -> Result<()> {
        let shape = self.i64_const(
            format!("{out}.shape"),
            dims.iter().map(|&d| d as i64).collect(),
        )?;
        self.sub(i, step(node, "Reshape", &[x.into(), shape], out))
    }

    fn transpose(
        &mut self,
        i: usize,
        node: &NodeProto,
        x: &str,
        perm: Vec<i64>,
        out: &str,
    ) -> Result<()> {
        let mut n = step(node, "Transpose", &[x.into()], out);
        n.attribute.push(ints_attr("perm", perm));
        self.sub(i, n)
    }

    fn binary(
        &mut self,
        i: usize,
        node: &NodeProto,
        op: &str,
        a: &str,
        b: &str,
        out: &str,
    ) -> Result<()> {
        self.sub(i, step(node, op, &[a.into(), b.into()], out))
    }

    /// Concatenates `parts` along `axis` into `out`, eight at a time (an
    /// op reads at most eight inputs).
    fn concat_many(
        &mut self,
        i: usize,
        node: &NodeProto,
        parts: Vec<String>,
        axis: i64,
        out: &str,
    ) -> Result<()> {
        let mut level = parts;
        let mut round = 0;
        loop {
            if level.len() == 1 {
                return self.sub(i, step(node, "Identity", &[level[0].clone()], out));
            }
            let last = level.len() <= 8;
            let mut next = vec![];
            for (k, chunk) in level.chunks(8).enumerate() {
                let name = if last {
                    out.to_string()
                } else {
                    format!("{out}.cat{round}_{k}")
                };
                let mut n = step(node, "Concat", chunk, &name);
                n.attribute.push(int_attr("axis", axis));
                self.sub(i, n)?;
                next.push(name);
            }
            if last {
                return Ok(());
            }
            level = next;
            round += 1;
        }
    }

    /// Rows `rows` of direction `d` of `w` as a matrix named `name`
    /// (bound as a constant when the weights are float), with `bias`.
    fn mat(
        &mut self,
        node: &NodeProto,
        name: String,
        w: &Weights,
        d: usize,
        rows: std::ops::Range<usize>,
        bias: Option<Vec<f32>>,
    ) -> Result<Mat> {
        let (lo, hi) = ((d * w.rows + rows.start), (d * w.rows + rows.end));
        let f = w.f[lo * w.cols..hi * w.cols].to_vec();
        let bias = match bias {
            Some(b) => Some((
                self.f32_const(format!("{name}.bias"), &[hi - lo], b.clone())?,
                b,
            )),
            None => None,
        };
        let q = match &w.q {
            Some((q, s)) => {
                let fc = DynamicFc {
                    w: &q[lo * w.cols..hi * w.cols],
                    n: hi - lo,
                    k: w.cols,
                    scales: &s[lo..hi],
                    bias: bias.as_ref().map(|b| b.1.as_slice()),
                };
                Some(self.dynamic_fc_weights(node, &name, fc)?)
            }
            None => {
                self.f32_const(name.clone(), &[hi - lo, w.cols], f.clone())?;
                None
            }
        };
        Ok(Mat {
            name,
            cols: w.cols,
            f,
            bias,
            q,
        })
    }

    /// `out = a · wᵀ (+ bias)`: a fully connected op (dynamic int8 for
    /// int8 weights), or computed here when `a` is a constant (the first
    /// step's zero or constant state).
    fn product(&mut self, i: usize, node: &NodeProto, a: &str, w: &Mat, out: &str) -> Result<()> {
        let cols = w.cols.max(1);
        let rows = w.f.len() / cols;
        let bias = w.bias.as_ref();
        if let Some(Val::Const(c)) = self.vals.get(a).cloned() {
            let av = f32_data(&c);
            let batch = av.len() / cols;
            let mut y = vec![0.0f32; batch * rows];
            for b in 0..batch {
                for r in 0..rows {
                    let dot: f32 = (0..cols)
                        .map(|m| av[b * cols + m] * w.f[r * cols + m])
                        .sum();
                    y[b * rows + r] = dot + bias.map_or(0.0, |b| b.1[r]);
                }
            }
            self.f32_const(out.into(), &[batch, rows], y)?;
            return Ok(());
        }
        if let Some(q) = &w.q {
            let x = self.float_act(a, &node.op_type)?;
            return self.push_dynamic_fc(node, out, x, q, out);
        }
        let mut ins = vec![a.to_string(), w.name.clone()];
        if let Some(b) = bias {
            ins.push(b.0.clone());
        }
        let mut n = step(node, "Gemm", &ins, out);
        n.attribute.push(int_attr("transB", 1));
        self.sub(i, n)
    }

    /// `out = act(clip(x))`.
    fn activate(
        &mut self,
        i: usize,
        node: &NodeProto,
        act: &Activation,
        clip: Option<f32>,
        x: &str,
        out: &str,
    ) -> Result<()> {
        let mut x = x.to_string();
        if let Some(c) = clip {
            let lo = self.f32_const(format!("{out}.clip_lo"), &[], vec![-c])?;
            let hi = self.f32_const(format!("{out}.clip_hi"), &[], vec![c])?;
            let clipped = format!("{out}.clipped");
            self.sub(i, step(node, "Clip", &[x, lo, hi], &clipped))?;
            x = clipped;
        }
        let with = |op: &str, attrs: Vec<AttributeProto>| {
            let mut n = step(node, op, &[x.clone()], out);
            n.attribute = attrs;
            n
        };
        let alpha = |d: f32| vec![float_attr("alpha", act.alpha.unwrap_or(d))];
        match act.name.to_ascii_lowercase().as_str() {
            "sigmoid" => self.sub(i, with("Sigmoid", vec![])),
            "tanh" => self.sub(i, with("Tanh", vec![])),
            "relu" => self.sub(i, with("Relu", vec![])),
            "softsign" => self.sub(i, with("Softsign", vec![])),
            "softplus" => self.sub(i, with("Softplus", vec![])),
            "leakyrelu" => self.sub(i, with("LeakyRelu", alpha(0.01))),
            "thresholdedrelu" => self.sub(i, with("ThresholdedRelu", alpha(1.0))),
            "elu" => self.sub(i, with("Elu", alpha(1.0))),
            "hardsigmoid" => {
                let mut a = alpha(0.2);
                a.push(float_attr("beta", act.beta.unwrap_or(0.5)));
                self.sub(i, with("HardSigmoid", a))
            }
            // alpha · x + beta
            "affine" => {
                let a =
                    self.f32_const(format!("{out}.alpha"), &[], vec![act.alpha.unwrap_or(1.0)])?;
                let b =
                    self.f32_const(format!("{out}.beta"), &[], vec![act.beta.unwrap_or(0.0)])?;
                let ax = format!("{out}.ax");
                self.binary(i, node, "Mul", &x, &a, &ax)?;
                self.binary(i, node, "Add", &ax, &b, out)
            }
            // alpha · tanh(beta · x)
            "scaledtanh" => {
                let a =
                    self.f32_const(format!("{out}.alpha"), &[], vec![act.alpha.unwrap_or(1.0)])?;
                let b =
                    self.f32_const(format!("{out}.beta"), &[], vec![act.beta.unwrap_or(1.0)])?;
                let (bx, t) = (format!("{out}.bx"), format!("{out}.tanh"));
                self.binary(i, node, "Mul", &x, &b, &bx)?;
                self.sub(i, step(node, "Tanh", &[bx], &t))?;
                self.binary(i, node, "Mul", &t, &a, out)
            }
            other => Err(unsupported(node, format!("activation '{other}'"))),
        }
    }

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
        // DynamicQuantizeLSTM: int8 W [D, I, 4H] and R [D, H, 4H] with
        // their scales and zero points as inputs 8 to 11.
        let quantized = node.domain == op_table::MS_DOMAIN;
        let raw = |this: &Self, k: usize, what: &str| {
            let v = if quantized {
                match this.input_val(node, k)? {
                    Some(Val::Const(c)) => Some(c),
                    _ => None,
                }
            } else {
                this.const_input(node, k)?
            };
            v.ok_or_else(|| unsupported(node, format!("{what} must be constant")))
        };
        let (w, r) = (raw(self, 1, "W")?, raw(self, 2, "R")?);
        let h = if hidden > 0 {
            hidden as usize
        } else if quantized {
            r.shape().get(1).copied().unwrap_or(0)
        } else {
            r.shape().last().copied().unwrap_or(0)
        };
        if h == 0 || seq == 0 || batch == 0 {
            return Err(unsupported(
                node,
                "an empty sequence, batch or hidden state",
            ));
        }
        let gh = g * h;
        let (w, r) = if quantized {
            let scale = |k: usize, what: &str| raw(self, k, what);
            let zp = |k: usize| -> Result<Option<HostTensor>> {
                match self.input_val(node, k)? {
                    None => Ok(None),
                    Some(Val::Const(c)) => Ok(Some(c)),
                    Some(_) => Err(unsupported(node, "weight zero points must be constant")),
                }
            };
            let (ws, rs) = (scale(8, "W_scale")?, scale(10, "R_scale")?);
            let (wz, rz) = (zp(9)?, zp(11)?);
            (
                dequantize_weights(node, &w, &ws, wz.as_ref(), (nd, gh, isz))?,
                dequantize_weights(node, &r, &rs, rz.as_ref(), (nd, gh, h))?,
            )
        } else {
            if w.shape() != [nd, gh, isz] || r.shape() != [nd, gh, h] {
                return Err(malformed(format!(
                    "node '{}': W {:?} and R {:?} must be [{nd}, {gh}, {isz}] and [{nd}, {gh}, {h}]",
                    node.name,
                    w.shape(),
                    r.shape(),
                )));
            }
            let float = |c: &HostTensor, cols: usize| Weights {
                f: f32_data(c),
                q: None,
                rows: gh,
                cols,
            };
            (float(&w, isz), float(&r, h))
        };
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
