//! The weights of a recurrent node: float, or int8 with scales as
//! onnxruntime's `DynamicQuantizeLSTM` stores them, sliced per direction
//! and gate into the products each step runs (dynamic int8 fully
//! connected ops for int8 weights).

use tract_onnx::pb::NodeProto;

use super::super::attrs::{step, unsupported};
use super::super::dynamic_quant::{DynamicFc, DynamicFcWeights};
use super::super::op_table;
use super::super::{Lowerer, Val};
use super::nodes::int_attr;
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;

/// A constant's data as f32.
pub(super) fn f32_data(c: &HostTensor) -> Vec<f32> {
    c.to_f64().into_iter().map(|v| v as f32).collect()
}

/// The weights `[directions, gates · hidden, cols]` of a recurrent op.
pub(super) struct Weights {
    /// Their values (dequantized when int8), for products folded at
    /// compile time and for float kernels.
    pub(super) f: Vec<f32>,
    /// int8 weights (zero point 0) with one scale per row, computed from
    /// directly by dynamic fully connected ops.
    pub(super) q: Option<(Vec<i8>, Vec<f32>)>,
    /// Rows per direction.
    pub(super) rows: usize,
    /// Columns.
    pub(super) cols: usize,
}

/// Rows `lo..hi` of one direction's weights, `[hi − lo, cols]`, under a
/// name, with the bias added after the product.
#[derive(Clone)]
pub(super) struct Mat {
    /// The constant's name (bound only for float weights).
    pub(super) name: String,
    /// Columns.
    pub(super) cols: usize,
    /// Values, row-major.
    pub(super) f: Vec<f32>,
    /// The bias's name and values.
    pub(super) bias: Option<(String, Vec<f32>)>,
    /// For int8 weights, the dynamic fully connected op's constants, made
    /// once for every step.
    pub(super) q: Option<DynamicFcWeights>,
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
    /// W and R of `node` as [`Weights`] `[D, gates·H, cols]`, and the
    /// hidden size: float constants for `LSTM`, `GRU` and `RNN`; for
    /// `DynamicQuantizeLSTM`, int8 W `[D, I, 4H]` and R `[D, H, 4H]` with
    /// their scales and zero points as inputs 8 to 11.
    pub(super) fn recurrent_weights(
        &self,
        node: &NodeProto,
        g: usize,
        (nd, seq, batch, isz): (usize, usize, usize, usize),
        hidden: i64,
    ) -> Result<(Weights, Weights, usize)> {
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
        let weights = if quantized {
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
        Ok((weights.0, weights.1, h))
    }

    /// (bound as a constant when the weights are float), with `bias`.
    pub(super) fn mat(
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
    pub(super) fn product(
        &mut self,
        i: usize,
        node: &NodeProto,
        a: &str,
        w: &Mat,
        out: &str,
    ) -> Result<()> {
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
}
