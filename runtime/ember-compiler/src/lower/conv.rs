//! Convolutions: `Conv` (float, or int8 in the `DQ → Conv → [Relu|Clip] →
//! Q` pattern; 1-D as 2-D of height 1), `QLinearConv`, `ConvInteger`
//! (and `MatMulInteger`, lowered alike), and the window geometry shared
//! with pooling.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::Window;
use ember_runtime::ops::{conv, Bounds};
use ember_runtime::DType;
use ndarray::{ArrayD, Axis, IxDyn};
use tract_onnx::pb::{AttributeProto, NodeProto};

use super::attrs::{attr_i, attr_ints, attr_s, unsupported};
use super::fusion::{ActBounds, QTail};
use super::layout::{permuted, NHWC};
use super::quantize::requantize_bias;
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;

/// The largest stride, dilation or pad a window accepts (the runtime stores
/// them as 32-bit words).
const MAX_WINDOW_ATTR: i64 = i32::MAX as i64;

impl Lowerer<'_> {
    /// `Conv`: 1-D convolutions (rank-3 input) as 2-D ones of height 1.
    pub(super) fn lower_conv_node(&mut self, node: &NodeProto) -> Result<()> {
        if self.input_rank(node, 0) == Some(3) {
            self.lower_conv1d(node)
        } else {
            self.lower_conv(node)
        }
    }

    /// Conv attributes → (window, output spatial dims).
    pub(super) fn conv_geometry(
        node: &NodeProto,
        in_hw: (usize, usize),
        k_hw: (usize, usize),
        pool: bool,
    ) -> Result<(Window, (usize, usize))> {
        let strides = attr_ints(node, "strides").unwrap_or(vec![1, 1]);
        let dil = attr_ints(node, "dilations").unwrap_or(vec![1, 1]);
        if strides.len() != 2 || dil.len() != 2 {
            return Err(unsupported(node, "only 2-D windows are supported"));
        }
        let ceil = attr_i(node, "ceil_mode", 0) != 0;
        if ceil && !pool {
            return Err(unsupported(node, "ceil_mode=1"));
        }
        if strides
            .iter()
            .chain(&dil)
            .any(|&v| v <= 0 || v > MAX_WINDOW_ATTR)
        {
            return Err(malformed(format!(
                "node '{}': strides {strides:?} and dilations {dil:?} must lie in 1..={MAX_WINDOW_ATTR}",
                node.name
            )));
        }
        if k_hw.0 == 0 || k_hw.1 == 0 {
            return Err(malformed(format!(
                "node '{}': empty kernel {k_hw:?}",
                node.name
            )));
        }
        let (sh, sw, dh, dw) = (
            strides[0] as usize,
            strides[1] as usize,
            dil[0] as usize,
            dil[1] as usize,
        );
        // Strides, dilations and pads are at most 2^31 and sizes at most
        // 2^32 (the 4 GiB tensor limit), but their products can still
        // overflow: every step below is checked.
        let too_big = || malformed(format!("node '{}': window geometry overflows", node.name));
        let auto = attr_s(node, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        let mut pads: [usize; 4] = match auto.as_str() {
            "NOTSET" => {
                let p = attr_ints(node, "pads").unwrap_or(vec![0; 4]);
                if p.len() != 4 || p.iter().any(|&v| !(0..=MAX_WINDOW_ATTR).contains(&v)) {
                    return Err(unsupported(
                        node,
                        format!("pads must be 4 values in 0..={MAX_WINDOW_ATTR}"),
                    ));
                }
                [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
            }
            "VALID" => [0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut out = [0usize; 4];
                for (d, (inp, k, s, dl)) in [(in_hw.0, k_hw.0, sh, dh), (in_hw.1, k_hw.1, sw, dw)]
                    .into_iter()
                    .enumerate()
                {
                    let o = inp.div_ceil(s).max(1);
                    let eff = (k - 1).checked_mul(dl).ok_or_else(too_big)? + 1;
                    let total = ((o - 1).checked_mul(s))
                        .and_then(|v| v.checked_add(eff))
                        .ok_or_else(too_big)?
                        .saturating_sub(inp);
                    let (a, b) = if auto == "SAME_UPPER" {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    };
                    out[d] = a;
                    out[d + 2] = b;
                }
                out
            }
            other => return Err(unsupported(node, format!("auto_pad={other}"))),
        };
        if ceil && auto == "NOTSET" {
            // Round the output size up: pad the end so that the last window
            // fits, as long as it starts inside the input or the leading
            // padding (ONNX and PyTorch drop a window that would start in
            // the trailing padding).
            for (d, (inp, k, s, dl)) in [(in_hw.0, k_hw.0, sh, dh), (in_hw.1, k_hw.1, sw, dw)]
                .into_iter()
                .enumerate()
            {
                let eff = (k - 1).checked_mul(dl).ok_or_else(too_big)? + 1;
                let padded = inp + pads[d] + pads[d + 2];
                if padded < eff {
                    continue; // reported below
                }
                let mut o = (padded - eff).div_ceil(s) + 1;
                if (o - 1) * s >= inp + pads[d] {
                    o -= 1;
                }
                let end = ((o - 1) * s).checked_add(eff).ok_or_else(too_big)?;
                pads[d + 2] += end.saturating_sub(padded);
            }
        }
        let oh = Window::out_dim(in_hw.0, k_hw.0, sh, dh, pads[0], pads[2]);
        let ow = Window::out_dim(in_hw.1, k_hw.1, sw, dw, pads[1], pads[3]);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return Err(malformed(format!(
                "node '{}': window larger than the padded input",
                node.name
            )));
        };
        let window = Window {
            stride_h: sh,
            stride_w: sw,
            dil_h: dh,
            dil_w: dw,
            pad_top: pads[0],
            pad_left: pads[1],
            pad_bottom: pads[2],
            pad_right: pads[3],
        };
        Ok((window, (oh, ow)))
    }

    pub(super) fn lower_conv(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.req_input(node, 0)?;
        let w = self.req_input(node, 1)?;
        let b = self.input_val(node, 2)?;
        let out = Self::out_name(node);
        // Quantized pattern: DQ(act) * DQ(const int8) + DQ(const int32) → [act] → Q.
        if let (
            Val::DqAct {
                src,
                scale: xs,
                zp: xz,
            },
            Val::DqConst {
                q: HostTensor::I8(wq),
                scale: ws,
                zp: wz,
                axis: 0,
            },
        ) = (&x, &w)
        {
            let bias_ok = matches!(
                &b,
                None | Some(Val::DqConst {
                    q: HostTensor::I32(_),
                    ..
                })
            );
            if bias_ok && wz.iter().all(|&z| z == 0) {
                if let Some(tail) = self.match_qtail(&out) {
                    let bias = match &b {
                        Some(Val::DqConst {
                            q: HostTensor::I32(bq),
                            scale: bs,
                            ..
                        }) => Some(requantize_bias(
                            node,
                            bq.iter().copied().collect(),
                            bs,
                            *xs,
                            ws,
                        )?),
                        _ => None,
                    };
                    let wq = wq.clone();
                    let (src, xs, xz, ws) = (src.clone(), *xs, *xz, ws.clone());
                    self.mark(&tail.nodes);
                    return self.emit_conv_s8(node, src, (xs, xz), &wq, &ws, bias, &tail);
                }
            }
        }
        // Float path.
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let wf = match self.const_input(node, 1)? {
            Some(w) => w.to_f32_array(),
            None => return Err(unsupported(node, "weights must be constant")),
        };
        let bias = match self.const_input(node, 2)? {
            Some(b) => Some(b.to_f32_array().iter().copied().collect::<Vec<f32>>()),
            None if node.input.get(2).map(|s| !s.is_empty()).unwrap_or(false) => {
                return Err(unsupported(node, "bias must be constant"))
            }
            None => None,
        };
        let mut act = ActBounds::NONE;
        let mut out_name = out;
        if let Some((bnd, name, idx)) = self.match_act(&out_name) {
            act = bnd;
            out_name = name;
            self.mark(&[idx]);
        }
        self.emit_conv_f32(node, x, wf, bias, act, &out_name)
    }

    /// Checks conv shapes and returns (window, output shape, groups, depthwise).
    fn conv_shapes(
        &self,
        node: &NodeProto,
        x: &Act,
        wshape: &[usize],
    ) -> Result<(Window, Vec<usize>, usize, bool)> {
        if wshape.len() != 4 {
            return Err(unsupported(
                node,
                "only 2-D convolutions (4-D weights) are supported",
            ));
        }
        let (n, ci, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (co, cig, kh, kw) = (wshape[0], wshape[1], wshape[2], wshape[3]);
        let g = attr_i(node, "group", 1);
        if g < 1 {
            return Err(malformed(format!("node '{}': group {g}", node.name)));
        }
        let g = g as usize;
        if cig * g != ci || co % g != 0 {
            return Err(malformed(format!(
                "node '{}': weights {wshape:?} do not match {ci} input channels in {g} groups",
                node.name
            )));
        }
        if let Some(ks) = attr_ints(node, "kernel_shape") {
            if ks != [kh as i64, kw as i64] {
                return Err(malformed(format!(
                    "node '{}': kernel_shape disagrees with the weights",
                    node.name
                )));
            }
        }
        let (geo, (oh, ow)) = Self::conv_geometry(node, (h, w), (kh, kw), false)?;
        let depthwise = g == ci && g > 1 && cig == 1;
        Ok((geo, vec![n, co, oh, ow], g, depthwise))
    }

    pub(super) fn emit_conv_f32(
        &mut self,
        node: &NodeProto,
        x: Act,
        w: ArrayD<f32>,
        bias: Option<Vec<f32>>,
        act: ActBounds,
        out_name: &str,
    ) -> Result<()> {
        let x = self.nhwc(x, node)?;
        let (geo, oshape, g, depthwise) = self.conv_shapes(node, &x, w.shape())?;
        let co = oshape[1];
        check_bias(node, bias.as_ref().map(Vec::len), co)?;
        let (wdata, wdims, opcode, gp) = pack_filter(&w.mapv(|v| v as f64), depthwise, g);
        let wdata: Vec<f32> = wdata.iter().map(|&v| v as f32).collect();
        let wt = self
            .g
            .const_f32(&format!("{}.weight", node.name), wdims, &wdata);
        let bt = bias.map(|b| {
            self.g
                .const_f32(&format!("{}.bias", node.name), vec![co], &b)
        });
        let y = self
            .g
            .activation(out_name, DType::F32, permuted(&oshape, &NHWC), None);
        let params = conv::Params {
            window: geo,
            groups: gp,
            act: Bounds::float(act.lo, act.hi),
            table_zp: None,
        };
        self.g.push(
            opcode,
            vec![Some(x.t), Some(wt), bt],
            y,
            &params,
            &node.name,
        );
        self.vals.insert(
            out_name.to_string(),
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm: NHWC.to_vec(),
            }),
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_conv_s8(
        &mut self,
        node: &NodeProto,
        x: Act,
        xq: (f32, i32),
        w: &ArrayD<i8>,
        ws: &[f32],
        bias: Option<Vec<i32>>,
        tail: &QTail,
    ) -> Result<()> {
        let x = self.nhwc(x, node)?;
        self.g.set_quant(x.t, Some(xq));
        let (geo, oshape, g, depthwise) = self.conv_shapes(node, &x, w.shape())?;
        let co = oshape[1];
        check_bias(node, bias.as_ref().map(Vec::len), co)?;
        if ws.len() != 1 && ws.len() != co {
            return Err(malformed(format!(
                "node '{}': {} weight scales for {co} channels",
                node.name,
                ws.len()
            )));
        }
        let (wdata, wdims, opcode, gp) = pack_filter(&w.mapv(|v| v as f64), depthwise, g);
        let wdata: Vec<i8> = wdata.iter().map(|&v| v as i8).collect();
        let wt = self.g.const_i8(
            &format!("{}.weight", node.name),
            wdims,
            Some((ws[0], 0)),
            &wdata,
        );
        let bt = bias.map(|b| {
            self.g
                .const_i32(&format!("{}.bias", node.name), vec![co], &b)
        });
        let rq = self.requant_tensor(&node.name, xq.0, ws, tail.scale);
        let y = self.g.activation(
            &tail.out_name,
            DType::I8,
            permuted(&oshape, &NHWC),
            Some((tail.scale, tail.zp)),
        );
        let (lo, hi) = Self::act_i8(tail.act, tail.scale, tail.zp);
        let params = conv::Params {
            window: geo,
            groups: gp,
            act: Bounds::int(lo, hi),
            table_zp: None,
        };
        self.g.push(
            opcode,
            vec![Some(x.t), Some(wt), bt, Some(rq)],
            y,
            &params,
            &node.name,
        );
        self.vals.insert(
            tail.out_name.clone(),
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm: NHWC.to_vec(),
            }),
        );
        Ok(())
    }

    pub(super) fn lower_qlinear_conv(&mut self, node: &NodeProto) -> Result<()> {
        let x = match self.req_input(node, 0)? {
            Val::Act(a) if self.g.tensors[a.t].dtype == DType::I8 => a,
            _ => return Err(unsupported(node, "input must be a runtime int8 tensor")),
        };
        let c = |i: usize| -> Result<HostTensor> {
            self.const_input(node, i)?
                .ok_or_else(|| unsupported(node, format!("input {i} must be constant")))
        };
        let xs = c(1)?.to_f64()[0] as f32;
        let xz = c(2)?.to_i64()[0] as i32;
        let w = match self.input_val(node, 3)? {
            Some(Val::Const(HostTensor::I8(w))) => w,
            _ => return Err(unsupported(node, "weights must be a constant int8 tensor")),
        };
        let ws: Vec<f32> = c(4)?.to_f64().iter().map(|&v| v as f32).collect();
        if c(5)?.to_i64().iter().any(|&z| z != 0) {
            return Err(unsupported(node, "non-zero weight zero points"));
        }
        let ys = c(6)?.to_f64()[0] as f32;
        let yz = c(7)?.to_i64()[0] as i32;
        let bias = match self.input_val(node, 8)? {
            Some(Val::Const(HostTensor::I32(b))) => Some(b.iter().copied().collect()),
            None => None,
            _ => return Err(unsupported(node, "bias must be a constant int32 tensor")),
        };
        let mut tail = QTail {
            act: ActBounds::NONE,
            out_name: Self::out_name(node),
            scale: ys,
            zp: yz,
            nodes: vec![],
        };
        if let Some((b, name, idx)) = self.match_act(&tail.out_name) {
            tail.act = b;
            tail.out_name = name;
            self.mark(&[idx]);
        }
        self.emit_conv_s8(node, x, (xs, xz), &w, &ws, bias, &tail)
    }

    /// ConvInteger / MatMulInteger: exact integer products computed in f32
    /// (exact while |accumulator| < 2^24), result kept as f32.
    pub(super) fn lower_integer_op(&mut self, node: &NodeProto) -> Result<()> {
        let x = match self.req_input(node, 0)? {
            Val::Act(a) => a,
            _ => return Err(unsupported(node, "input A must be a runtime tensor")),
        };
        let xz = match self.input_val(node, 2)? {
            Some(Val::Const(z)) => z.to_i64().first().copied().unwrap_or(0) as i32,
            None => 0,
            _ => return Err(unsupported(node, "zero points must be constant")),
        };
        if !matches!(self.g.tensors[x.t].dtype, DType::I8 | DType::U8) {
            return Err(unsupported(node, "input A must be int8 or uint8"));
        }
        // (a - zp) exactly, as f32: dequantize with scale 1.
        let xf = self.dequantize_now(x, 1.0, xz, &node.name);
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "B must be constant"))?;
        let wz = match self.input_val(node, 3)? {
            Some(Val::Const(z)) => z.to_f64(),
            None => vec![0.0],
            _ => return Err(unsupported(node, "zero points must be constant")),
        };
        let mut wf = w.to_f32_array();
        let channel_axis = if node.op_type == "ConvInteger" { 0 } else { 1 };
        let channels = wf.shape().get(channel_axis).copied();
        if wf.ndim() != if channel_axis == 0 { 4 } else { 2 } {
            return Err(unsupported(
                node,
                format!(
                    "B of shape {:?} (4-D for ConvInteger, 2-D for MatMulInteger)",
                    wf.shape()
                ),
            ));
        }
        if wz.len() != 1 && Some(wz.len()) != channels {
            return Err(malformed(format!(
                "node '{}': {} zero points for B of shape {:?}",
                node.name,
                wz.len(),
                wf.shape()
            )));
        }
        if node.op_type == "ConvInteger" {
            for (c, mut sl) in wf.axis_iter_mut(Axis(0)).enumerate() {
                let z = wz[if wz.len() == 1 { 0 } else { c }] as f32;
                sl.mapv_inplace(|v| v - z);
            }
            let out = Self::out_name(node);
            self.emit_conv_f32(node, xf, wf, None, ActBounds::NONE, &out)
        } else {
            for (c, mut sl) in wf.axis_iter_mut(Axis(1)).enumerate() {
                let z = wz[if wz.len() == 1 { 0 } else { c }] as f32;
                sl.mapv_inplace(|v| v - z);
            }
            let out = Self::out_name(node);
            let wt = wf.reversed_axes().as_standard_layout().to_owned(); // [N, K]
            self.emit_fc_f32(node, xf, wt, None, ActBounds::NONE, &out)
        }
    }

    /// A 1-D convolution as a 2-D one of height 1.
    pub(super) fn lower_conv1d(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], "Conv")?;
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "weights must be constant"))?;
        if w.shape().len() != 3 {
            return Err(malformed(format!(
                "node '{}': 1-D conv weights must be 3-D",
                node.name
            )));
        }
        let tag = format!("{}.2d", node.name);
        let xs = format!("{tag}.x");
        let ws = format!("{tag}.w");
        let ys = format!("{tag}.y");
        let x4 = self.unsqueeze_act(x, 2, &xs);
        self.vals.insert(xs.clone(), Val::Act(x4));
        let mut w4 = w.shape().to_vec();
        w4.insert(2, 1);
        let w2 = w.map_layout(|a| {
            a.into_shape_with_order(IxDyn(&w4))
                .map_err(|e| malformed(e.to_string()))
        })?;
        self.vals.insert(ws.clone(), Val::Const(w2));
        let mut n2 = widened_to_2d(node);
        n2.input[0] = xs;
        n2.input[1] = ws;
        n2.output = vec![ys.clone()];
        if !n2.attribute.iter().any(|a| a.name == "kernel_shape") {
            n2.attribute.push(AttributeProto {
                name: "kernel_shape".into(),
                ints: vec![1, w.shape()[2] as i64],
                ..Default::default()
            });
        }
        self.lower_conv(&n2)?;
        let y = match self.vals.get(&ys).cloned() {
            Some(Val::Act(a)) => a,
            _ => {
                return Err(malformed(format!(
                    "node '{}': 1-D conv produced no tensor",
                    node.name
                )))
            }
        };
        let out = Self::out_name(node);
        let y3 = self.squeeze_act(y, 2, &out);
        self.vals.insert(out, Val::Act(y3));
        Ok(())
    }
}

/// `node` with its window attributes (`kernel_shape`, `strides`,
/// `dilations`, `pads`) widened from 1-D to 2-D by a leading unit axis, to
/// lower a 1-D convolution or pooling as a 2-D one of height 1.
/// `Err` unless a bias (of `len` values, if any) has one per output channel.
fn check_bias(node: &NodeProto, len: Option<usize>, channels: usize) -> Result<()> {
    match len {
        Some(n) if n != channels => Err(malformed(format!(
            "node '{}': bias of {n} values for {channels} output channels",
            node.name
        ))),
        _ => Ok(()),
    }
}

pub(super) fn widened_to_2d(node: &NodeProto) -> NodeProto {
    let mut n = node.clone();
    for a in &mut n.attribute {
        match a.name.as_str() {
            "pads" if a.ints.len() == 2 => a.ints = vec![0, a.ints[0], 0, a.ints[1]],
            "kernel_shape" | "strides" | "dilations" if a.ints.len() == 1 => a.ints.insert(0, 1),
            _ => {}
        }
    }
    n
}

/// ONNX filter `[Co, Ci/g, Kh, Kw]` → Ember layout; returns (data, dims,
/// opcode, groups-or-multiplier param).
fn pack_filter(
    w: &ArrayD<f64>,
    depthwise: bool,
    groups: usize,
) -> (Vec<f64>, Vec<usize>, OpCode, usize) {
    let s = w.shape();
    let (co, cig, kh, kw) = (s[0], s[1], s[2], s[3]);
    if depthwise {
        // [Co, 1, Kh, Kw] → [1, Kh, Kw, Co]
        let p = w.clone().permuted_axes(IxDyn(&[1, 2, 3, 0]));
        let data = p.as_standard_layout().iter().copied().collect();
        let ci = groups;
        (data, vec![1, kh, kw, co], OpCode::DepthwiseConv2d, co / ci)
    } else {
        let p = w.clone().permuted_axes(IxDyn(&[0, 2, 3, 1]));
        let data = p.as_standard_layout().iter().copied().collect();
        (data, vec![co, kh, kw, cig], OpCode::Conv2d, groups)
    }
}
