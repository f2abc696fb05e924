//! Pooling: `AveragePool`, `MaxPool`, `GlobalAveragePool` and
//! `GlobalMaxPool` on NHWC (float, or int8 when quantized on both sides
//! with the same parameters).

use ember_runtime::format::OpCode;
use ember_runtime::kernels::{pool::PoolParams, Window};
use ember_runtime::ops::{pool, Bounds};
use ember_runtime::DType;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, attr_ints, attr_s, step, unsupported};
use super::conv::widened_to_2d;
use super::fusion::ActBounds;
use super::layout::{permuted, NHWC};
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;
use ember_runtime::kernels::unary::{UnaryFn, UnaryOp};

impl Lowerer<'_> {
    pub(super) fn lower_pool(&mut self, node: &NodeProto) -> Result<()> {
        let global = node.op_type.starts_with("Global");
        let avg = node.op_type.contains("Average");
        let out = Self::out_name(node);
        let xv = self.req_input(node, 0)?;
        if matches!(&xv, Val::Act(a) | Val::DqAct { src: a, .. } if a.shape.len() == 3) {
            return self.lower_pool1d(node, xv);
        }
        if matches!(&xv, Val::Act(a) | Val::DqAct { src: a, .. } if a.shape.len() == 5) {
            return self.lower_pool3d(node);
        }
        // Quantized: DQ → pool → Q with identical params stays int8.
        let qtail = match &xv {
            Val::DqAct { scale, zp, .. } => self
                .match_qtail(&out)
                .filter(|t| t.scale == *scale && t.zp == *zp),
            _ => None,
        };
        let (x, quant) = match (&xv, &qtail) {
            (Val::DqAct { src, scale, zp }, Some(_)) => (src.clone(), Some((*scale, *zp))),
            _ => (self.float_act(&node.input[0], &node.op_type)?, None),
        };
        let x = self.nhwc(x, node)?;
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (kh, kw, geo, (oh, ow)) = if global {
            let window = Window {
                stride_h: 1,
                stride_w: 1,
                dil_h: 1,
                dil_w: 1,
                ..Window::default()
            };
            (h, w, window, (1, 1))
        } else {
            let k = attr_ints(node, "kernel_shape")
                .ok_or_else(|| malformed(format!("node '{}': no kernel_shape", node.name)))?;
            if k.len() != 2 {
                return Err(unsupported(node, "only 2-D pooling"));
            }
            let (Ok(kh), Ok(kw)) = (usize::try_from(k[0]), usize::try_from(k[1])) else {
                return Err(malformed(format!(
                    "node '{}': negative kernel_shape {k:?}",
                    node.name
                )));
            };
            let (geo, o) = Self::conv_geometry(node, (h, w), (kh, kw), true)?;
            (kh, kw, geo, o)
        };
        let count_include_pad = avg && attr_i(node, "count_include_pad", 0) != 0;
        let declared = attr_ints(node, "pads").unwrap_or(vec![0; 4]);
        let ceil = attr_i(node, "ceil_mode", 0) != 0
            && attr_s(node, "auto_pad").is_none_or(|a| a == "NOTSET");
        if count_include_pad
            && ceil
            && declared.len() == 4
            && (geo.pad_bottom as i64 != declared[2] || geo.pad_right as i64 != declared[3])
        {
            return Err(unsupported(
                node,
                "ceil_mode=1 with count_include_pad=1 where a window overhangs the padding",
            ));
        }
        let pool = PoolParams {
            kh,
            kw,
            win: geo,
            count_include_pad,
        };
        let oshape = vec![n, c, oh, ow];
        let opcode = if avg {
            OpCode::AvgPool2d
        } else {
            OpCode::MaxPool2d
        };
        let (dtype, out_name, act) = match (&qtail, quant) {
            (Some(t), Some(q)) => {
                self.mark(&t.nodes);
                self.g.set_quant(x.t, Some(q));
                let (lo, hi) = Self::act_i8(t.act, q.0, q.1);
                (DType::I8, t.out_name.clone(), Bounds::int(lo, hi))
            }
            _ => {
                let mut act = ActBounds::NONE;
                let mut name = out;
                if let Some((b, nm, idx)) = self.match_act(&name) {
                    act = b;
                    name = nm;
                    self.mark(&[idx]);
                }
                (DType::F32, name, Bounds::float(act.lo, act.hi))
            }
        };
        let y = self
            .g
            .activation(&out_name, dtype, permuted(&oshape, &NHWC), quant);
        let params = pool::Params { pool, act };
        self.g.push(opcode, vec![Some(x.t)], y, &params, &node.name);
        self.vals.insert(
            out_name,
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm: NHWC.to_vec(),
            }),
        );
        Ok(())
    }

    /// 1-D pooling (`[N, C, L]`) as 2-D pooling of height 1.
    fn lower_pool1d(&mut self, node: &NodeProto, xv: Val) -> Result<()> {
        let tag = format!("{}.2d", node.name);
        let (xs, ys) = (format!("{tag}.x"), format!("{tag}.y"));
        let x4 = match xv {
            Val::Act(a) => Val::Act(self.unsqueeze_act(a, 2, &xs)),
            Val::DqAct { src, scale, zp } => Val::DqAct {
                src: self.unsqueeze_act(src, 2, &xs),
                scale,
                zp,
            },
            _ => return Err(unsupported(node, "pooling of a constant")),
        };
        self.vals.insert(xs.clone(), x4);
        let mut n2 = widened_to_2d(node);
        n2.input[0] = xs;
        n2.output = vec![ys.clone()];
        self.lower_pool(&n2)?;
        let Some(Val::Act(y)) = self.vals.get(&ys).cloned() else {
            return Err(malformed(format!(
                "node '{}': 1-D pooling produced no tensor",
                node.name
            )));
        };
        let out = Self::out_name(node);
        let y3 = self.squeeze_act(y, 2, &out);
        self.vals.insert(out, Val::Act(y3));
        Ok(())
    }

    /// 3-D pooling as two 2-D ones: max and average are separable (the
    /// taps that count are a product of per-axis ones), so the window
    /// runs over H×W on `[N, C·D, H, W]`, then over D on `[N, C, D, H'·W']`.
    fn lower_pool3d(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let [n, c, d, h, w] = x.shape[..] else {
            return Err(malformed(format!("node '{}': not 5-D", node.name)));
        };
        let out = Self::out_name(node);
        let global = node.op_type.starts_with("Global");
        let three = |name: &str, default: i64| -> Result<[i64; 3]> {
            match attr_ints(node, name) {
                None => Ok([default; 3]),
                Some(v) if v.len() == 3 => Ok([v[0], v[1], v[2]]),
                Some(v) => Err(malformed(format!(
                    "node '{}': {name} {v:?} for 3-D pooling",
                    node.name
                ))),
            }
        };
        let k = if global {
            [d as i64, h as i64, w as i64]
        } else {
            three("kernel_shape", 0)?
        };
        let s = three("strides", 1)?;
        let dil = three("dilations", 1)?;
        let pads = match attr_ints(node, "pads") {
            None => [0i64; 6],
            Some(p) if p.len() == 6 => [p[0], p[1], p[2], p[3], p[4], p[5]],
            Some(p) => return Err(malformed(format!("node '{}': pads {p:?}", node.name))),
        };
        // One 2-D pass: `axes` picks (kernel, stride, dilation, pads) of the
        // 3-D window for the pass's two axes (None: a unit axis).
        let pass = |input: String, output: String, axes: [Option<usize>; 2]| -> NodeProto {
            let pick = |v: &[i64; 3], unit: i64| -> Vec<i64> {
                axes.iter().map(|a| a.map_or(unit, |i| v[i])).collect()
            };
            let mut p2 = node.clone();
            p2.op_type = if global {
                node.op_type.trim_start_matches("Global").to_string()
            } else {
                node.op_type.clone()
            };
            p2.input = vec![input];
            p2.output = vec![output];
            p2.attribute.retain(|a| {
                !matches!(
                    a.name.as_str(),
                    "kernel_shape" | "strides" | "dilations" | "pads"
                )
            });
            let ints = |name: &str, v: Vec<i64>| tract_onnx::pb::AttributeProto {
                name: name.into(),
                ints: v,
                r#type: 7, // INTS
                ..Default::default()
            };
            let begin: Vec<i64> = axes.iter().map(|a| a.map_or(0, |i| pads[i])).collect();
            let end: Vec<i64> = axes.iter().map(|a| a.map_or(0, |i| pads[i + 3])).collect();
            p2.attribute.push(ints("kernel_shape", pick(&k, 1)));
            p2.attribute.push(ints("strides", pick(&s, 1)));
            p2.attribute.push(ints("dilations", pick(&dil, 1)));
            p2.attribute.push(ints("pads", [begin, end].concat()));
            p2
        };
        let hw_in = format!("{out}.hw_in");
        let a = self.reshape_act(x, vec![n, c * d, h, w], &hw_in)?;
        self.vals.insert(hw_in.clone(), Val::Act(a));
        let hw_out = format!("{out}.hw");
        self.lower_pool(&pass(hw_in, hw_out.clone(), [Some(1), Some(2)]))?;
        let y = self.float_act(&hw_out, &node.op_type)?;
        let (h2, w2) = (y.shape[2], y.shape[3]);
        let d_in = format!("{out}.d_in");
        let a = self.reshape_act(y, vec![n, c, d, h2 * w2], &d_in)?;
        self.vals.insert(d_in.clone(), Val::Act(a));
        let d_out = format!("{out}.d");
        self.lower_pool(&pass(d_in, d_out.clone(), [Some(0), None]))?;
        let y = self.float_act(&d_out, &node.op_type)?;
        let d2 = y.shape[2];
        let y = self.reshape_act(y, vec![n, c, d2, h2, w2], &out)?;
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }
}

impl Lowerer<'_> {
    /// `LpPool`: `(Σ |x|ᵖ)^(1/p)` over each window, as |x|ᵖ, an average pool
    /// counting the padding (its zeros add nothing) times the window size,
    /// and the p-th root.
    pub(super) fn lower_lp_pool(&mut self, node: &NodeProto) -> Result<()> {
        let p = attr_i(node, "p", 2);
        if p < 1 {
            return Err(unsupported(node, format!("p={p}")));
        }
        let k = attr_ints(node, "kernel_shape")
            .ok_or_else(|| malformed(format!("node '{}': no kernel_shape", node.name)))?;
        let window = k
            .iter()
            .try_fold(1i64, |w, &d| if d > 0 { w.checked_mul(d) } else { None })
            .ok_or_else(|| {
                malformed(format!(
                    "node '{}': kernel_shape {k:?} must be positive with a product below 2^63",
                    node.name
                ))
            })?;
        let out = Self::out_name(node);
        let t = |s: &str| format!("{out}.{s}");
        let c = |v: f32| Val::Const(HostTensor::F32(ndarray::arr0(v).into_dyn()));
        self.vals.insert(t("p"), c(p as f32));
        self.vals.insert(t("inv_p"), c(1.0 / p as f32));
        self.vals.insert(t("window"), c(window as f32));
        let x = node.input[0].clone();
        self.lower_unary(
            &step(node, "Abs", &[x], &t("abs")),
            UnaryFn::of(UnaryOp::Abs),
        )?;
        self.lower_binary(0, &step(node, "Pow", &[t("abs"), t("p")], &t("powered")))?;
        let mut avg = node.clone();
        avg.op_type = "AveragePool".into();
        avg.input = vec![t("powered")];
        avg.output = vec![t("mean")];
        avg.attribute
            .retain(|a| a.name != "p" && a.name != "count_include_pad");
        avg.attribute.push(tract_onnx::pb::AttributeProto {
            name: "count_include_pad".into(),
            i: 1,
            r#type: 2, // INT
            ..Default::default()
        });
        self.lower_pool(&avg)?;
        self.lower_binary(0, &step(node, "Mul", &[t("mean"), t("window")], &t("sum")))?;
        self.lower_binary(0, &step(node, "Pow", &[t("sum"), t("inv_p")], &out))
    }
}

impl Lowerer<'_> {
    /// `LRN`: `x / (bias + α/size · Σ x²)^β`, the sum over `size` channels
    /// centred on each (an average pool along the channels of `[N, 1, C,
    /// H·W]` counting the padding, times `size`).
    pub(super) fn lower_lrn(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        if x.shape.len() < 3 {
            return Err(unsupported(
                node,
                format!("input of rank {}", x.shape.len()),
            ));
        }
        let size = attr_i(node, "size", 0);
        if size < 1 {
            return Err(malformed(format!("node '{}': size {size}", node.name)));
        }
        let (alpha, beta, bias) = (
            super::attrs::attr_f(node, "alpha", 1e-4),
            super::attrs::attr_f(node, "beta", 0.75),
            super::attrs::attr_f(node, "bias", 1.0),
        );
        let shape = x.shape.clone();
        let (n, c) = (shape[0], shape[1]);
        let rest: usize = shape[2..].iter().product();
        let out = Self::out_name(node);
        let t = |s: &str| format!("{out}.{s}");
        let k = |v: f32| Val::Const(HostTensor::F32(ndarray::arr0(v).into_dyn()));
        self.vals.insert(t("x"), Val::Act(x));
        self.vals.insert(t("scale"), k(alpha));
        self.vals.insert(t("bias"), k(bias));
        self.vals.insert(t("beta"), k(beta));
        self.lower_binary(0, &step(node, "Mul", &[t("x"), t("x")], &t("squared")))?;
        let sq = self.float_act(&t("squared"), &node.op_type)?;
        let rows = self.reshape_act(sq, vec![n, 1, c, rest], &t("channels"))?;
        self.vals.insert(t("channels"), Val::Act(rows));
        let ints = |name: &str, v: Vec<i64>| tract_onnx::pb::AttributeProto {
            name: name.into(),
            ints: v,
            r#type: 7, // INTS
            ..Default::default()
        };
        let (before, after) = ((size - 1) / 2, size - 1 - (size - 1) / 2);
        let mut avg = step(node, "AveragePool", &[t("channels")], &t("window_mean"));
        avg.attribute = vec![
            ints("kernel_shape", vec![size, 1]),
            ints("pads", vec![before, 0, after, 0]),
            tract_onnx::pb::AttributeProto {
                name: "count_include_pad".into(),
                i: 1,
                r#type: 2, // INT
                ..Default::default()
            },
        ];
        self.lower_pool(&avg)?;
        // α/size · Σ x² = α · mean over the window (padding counted).
        let mean = self.float_act(&t("window_mean"), &node.op_type)?;
        let mean = self.reshape_act(mean, shape, &t("mean"))?;
        self.vals.insert(t("mean"), Val::Act(mean));
        self.lower_binary(
            0,
            &step(node, "Mul", &[t("mean"), t("scale")], &t("scaled")),
        )?;
        self.lower_binary(0, &step(node, "Add", &[t("scaled"), t("bias")], &t("base")))?;
        self.lower_binary(
            0,
            &step(node, "Pow", &[t("base"), t("beta")], &t("denominator")),
        )?;
        self.lower_binary(0, &step(node, "Div", &[t("x"), t("denominator")], &out))
    }
}
