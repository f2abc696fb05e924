//! Dynamic quantization: `DynamicQuantizeLinear → MatMulInteger → Cast →
//! Mul(scale · w_scale) [→ Add bias]` becomes one `DynamicFullyConnected`
//! op with the weights int8 in the blob; `ConvInteger` of a dynamically
//! quantized input becomes a float convolution of the input quantized and
//! dequantized as `DynamicQuantizeLinear` does.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::dynamic_fc;
use ember_runtime::ops::unary::{self, UnaryOp};
use ember_runtime::ops::NoParams;
use ember_runtime::DType;
use ndarray::{ArrayD, Axis, IxDyn};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, unsupported};
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::ir::TId;
use crate::tensor::HostTensor;

/// What an output of `DynamicQuantizeLinear` stands for.
#[derive(Clone, Debug)]
pub(super) enum DynQ {
    /// The quantized tensor of this f32 activation.
    Quantized(Act),
    /// Its scale.
    Scale(Act),
    /// Its zero point.
    ZeroPoint(Act),
    /// Its scale times constant per-column weight scales.
    ScaledBy(Act, Vec<f32>),
    /// `MatMulInteger` of the quantized activation with int8 weights `[K,
    /// N]` (accumulators, as int32 or after a Cast to float).
    Product(Act, ndarray::Array2<i8>),
    /// `ConvInteger` of the quantized activation: the activation
    /// quantized and dequantized again (`xf`, f32), the integer weights
    /// (zero point removed) and the convolution node.
    ConvProduct {
        xf: Act,
        w: ArrayD<f32>,
        node: Box<NodeProto>,
    },
}

impl Lowerer<'_> {
    /// `DynamicQuantizeLinear`: its outputs stand for the quantized
    /// activation, its scale and its zero point until the pattern that
    /// reads them is lowered.
    pub(super) fn lower_dynamic_quantize(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], "DynamicQuantizeLinear")?;
        let names = &node.output;
        let roles = [
            DynQ::Quantized(x.clone()),
            DynQ::Scale(x.clone()),
            DynQ::ZeroPoint(x),
        ];
        for (n, r) in names.iter().zip(roles) {
            if !n.is_empty() {
                self.dynq.insert(n.clone(), r);
            }
        }
        Ok(())
    }

    /// The `DynamicQuantizeLinear → MatMulInteger → Cast → Mul(scale ·
    /// w_scale) [→ Add bias]` pattern: lowers `node` if it reads one of the
    /// pattern's values (`true`), `false` when `node` has nothing to do with
    /// it. `DynamicQuantizeLinear` itself is lowered from the table.
    pub(super) fn lower_dynq(&mut self, node: &NodeProto) -> Result<bool> {
        if node.op_type == "DynamicQuantizeLinear" {
            return Ok(false);
        }
        let ins: Vec<Option<DynQ>> = node
            .input
            .iter()
            .map(|n| self.dynq.get(n).cloned())
            .collect();
        if ins.iter().all(Option::is_none) {
            return Ok(false);
        }
        let out = Self::out_name(node);
        let cfail = |what: &str| {
            unsupported(
                node,
                format!("{what}: dynamic quantization is supported in the DynamicQuantizeLinear → MatMulInteger → Cast → Mul pattern only"),
            )
        };
        match node.op_type.as_str() {
            "Mul" => {
                let other = |i: usize| 1 - i;
                // scale × constant weight scales
                let scale = ins.iter().enumerate().find_map(|(i, v)| match v {
                    Some(DynQ::Scale(x)) if i < 2 => Some((i, x.clone())),
                    _ => None,
                });
                if let Some((i, x)) = scale {
                    let w = self
                        .const_input(node, other(i))?
                        .ok_or_else(|| cfail("scale times a runtime value"))?;
                    let ws: Vec<f32> = w.to_f32_array().iter().copied().collect();
                    self.dynq.insert(out, DynQ::ScaledBy(x, ws));
                    return Ok(true);
                }
                // convolution × combined scale
                if let (
                    Some(Some(DynQ::ConvProduct { xf, w, node: conv })),
                    Some(Some(DynQ::ScaledBy(_, ws))),
                ) = (
                    ins.iter()
                        .find(|v| matches!(v, Some(DynQ::ConvProduct { .. })))
                        .cloned(),
                    ins.iter()
                        .find(|v| matches!(v, Some(DynQ::ScaledBy(..))))
                        .cloned(),
                ) {
                    self.emit_dynamic_conv(node, xf, w, &ws, &conv, &out)?;
                    return Ok(true);
                }
                // product × combined scale
                let (Some(Some(DynQ::Product(x, w))), Some(Some(DynQ::ScaledBy(xs, ws)))) = (
                    ins.iter()
                        .find(|v| matches!(v, Some(DynQ::Product(..))))
                        .cloned(),
                    ins.iter()
                        .find(|v| matches!(v, Some(DynQ::ScaledBy(..))))
                        .cloned(),
                ) else {
                    return Err(cfail("Mul"));
                };
                if xs.t != x.t {
                    return Err(cfail("scale of another tensor"));
                }
                self.emit_dynamic_fc(node, x, w, ws, &out)?;
                Ok(true)
            }
            "MatMulInteger" => {
                let (Some(Some(DynQ::Quantized(x))), Some(Some(DynQ::ZeroPoint(xz)))) =
                    (ins.first().cloned(), ins.get(2).cloned())
                else {
                    return Err(cfail("MatMulInteger without the activation's zero point"));
                };
                if xz.t != x.t {
                    return Err(cfail("zero point of another tensor"));
                }
                let w = match self.req_input(node, 1)? {
                    Val::Const(HostTensor::I8(w)) if w.ndim() == 2 => w,
                    _ => return Err(cfail("weights must be a constant int8 matrix")),
                };
                if let Some(z) = self.const_input(node, 3)? {
                    if z.to_i64().iter().any(|&v| v != 0) {
                        return Err(unsupported(node, "non-zero weight zero points"));
                    }
                }
                let w = w
                    .into_dimensionality::<ndarray::Ix2>()
                    .map_err(|e| malformed(e.to_string()))?;
                self.dynq.insert(out, DynQ::Product(x, w));
                Ok(true)
            }
            "ConvInteger" => {
                let (Some(Some(DynQ::Quantized(x))), Some(Some(DynQ::ZeroPoint(xz)))) =
                    (ins.first().cloned(), ins.get(2).cloned())
                else {
                    return Err(cfail("ConvInteger without the activation's zero point"));
                };
                if xz.t != x.t {
                    return Err(cfail("zero point of another tensor"));
                }
                let w = match self.req_input(node, 1)? {
                    Val::Const(w @ (HostTensor::I8(_) | HostTensor::U8(_))) => w,
                    _ => return Err(cfail("weights must be a constant int8 tensor")),
                };
                let wz = match self.const_input(node, 3)? {
                    Some(z) => z.to_f64(),
                    None => vec![0.0],
                };
                if w.shape().len() < 3 {
                    return Err(malformed(format!(
                        "node '{}': ConvInteger weights of rank {}",
                        node.name,
                        w.shape().len()
                    )));
                }
                let mut wf = w.to_f32_array();
                for (c, mut sl) in wf.axis_iter_mut(Axis(0)).enumerate() {
                    let z = wz[if wz.len() == 1 {
                        0
                    } else {
                        c.min(wz.len() - 1)
                    }] as f32;
                    sl.mapv_inplace(|v| v - z);
                }
                // The activation as ConvInteger sees it, back in float.
                let xf = self.new_act(
                    &format!("{}.fakequant", node.name),
                    DType::F32,
                    x.shape.clone(),
                );
                let x = self.in_rowmajor(x, &node.name)?;
                self.g.push(
                    OpCode::Unary,
                    vec![Some(x.t)],
                    xf.t,
                    &unary::Params::of(UnaryOp::FakeQuantDynamic),
                    &node.name,
                );
                self.dynq.insert(
                    out,
                    DynQ::ConvProduct {
                        xf,
                        w: wf,
                        node: Box::new(node.clone()),
                    },
                );
                Ok(true)
            }
            "Cast" if attr_i(node, "to", 1) == 1 => {
                let Some(Some(p @ (DynQ::Product(..) | DynQ::ConvProduct { .. }))) =
                    ins.first().cloned()
                else {
                    return Err(cfail("Cast"));
                };
                self.dynq.insert(out, p);
                Ok(true)
            }
            other => Err(cfail(other)),
        }
    }

    /// `Cast(ConvInteger(q(x), w)) · (x_scale · w_scale) [+ bias]` as a float
    /// convolution of the fake-quantized input with `w · w_scale`: the same
    /// sums up to f32 rounding (the integer products are exact in both).
    fn emit_dynamic_conv(
        &mut self,
        node: &NodeProto,
        xf: Act,
        w: ArrayD<f32>,
        ws: &[f32],
        conv: &NodeProto,
        out: &str,
    ) -> Result<()> {
        let co = w.shape()[0];
        if ws.len() != 1 && ws.len() != co {
            return Err(unsupported(
                node,
                "weight scales must be per tensor or per output channel",
            ));
        }
        let mut w = w;
        for (c, mut sl) in w.axis_iter_mut(Axis(0)).enumerate() {
            let s = ws[if ws.len() == 1 { 0 } else { c }];
            sl.mapv_inplace(|v| v * s);
        }
        // Bias: an Add of a constant with Co elements (any shape) right after.
        let (out_name, bias) = self.take_bias_add(out, co, false)?;
        let tag = format!("{}.dynconv", conv.name);
        let (xn, wn, bn) = (format!("{tag}.x"), format!("{tag}.w"), format!("{tag}.b"));
        self.vals.insert(xn.clone(), Val::Act(xf));
        self.vals.insert(wn.clone(), Val::Const(HostTensor::F32(w)));
        let mut n2 = conv.clone();
        n2.op_type = "Conv".into();
        n2.input = vec![xn, wn];
        if let Some(b) = bias {
            let bt = ArrayD::from_shape_vec(IxDyn(&[co]), b).expect("1-D");
            self.vals
                .insert(bn.clone(), Val::Const(HostTensor::F32(bt)));
            n2.input.push(bn);
        }
        n2.output = vec![out_name];
        if self.input_rank(&n2, 0) == Some(3) {
            self.lower_conv1d(&n2)
        } else {
            self.lower_conv(&n2)
        }
    }

    fn emit_dynamic_fc(
        &mut self,
        node: &NodeProto,
        x: Act,
        w: ndarray::Array2<i8>,
        ws: Vec<f32>,
        out: &str,
    ) -> Result<()> {
        let (k, n) = (w.shape()[0], w.shape()[1]);
        // Bias: an Add of a constant [N] right after.
        let (out_name, bias) = self.take_bias_add(out, n, true)?;
        let wt = w.t().as_standard_layout().to_owned(); // [N, K]
        let wd: Vec<i8> = wt.iter().copied().collect();
        let fc = DynamicFc {
            w: &wd,
            n,
            k,
            scales: &ws,
            bias: bias.as_deref(),
        };
        let name = node.name.clone();
        let consts = self.dynamic_fc_weights(node, &name, fc)?;
        self.push_dynamic_fc(node, &name, x, &consts, &out_name)
    }

    /// Checks `fc` and adds its constants (weights, scales, weight sums,
    /// bias) under `name`, once for every op that multiplies by them.
    pub(super) fn dynamic_fc_weights(
        &mut self,
        node: &NodeProto,
        name: &str,
        fc: DynamicFc<'_>,
    ) -> Result<DynamicFcWeights> {
        let DynamicFc {
            w: wd,
            n,
            k,
            scales: ws,
            bias,
        } = fc;
        if ws.len() != 1 && ws.len() != n {
            return Err(unsupported(
                node,
                "weight scales must be per tensor or per column",
            ));
        }
        if k > dynamic_fc::MAX_DEPTH {
            return Err(unsupported(
                node,
                "inner dimension too large for int32 accumulators",
            ));
        }
        if wd.len() != n * k || bias.is_some_and(|b| b.len() != n) {
            return Err(malformed(format!(
                "node '{}': {} int8 weights and {:?} biases for a [{n}, {k}] product",
                node.name,
                wd.len(),
                bias.map(<[f32]>::len)
            )));
        }
        let sums: Vec<i32> = wd
            .chunks(k.max(1))
            .map(|r| r.iter().map(|&v| v as i32).sum())
            .collect();
        Ok(DynamicFcWeights {
            w: self
                .g
                .const_i8(&format!("{name}.weight"), vec![n, k], None, wd),
            scales: self
                .g
                .const_f32(&format!("{name}.w_scale"), vec![ws.len()], ws),
            bias: bias.map(|b| self.g.const_f32(&format!("{name}.bias"), vec![n], b)),
            sums: self.g.const_i32(&format!("{name}.w_sum"), vec![n], &sums),
            n,
            k,
        })
    }

    /// Pushes one `DynamicFullyConnected` op named `name`: `out = x · wᵀ`
    /// with `x` quantized at run time, bound under `out_name`.
    pub(super) fn push_dynamic_fc(
        &mut self,
        node: &NodeProto,
        name: &str,
        x: Act,
        w: &DynamicFcWeights,
        out_name: &str,
    ) -> Result<()> {
        let x = self.fc_input(node, x, w.k)?;
        let rows = x.shape.iter().product::<usize>() / w.k.max(1);
        let scratch = self.g.activation(
            &format!("{name}.xq"),
            DType::I8,
            vec![dynamic_fc::fully_connected_dynamic_scratch_size(rows, w.k).max(1)],
            None,
        );
        let mut oshape = x.shape.clone();
        *oshape.last_mut().expect("rank ≥ 1") = w.n;
        let y = self.new_act(out_name, DType::F32, oshape);
        self.g.push(
            OpCode::DynamicFullyConnected,
            vec![
                Some(x.t),
                Some(w.w),
                Some(w.scales),
                w.bias,
                Some(w.sums),
                Some(scratch),
            ],
            y.t,
            &NoParams,
            name,
        );
        self.vals.insert(out_name.to_string(), Val::Act(y));
        Ok(())
    }
}

/// The constant side of a dynamic int8 fully connected op.
pub(super) struct DynamicFc<'a> {
    /// Symmetric int8 weights `[n, k]`, row-major.
    pub w: &'a [i8],
    /// Output features.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Weight scales: one, or one per output feature.
    pub scales: &'a [f32],
    /// Bias `[n]`, added after scaling.
    pub bias: Option<&'a [f32]>,
}

/// A dynamic fully connected op's constants in the graph.
#[derive(Clone, Copy, Debug)]
pub(super) struct DynamicFcWeights {
    w: TId,
    scales: TId,
    sums: TId,
    bias: Option<TId>,
    n: usize,
    k: usize,
}
