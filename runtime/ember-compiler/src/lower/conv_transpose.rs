//! `ConvTranspose` (1-D and 2-D, groups, strides, dilations, pads,
//! output_padding, output_shape, auto_pad): the output extent and cut-off
//! padding decided here; a following Relu/Clip fused.
//!
//! Without groups or dilation it becomes a sub-pixel convolution: output
//! row `q·s + r` of a stride-`s` transposed convolution is
//! `Σ_j x[q − j]·w[r + s·j]`, a stride-1 convolution of `x` with taps
//! `r, r + s, …` of the filter reversed. One convolution computes all `s`
//! phases of both axes as `s_h·s_w·M` output channels (filter taps past the
//! kernel are zeros), a transpose interleaves them, a slice cuts the
//! padding. So int8 QDQ models get an int8 transposed convolution on the
//! optimized (Helium, DSP, NEON) convolution kernels, bit-exact with the
//! reference convolution, and float ones the optimized f32 convolution
//! where the kernel is a multiple of the stride (no zero taps). The rest
//! run the direct f32 kernel ([`OpCode::ConvTranspose`]).

use ember_runtime::format::OpCode;
use ember_runtime::kernels::conv_transpose::ConvTransposeGeometry;
use ember_runtime::kernels::Window;
use ember_runtime::ops::{conv_transpose, Bounds};
use ember_runtime::DType;
use ndarray::IxDyn;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, attr_ints, attr_s, unsupported};
use super::conv::widened_to_2d;
use super::fusion::{ActBounds, QTail};
use super::gather_slice::AxisSlice;
use super::layout::{identity, permuted, NHWC};
use super::quantize::requantize_bias;
use super::shape::transposed;
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;
use ndarray::ArrayD;
use tract_onnx::pb::AttributeProto;

/// Strides, dilations, the padding cut from each side (leading `≥ 0`;
/// trailing negative where the output runs past the full extent) and the
/// output extent of a 2-D transposed convolution.
struct Geometry {
    s: [usize; 2],
    d: [usize; 2],
    pads: [i64; 4],
    out: [usize; 2],
}

/// Reads the geometry attributes of a 2-D `ConvTranspose` over an input of
/// `inp` rows and columns with a `k` kernel.
fn geometry(node: &NodeProto, inp: [usize; 2], k: [usize; 2]) -> Result<Geometry> {
    let two = |name: &str, d: i64| -> Result<[usize; 2]> {
        let v = attr_ints(node, name).unwrap_or(vec![d, d]);
        match v.as_slice() {
            &[a, b] if a >= 0 && b >= 0 => Ok([a as usize, b as usize]),
            _ => Err(unsupported(
                node,
                format!("{name} {v:?} (two non-negative values)"),
            )),
        }
    };
    let s = two("strides", 1)?;
    let d = two("dilations", 1)?;
    let op = two("output_padding", 0)?;
    if s.contains(&0) || d.contains(&0) {
        return Err(malformed(format!(
            "node '{}': zero stride or dilation",
            node.name
        )));
    }
    // The extent before any padding is cut.
    let full = |i: usize| s[i] * (inp[i] - 1) + op[i] + (k[i] - 1) * d[i] + 1;
    let auto = attr_s(node, "auto_pad").unwrap_or_else(|| "NOTSET".into());
    let target = match attr_ints(node, "output_shape") {
        Some(v) if v.len() >= 2 => Some([v[v.len() - 2], v[v.len() - 1]]),
        Some(v) => {
            return Err(malformed(format!(
                "node '{}': output_shape {v:?}",
                node.name
            )))
        }
        None if auto.starts_with("SAME") => Some([(inp[0] * s[0]) as i64, (inp[1] * s[1]) as i64]),
        None => None,
    };
    let (pads, out): ([i64; 4], [i64; 2]) = match target {
        Some(t) => {
            let mut p = [0i64; 4];
            for i in 0..2 {
                let total = full(i) as i64 - t[i];
                // Halves rounded down, as the ONNX reference does.
                let half = total.div_euclid(2);
                let (a, b) = if auto == "SAME_UPPER" {
                    (half, total - half)
                } else {
                    (total - half, half)
                };
                p[i] = a;
                p[i + 2] = b;
            }
            (p, t)
        }
        None => {
            let p = match auto.as_str() {
                "VALID" => vec![0; 4],
                _ => attr_ints(node, "pads").unwrap_or(vec![0; 4]),
            };
            if p.len() != 4 {
                return Err(unsupported(node, "pads must be 4 values"));
            }
            let p = [p[0], p[1], p[2], p[3]];
            let o = [full(0) as i64 - p[0] - p[2], full(1) as i64 - p[1] - p[3]];
            (p, o)
        }
    };
    if pads[0] < 0 || pads[1] < 0 || out[0] < 1 || out[1] < 1 {
        return Err(unsupported(
            node,
            format!("padding {pads:?} for an output of {out:?} (the leading padding must not be negative, the output not empty)"),
        ));
    }
    Ok(Geometry {
        s,
        d,
        pads,
        out: [out[0] as usize, out[1] as usize],
    })
}

/// One spatial axis of the sub-pixel form (see the module comment): a
/// stride-1 convolution of `taps` taps with `pad_lo`/`pad_hi` padding and
/// `len` outputs, whose `s` phases interleaved give the transposed
/// convolution's uncut output from row `(taps − 1 − pad_lo)·s` on, of which
/// the result is the `out` rows from `crop` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SubAxis {
    s: usize,
    k: usize,
    taps: usize,
    pad_lo: usize,
    pad_hi: usize,
    len: usize,
    crop: usize,
    out: usize,
}

/// The sub-pixel plan of an axis of `n` inputs, a `k` kernel, stride `s`,
/// leading cut `pad` and `out` outputs; `None` where the cut is so deep
/// that the convolution would need negative padding.
fn sub_axis(n: usize, k: usize, s: usize, pad: i64, out: usize) -> Option<SubAxis> {
    let pad = usize::try_from(pad).ok()?;
    let taps = k.div_ceil(s);
    // Phase rows before `first` are cut entirely.
    let first = pad / s;
    let pad_lo = (taps - 1).checked_sub(first)?;
    let needed = (pad + out).div_ceil(s) - first;
    // Outputs without trailing padding (none, or fewer than none, when the
    // kernel is longer than the padded input); the padding makes up the rest.
    let base = (n + pad_lo + 1) as i64 - taps as i64;
    let pad_hi = (needed as i64 - base).max(0) as usize;
    let len = usize::try_from(base + pad_hi as i64).ok()?;
    (len > 0).then_some(SubAxis {
        s,
        k,
        taps,
        pad_lo,
        pad_hi,
        len,
        crop: pad - first * s,
        out,
    })
}

/// The sub-pixel filter `[s_h·s_w·M, C, taps_h, taps_w]` of a transposed
/// convolution's `[C, M, k_h, k_w]` one: output channel
/// `(r_h·s_w + r_w)·M + m` holds taps `r + s·(taps − 1 − j)` of channel
/// `m`, reversed, zero past the kernel.
fn sub_filter<T: Copy + Default>(w: &ArrayD<T>, a: [SubAxis; 2]) -> ArrayD<T> {
    let (c, m) = (w.shape()[0], w.shape()[1]);
    let [h, v] = a;
    ArrayD::from_shape_fn(IxDyn(&[h.s * v.s * m, c, h.taps, v.taps]), |i| {
        let (r, mm) = (i[0] / m, i[0] % m);
        let th = r / v.s + h.s * (h.taps - 1 - i[2]);
        let tw = r % v.s + v.s * (v.taps - 1 - i[3]);
        if th < h.k && tw < v.k {
            w[&[i[1], mm, th, tw][..]]
        } else {
            T::default()
        }
    })
}

/// The stride-1 `Conv` node of the sub-pixel form (attributes only: the
/// convolution emitters read its geometry and name).
fn sub_conv_node(node: &NodeProto, a: [SubAxis; 2]) -> NodeProto {
    let ints = |name: &str, v: Vec<i64>| AttributeProto {
        name: name.into(),
        ints: v,
        r#type: 7, // INTS
        ..Default::default()
    };
    let [h, w] = a;
    NodeProto {
        op_type: "Conv".into(),
        name: format!("{}.subpixel", node.name),
        attribute: vec![
            ints("kernel_shape", vec![h.taps as i64, w.taps as i64]),
            ints(
                "pads",
                [h.pad_lo, w.pad_lo, h.pad_hi, w.pad_hi]
                    .map(|p| p as i64)
                    .to_vec(),
            ),
        ],
        ..Default::default()
    }
}

impl Lowerer<'_> {
    pub(super) fn lower_conv_transpose(&mut self, node: &NodeProto) -> Result<()> {
        let (xv, wv) = (self.req_input(node, 0)?, self.req_input(node, 1)?);
        match (xv.shape().len(), wv.shape().len()) {
            (3, 3) => {
                let x = self.float_act(&node.input[0], &node.op_type)?;
                let w = self
                    .const_input(node, 1)?
                    .ok_or_else(|| unsupported(node, "the filter must be constant"))?
                    .to_f32_array();
                return self.lower_conv_transpose_1d(node, x, w);
            }
            (4, 4) => {}
            (r, _) => {
                return Err(unsupported(
                    node,
                    format!(
                        "input of rank {r} (1-D and 2-D transposed convolutions are supported)"
                    ),
                ))
            }
        }
        let groups = attr_i(node, "group", 1);
        let ws = wv.shape().to_vec();
        let (c, mg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        let xs = xv.shape().to_vec();
        if groups < 1 || c % groups as usize != 0 || xs[1] != c {
            return Err(malformed(format!(
                "node '{}': {c} filter channels, input channels {}, group {groups}",
                node.name, xs[1]
            )));
        }
        let groups = groups as usize;
        let m = mg * groups;
        let Geometry { s, d, pads, out } = geometry(node, [xs[2], xs[3]], [kh, kw])?;
        if groups == 1 && d == [1, 1] {
            let axes = [0, 1].map(|i| sub_axis(xs[2 + i], [kh, kw][i], s[i], pads[i], out[i]));
            if let [Some(ah), Some(aw)] = axes {
                if self.subpixel_s8(node, &xv, &wv, [ah, aw])? {
                    return Ok(());
                }
                // In float only where no tap is wasted: the direct kernel
                // does the same products without the zero taps.
                if [ah, aw].iter().all(|a| a.k.is_multiple_of(a.s)) {
                    return self.subpixel_f32(node, [ah, aw]);
                }
            }
        }
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "the filter must be constant"))?
            .to_f32_array();
        // Filter [c, m/g, kh, kw] → [kh, kw, c, m/g].
        let packed: Vec<f32> = w
            .permuted_axes(IxDyn(&[2, 3, 0, 1]))
            .as_standard_layout()
            .iter()
            .copied()
            .collect();
        let wt = self.g.const_f32(
            &format!("{}.weight", node.name),
            vec![kh, kw, c, mg],
            &packed,
        );
        let bt = self.float_bias(node, m)?.map(|b| {
            self.g
                .const_f32(&format!("{}.bias", node.name), vec![m], &b)
        });
        let x = self.nhwc(x, node)?;
        let (name, act) = self.fused_act(node);
        let oshape = vec![x.shape[0], m, out[0], out[1]];
        let y = self
            .g
            .activation(&name, DType::F32, permuted(&oshape, &NHWC), None);
        let geo = ConvTransposeGeometry {
            kh,
            kw,
            win: Window {
                stride_h: s[0],
                stride_w: s[1],
                dil_h: d[0],
                dil_w: d[1],
                pad_top: pads[0] as usize,
                pad_left: pads[1] as usize,
                pad_bottom: pads[2].max(0) as usize,
                pad_right: pads[3].max(0) as usize,
            },
            groups,
        };
        self.g.push(
            OpCode::ConvTranspose,
            vec![Some(x.t), Some(wt), bt],
            y,
            &conv_transpose::Params {
                geo,
                act: Bounds::float(act.lo, act.hi),
            },
            &node.name,
        );
        self.vals.insert(
            name,
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm: NHWC.to_vec(),
            }),
        );
        Ok(())
    }

    /// A 1-D transposed convolution as a 2-D one of height 1.
    fn lower_conv_transpose_1d(
        &mut self,
        node: &NodeProto,
        x: Act,
        w: ndarray::ArrayD<f32>,
    ) -> Result<()> {
        let tag = format!("{}.2d", node.name);
        let (xs, ws, ys) = (format!("{tag}.x"), format!("{tag}.w"), format!("{tag}.y"));
        let x4 = self.unsqueeze_act(x, 2, &xs);
        self.vals.insert(xs.clone(), Val::Act(x4));
        let w4 = w.insert_axis(ndarray::Axis(2));
        self.vals
            .insert(ws.clone(), Val::Const(crate::tensor::HostTensor::F32(w4)));
        let mut n2 = widened_to_2d(node);
        n2.input[0] = xs;
        n2.input[1] = ws;
        n2.output = vec![ys.clone()];
        for a in &mut n2.attribute {
            if a.ints.len() == 1 {
                match a.name.as_str() {
                    "output_padding" => a.ints.insert(0, 0),
                    "output_shape" => a.ints.insert(0, 1),
                    _ => {}
                }
            }
        }
        self.lower_conv_transpose(&n2)?;
        let Some(Val::Act(y)) = self.vals.get(&ys).cloned() else {
            return Err(malformed(format!(
                "node '{}': 1-D transposed convolution produced no tensor",
                node.name
            )));
        };
        let out = Self::out_name(node);
        let y3 = self.squeeze_act(y, 2, &out);
        self.vals.insert(out, Val::Act(y3));
        Ok(())
    }
}

impl Lowerer<'_> {
    /// The int8 sub-pixel form of a QDQ transposed convolution (input,
    /// filter and bias dequantized, output quantized, the filter symmetric
    /// per tensor or per output channel); `false` if the node is not one.
    fn subpixel_s8(
        &mut self,
        node: &NodeProto,
        xv: &Val,
        wv: &Val,
        a: [SubAxis; 2],
    ) -> Result<bool> {
        let (
            Val::DqAct { src, scale, zp },
            Val::DqConst {
                q: HostTensor::I8(wq),
                scale: ws,
                zp: wz,
                axis,
            },
        ) = (xv, wv)
        else {
            return Ok(false);
        };
        let m = wq.shape()[1];
        let per_channel = ws.len() == m && *axis == 1;
        if !(ws.len() == 1 || per_channel) || wz.iter().any(|&z| z != 0) {
            return Ok(false);
        }
        let bias = match self.input_val(node, 2)? {
            None => None,
            Some(Val::DqConst {
                q: HostTensor::I32(b),
                scale: bs,
                ..
            }) if b.len() == m => Some(requantize_bias(
                node,
                b.iter().copied().collect(),
                &bs,
                *scale,
                ws,
            )?),
            Some(_) => return Ok(false),
        };
        let out = Self::out_name(node);
        let Some(tail) = self.match_qtail(&out) else {
            return Ok(false);
        };
        self.mark(&tail.nodes);
        let phases = a[0].s * a[1].s;
        let rep = |v: &[f32]| -> Vec<f32> {
            if v.len() == 1 {
                v.to_vec()
            } else {
                v.repeat(phases)
            }
        };
        let conv = sub_conv_node(node, a);
        let sub = QTail {
            act: tail.act,
            out_name: format!("{}.subpixel", tail.out_name),
            scale: tail.scale,
            zp: tail.zp,
            nodes: vec![],
        };
        let (src, xq) = (src.clone(), (*scale, *zp));
        let wsub = sub_filter(wq, a);
        let ws = rep(ws);
        let bias = bias.map(|b| b.repeat(phases));
        self.emit_conv_s8(&conv, src, xq, &wsub, &ws, bias, &sub)?;
        self.interleave_phases(node, &sub.out_name, a, &tail.out_name)?;
        Ok(true)
    }

    /// The float sub-pixel form; a following Relu/Clip is fused into the
    /// convolution (it commutes with the interleave and the cut).
    fn subpixel_f32(&mut self, node: &NodeProto, a: [SubAxis; 2]) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "the filter must be constant"))?
            .to_f32_array();
        let phases = a[0].s * a[1].s;
        let bias = self
            .float_bias(node, w.shape()[1])?
            .map(|b| b.repeat(phases));
        let (name, act) = self.fused_act(node);
        let conv = sub_conv_node(node, a);
        let sub = format!("{name}.subpixel");
        self.emit_conv_f32(&conv, x, sub_filter(&w, a), bias, act, &sub)?;
        self.interleave_phases(node, &sub, a, &name)
    }

    /// The constant f32 bias of `m` output channels, if the node has one.
    fn float_bias(&self, node: &NodeProto, m: usize) -> Result<Option<Vec<f32>>> {
        match self.const_input(node, 2)? {
            Some(b) => {
                let b: Vec<f32> = b.to_f32_array().iter().copied().collect();
                if b.len() != m {
                    return Err(malformed(format!(
                        "node '{}': bias of {} for {m} output channels",
                        node.name,
                        b.len()
                    )));
                }
                Ok(Some(b))
            }
            None if node.input.get(2).is_some_and(|n| !n.is_empty()) => {
                Err(unsupported(node, "the bias must be constant"))
            }
            None => Ok(None),
        }
    }

    /// The name the node's result is bound to and the bounds of a
    /// following Relu/Clip folded into it (marked done).
    fn fused_act(&mut self, node: &NodeProto) -> (String, ActBounds) {
        let name = Self::out_name(node);
        match self.match_act(&name) {
            Some((b, nm, idx)) => {
                self.mark(&[idx]);
                (nm, b)
            }
            None => (name, ActBounds::NONE),
        }
    }

    /// Interleaves the phases of the sub-pixel convolution bound to `sub`
    /// (NHWC, channels ordered `(r_h, r_w, m)`) into rows and columns (one
    /// transpose: `[N, Q_h, Q_w, s_h, s_w, M]` → `[N, Q_h, s_h, Q_w, s_w,
    /// M]`) and binds `name` to the cut-out output.
    fn interleave_phases(
        &mut self,
        node: &NodeProto,
        sub: &str,
        a: [SubAxis; 2],
        name: &str,
    ) -> Result<()> {
        let Some(Val::Act(y)) = self.vals.get(sub).cloned() else {
            return Err(malformed(format!(
                "node '{}': the sub-pixel convolution produced no tensor",
                node.name
            )));
        };
        let [h, w] = a;
        let (n, m) = (y.shape[0], y.shape[1] / (h.s * w.s));
        let blocks = vec![n, h.len, w.len, h.s, w.s, m];
        let t = self.g.alias(y.t, &format!("{sub}.blocks"), blocks.clone());
        let six = Act {
            t,
            shape: blocks,
            perm: identity(6),
        };
        let Val::Act(six) = transposed(Val::Act(six), &[0, 1, 3, 2, 4, 5])? else {
            return Err(malformed("a runtime value became a constant"));
        };
        let rows = vec![n, h.len * h.s, w.len * w.s, m];
        let full = self.reshape_act(six, rows, &format!("{sub}.interleaved"))?;
        let Val::Act(full) = transposed(Val::Act(full), &[0, 3, 1, 2])? else {
            return Err(malformed("a runtime value became a constant"));
        };
        let ranges = [
            AxisSlice::whole(n),
            AxisSlice::whole(m),
            AxisSlice::run(h.crop, h.out),
            AxisSlice::run(w.crop, w.out),
        ];
        self.emit_slice(node, Val::Act(full), &ranges, name)
    }
}
