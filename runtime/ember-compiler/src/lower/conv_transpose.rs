//! `ConvTranspose` (1-D and 2-D, groups, strides, dilations, pads,
//! output_padding, output_shape, auto_pad), float: the filter repacked for
//! the NHWC kernel, the output extent and cut-off padding decided here; a
//! following Relu/Clip fused.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::conv_transpose::ConvTransposeGeometry;
use ember_runtime::kernels::Window;
use ember_runtime::ops::{conv_transpose, Bounds};
use ember_runtime::DType;
use ndarray::IxDyn;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, attr_ints, attr_s, unsupported};
use super::conv::widened_to_2d;
use super::fusion::ActBounds;
use super::layout::{permuted, NHWC};
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};

impl Lowerer<'_> {
    pub(super) fn lower_conv_transpose(&mut self, node: &NodeProto) -> Result<()> {
        let x = self.float_act(&node.input[0], &node.op_type)?;
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "the filter must be constant"))?
            .to_f32_array();
        match (x.shape.len(), w.ndim()) {
            (3, 3) => return self.lower_conv_transpose_1d(node, x, w),
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
        let (c, mg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
        if groups < 1 || c % groups as usize != 0 || x.shape[1] != c {
            return Err(malformed(format!(
                "node '{}': {c} filter channels, input channels {}, group {groups}",
                node.name, x.shape[1]
            )));
        }
        let groups = groups as usize;
        let m = mg * groups;
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
        let inp = [x.shape[2], x.shape[3]];
        let k = [kh, kw];
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
            None if auto.starts_with("SAME") => {
                Some([(inp[0] * s[0]) as i64, (inp[1] * s[1]) as i64])
            }
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
        let bt = match self.const_input(node, 2)? {
            Some(b) => {
                let b: Vec<f32> = b.to_f32_array().iter().copied().collect();
                if b.len() != m {
                    return Err(malformed(format!(
                        "node '{}': bias of {} for {m} output channels",
                        node.name,
                        b.len()
                    )));
                }
                Some(
                    self.g
                        .const_f32(&format!("{}.bias", node.name), vec![m], &b),
                )
            }
            None if node.input.get(2).is_some_and(|n| !n.is_empty()) => {
                return Err(unsupported(node, "the bias must be constant"))
            }
            None => None,
        };
        let x = self.nhwc(x, node)?;
        let mut name = Self::out_name(node);
        let mut act = ActBounds::NONE;
        if let Some((b, nm, idx)) = self.match_act(&name) {
            act = b;
            name = nm;
            self.mark(&[idx]);
        }
        let oshape = vec![x.shape[0], m, out[0] as usize, out[1] as usize];
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
