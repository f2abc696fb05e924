//! Matrix products: `MatMul` and `Gemm` with a constant operand as fully
//! connected ops (float, or int8 in the `DQ → MatMul [→ Add] → [Relu|Clip]
//! → Q` pattern), `QLinearMatMul`, and `MatMul` of two runtime tensors
//! (batched, strided; fused into attention when the pattern is there).

use ember_runtime::format::OpCode;
use ember_runtime::ops::{fully_connected, matmul, Bounds};
use ember_runtime::DType;
use ndarray::ArrayD;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_f, attr_i, unsupported};
use super::fold::broadcast_shape;
use super::fusion::{ActBounds, QTail};
use super::layout::{identity, view3};
use super::quantize::requantize_bias;
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;

impl Lowerer<'_> {
    /// `MatMul`: of two runtime tensors (attention if the pattern is
    /// there), else with a constant operand as a fully connected op.
    pub(super) fn lower_matmul_node(&mut self, node: &NodeProto) -> Result<()> {
        let (a, b) = (self.req_input(node, 0)?, self.req_input(node, 1)?);
        let (ra, rb) = (self.input_rank(node, 0), self.input_rank(node, 1));
        if ra == Some(1) || rb == Some(1) {
            return self.lower_matmul_vector(node, a, b, ra == Some(1), rb == Some(1));
        }
        let runtime = |v: &Val| matches!(v, Val::Act(_) | Val::DqAct { .. });
        if !(runtime(&a) && runtime(&b)) {
            return self.lower_matmul(node);
        }
        if !self.try_attention(node)? {
            self.lower_act_matmul(node)?;
        }
        Ok(())
    }

    /// numpy's 1-D operands: a vector A is a row `[1, K]`, a vector B a
    /// column `[K, 1]`; the product drops the axis each added.
    fn lower_matmul_vector(
        &mut self,
        node: &NodeProto,
        a: Val,
        b: Val,
        a_vec: bool,
        b_vec: bool,
    ) -> Result<()> {
        let out = Self::out_name(node);
        let widen = |lw: &mut Self, v: Val, axis: usize, name: &str| -> Result<Val> {
            Ok(match v {
                Val::Act(x) => Val::Act(lw.unsqueeze_act(x, axis, name)),
                Val::DqAct { src, scale, zp } => Val::DqAct {
                    src: lw.unsqueeze_act(src, axis, name),
                    scale,
                    zp,
                },
                v => {
                    let c = match v {
                        Val::Const(c) => c,
                        v => HostTensor::F32(super::dequant_const(&v)?),
                    };
                    Val::Const(c.map_layout(|x| Ok(x.insert_axis(ndarray::Axis(axis))))?)
                }
            })
        };
        let mut n = node.clone();
        if a_vec {
            let name = format!("{out}.a_row");
            let v = widen(self, a, 0, &name)?;
            self.vals.insert(name.clone(), v);
            n.input[0] = name;
        }
        if b_vec {
            let name = format!("{out}.b_column");
            let v = widen(self, b, 1, &name)?;
            self.vals.insert(name.clone(), v);
            n.input[1] = name;
        }
        let wide = format!("{out}.wide");
        n.output = vec![wide.clone()];
        self.lower_matmul_node(&n)?;
        let mut y = match self.vals.get(&wide).cloned() {
            Some(Val::Act(y)) => y,
            Some(Val::DqAct { .. }) => self.float_act(&wide, &node.op_type)?,
            _ => return Err(malformed(format!("node '{}': no product", node.name))),
        };
        if b_vec {
            let r = y.shape.len();
            y = self.squeeze_act(y, r - 1, &format!("{out}.squeezed"));
        }
        if a_vec {
            let r = y.shape.len();
            y = self.squeeze_act(y, r - 2.min(r), &out);
        }
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }

    pub(super) fn lower_matmul(&mut self, node: &NodeProto) -> Result<()> {
        let gemm = node.op_type == "Gemm";
        if gemm && attr_i(node, "transA", 0) != 0 {
            // Aᵀ is a view of A; lower the Gemm on that view.
            let a = self.req_input(node, 0)?;
            if self.input_rank(node, 0) != Some(2) {
                return Err(unsupported(node, "transA=1 on an A that is not 2-D"));
            }
            let name = format!("{}.A_transposed", Self::out_name(node));
            self.vals
                .insert(name.clone(), super::shape::transposed(a, &[1, 0])?);
            let mut n = node.clone();
            n.input[0] = name;
            n.attribute.retain(|a| a.name != "transA");
            return self.lower_matmul(&n);
        }
        let trans_b = gemm && attr_i(node, "transB", 0) != 0;
        let (alpha, beta) = (attr_f(node, "alpha", 1.0), attr_f(node, "beta", 1.0));
        let x = self.req_input(node, 0)?;
        let w = self.req_input(node, 1)?;
        let out = Self::out_name(node);
        // Quantized: DQ(act) × DQ(const int8) [+ DQ(const int32) bias] → [act] → Q.
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
                axis,
            },
        ) = (&x, &w)
        {
            let per_out_axis = if trans_b { 0 } else { 1 };
            let axis_ok = ws.len() == 1 || *axis == per_out_axis;
            let zp_uniform = wz.iter().all(|&z| z == wz[0]);
            if wq.ndim() == 2 && axis_ok && zp_uniform && alpha == 1.0 && beta == 1.0 {
                // Bias: Gemm's C, or an Add right after MatMul.
                let (bias_v, after_bias, bias_node) = if gemm {
                    (self.input_val(node, 2)?, out.clone(), None)
                } else {
                    match self.follow(&out).map(|i| (i, &self.nodes[i])) {
                        Some((i, n)) if n.op_type == "Add" => {
                            let other = if n.input[0] == out { 1 } else { 0 };
                            match self.input_val(n, other)? {
                                Some(
                                    v @ Val::DqConst {
                                        q: HostTensor::I32(_),
                                        ..
                                    },
                                ) => (Some(v), Self::out_name(n), Some(i)),
                                _ => (None, out.clone(), None),
                            }
                        }
                        _ => (None, out.clone(), None),
                    }
                };
                let bias_ok = matches!(
                    &bias_v,
                    None | Some(Val::DqConst {
                        q: HostTensor::I32(_),
                        ..
                    })
                );
                if bias_ok {
                    if let Some(tail) = self.match_qtail(&after_bias) {
                        let n_out = if trans_b {
                            wq.shape()[0]
                        } else {
                            wq.shape()[1]
                        };
                        let ws_full: Vec<f32> = if ws.len() == 1 {
                            vec![ws[0]]
                        } else {
                            ws.clone()
                        };
                        let bias = match &bias_v {
                            Some(Val::DqConst {
                                q: HostTensor::I32(bq),
                                scale: bs,
                                ..
                            }) if bq.len() == n_out => Some(requantize_bias(
                                node,
                                bq.iter().copied().collect(),
                                bs,
                                *xs,
                                &ws_full,
                            )?),
                            Some(_) => {
                                return Err(unsupported(
                                    node,
                                    "bias length differs from the output width",
                                ))
                            }
                            None => None,
                        };
                        let wmat = if trans_b {
                            wq.clone()
                        } else {
                            wq.clone().reversed_axes().as_standard_layout().to_owned()
                        };
                        let (src, xs, xz, wz0) = (src.clone(), *xs, *xz, wz[0] as i32);
                        let mut nodes = tail.nodes.clone();
                        nodes.extend(bias_node);
                        self.mark(&nodes);
                        return self.emit_fc_s8(
                            node,
                            src,
                            (xs, xz),
                            wmat,
                            wz0,
                            &ws_full,
                            bias,
                            &tail,
                        );
                    }
                }
            }
        }
        // Float path.
        let xa = self.float_act(&node.input[0], &node.op_type)?;
        let wf = self.const_input(node, 1)?.ok_or_else(|| {
            unsupported(node, "B must be a constant (matrix products of two runtime tensors are not supported yet)")
        })?;
        let mut wf = wf.to_f32_array();
        if wf.ndim() != 2 {
            return Err(unsupported(node, "B must be 2-D"));
        }
        if !trans_b {
            wf = wf.reversed_axes().as_standard_layout().to_owned();
        }
        if alpha != 1.0 {
            wf.mapv_inplace(|v| v * alpha);
        }
        let n_out = wf.shape()[0];
        let mut bias: Option<Vec<f32>> = None;
        let mut cur = out.clone();
        if gemm {
            if let Some(c) = self.const_input(node, 2)? {
                let c = c.to_f32_array();
                if c.len() != n_out && c.len() != 1 {
                    // A C that varies along the rows: A·B, then + β·C.
                    let prod = format!("{out}.product");
                    let cname = format!("{out}.C");
                    let mut mm = node.clone();
                    mm.input.truncate(2);
                    mm.output = vec![prod.clone()];
                    self.lower_matmul(&mm)?;
                    let c = HostTensor::F32(c.mapv(|v| v * beta));
                    self.vals.insert(cname.clone(), Val::Const(c));
                    let add = NodeProto {
                        op_type: "Add".into(),
                        name: node.name.clone(),
                        input: vec![prod, cname],
                        output: vec![out],
                        ..Default::default()
                    };
                    return self.lower_binary(0, &add);
                }
                bias = Some(
                    (0..n_out)
                        .map(|i| {
                            beta * c
                                .iter()
                                .nth(if c.len() == 1 { 0 } else { i })
                                .copied()
                                .unwrap_or(0.0)
                        })
                        .collect(),
                );
            } else if node.input.get(2).map(|s| !s.is_empty()).unwrap_or(false) {
                return Err(unsupported(node, "C must be constant"));
            }
        } else if let Some(i) = self.follow(&out) {
            let n = &self.nodes[i];
            if n.op_type == "Add" {
                let other = if n.input[0] == out { 1 } else { 0 };
                if let Some(c) = self.const_input(n, other)? {
                    if c.len() == n_out && c.shape().last() == Some(&n_out) {
                        bias = Some(c.to_f32_array().iter().copied().collect());
                        cur = Self::out_name(n);
                        self.mark(&[i]);
                    }
                }
            }
        }
        let mut act = ActBounds::NONE;
        if let Some((b, name, idx)) = self.match_act(&cur) {
            act = b;
            cur = name;
            self.mark(&[idx]);
        }
        self.emit_fc_f32(node, xa, wf, bias, act, &cur)
    }

    pub(super) fn fc_input(&mut self, node: &NodeProto, x: Act, k: usize) -> Result<Act> {
        let x = self.in_rowmajor(x, &node.name)?;
        if x.shape.last() != Some(&k) {
            return Err(malformed(format!(
                "node '{}': input shape {:?} does not end in {k}",
                node.name, x.shape
            )));
        }
        Ok(x)
    }

    pub(super) fn emit_fc_f32(
        &mut self,
        node: &NodeProto,
        x: Act,
        w: ArrayD<f32>,
        bias: Option<Vec<f32>>,
        act: ActBounds,
        out_name: &str,
    ) -> Result<()> {
        let (n, k) = (w.shape()[0], w.shape()[1]);
        let x = self.fc_input(node, x, k)?;
        let wd: Vec<f32> = w.iter().copied().collect();
        let wt = self
            .g
            .const_f32(&format!("{}.weight", node.name), vec![n, k], &wd);
        let bt = bias.map(|b| {
            self.g
                .const_f32(&format!("{}.bias", node.name), vec![n], &b)
        });
        let mut oshape = x.shape.clone();
        *oshape.last_mut().expect("rank ≥ 1") = n;
        let y = self
            .g
            .activation(out_name, DType::F32, oshape.clone(), None);
        self.g.push(
            OpCode::FullyConnected,
            vec![Some(x.t), Some(wt), bt],
            y,
            &fully_connected::Params {
                act: Bounds::float(act.lo, act.hi),
            },
            &node.name,
        );
        let perm = identity(oshape.len());
        self.vals.insert(
            out_name.to_string(),
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm,
            }),
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_fc_s8(
        &mut self,
        node: &NodeProto,
        x: Act,
        xq: (f32, i32),
        w: ArrayD<i8>,
        wz: i32,
        ws: &[f32],
        bias: Option<Vec<i32>>,
        tail: &QTail,
    ) -> Result<()> {
        let (n, k) = (w.shape()[0], w.shape()[1]);
        let x = self.fc_input(node, x, k)?;
        self.g.set_quant(x.t, Some(xq));
        let wd: Vec<i8> = w.iter().copied().collect();
        let wt = self.g.const_i8(
            &format!("{}.weight", node.name),
            vec![n, k],
            Some((ws[0], wz)),
            &wd,
        );
        let bt = bias.map(|b| {
            self.g
                .const_i32(&format!("{}.bias", node.name), vec![n], &b)
        });
        let rq = self.requant_tensor(&node.name, xq.0, ws, tail.scale);
        let mut oshape = x.shape.clone();
        *oshape.last_mut().expect("rank ≥ 1") = n;
        let y = self.g.activation(
            &tail.out_name,
            DType::I8,
            oshape.clone(),
            Some((tail.scale, tail.zp)),
        );
        let (lo, hi) = Self::act_i8(tail.act, tail.scale, tail.zp);
        self.g.push(
            OpCode::FullyConnected,
            vec![Some(x.t), Some(wt), bt, Some(rq)],
            y,
            &fully_connected::Params {
                act: Bounds::int(lo, hi),
            },
            &node.name,
        );
        let perm = identity(oshape.len());
        self.vals.insert(
            tail.out_name.clone(),
            Val::Act(Act {
                t: y,
                shape: oshape,
                perm,
            }),
        );
        Ok(())
    }

    pub(super) fn lower_qlinear_matmul(&mut self, node: &NodeProto) -> Result<()> {
        let x = match self.req_input(node, 0)? {
            Val::Act(a) if self.g.tensors[a.t].dtype == DType::I8 => a,
            _ => return Err(unsupported(node, "A must be a runtime int8 tensor")),
        };
        let c = |i: usize| -> Result<HostTensor> {
            self.const_input(node, i)?
                .ok_or_else(|| unsupported(node, format!("input {i} must be constant")))
        };
        let xs = c(1)?.to_f64()[0] as f32;
        let xz = c(2)?.to_i64()[0] as i32;
        let w = match self.input_val(node, 3)? {
            Some(Val::Const(HostTensor::I8(w))) if w.ndim() == 2 => w,
            _ => return Err(unsupported(node, "B must be a constant 2-D int8 tensor")),
        };
        let ws: Vec<f32> = c(4)?.to_f64().iter().map(|&v| v as f32).collect();
        let wz = c(5)?.to_i64();
        if wz.iter().any(|&z| z != wz[0]) {
            return Err(unsupported(node, "per-column weight zero points"));
        }
        let ys = c(6)?.to_f64()[0] as f32;
        let yz = c(7)?.to_i64()[0] as i32;
        let tail = QTail {
            act: ActBounds::NONE,
            out_name: Self::out_name(node),
            scale: ys,
            zp: yz,
            nodes: vec![],
        };
        let wmat = w.reversed_axes().as_standard_layout().to_owned();
        self.emit_fc_s8(node, x, (xs, xz), wmat, wz[0] as i32, &ws, None, &tail)
    }

    /// Views of the two MatMul operands (numpy semantics: equal batch dims
    /// or 1) and the output shape.
    pub(super) fn matmul_shapes(
        &self,
        node: &NodeProto,
        a: &Act,
        b: &Act,
    ) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
        let (ra, rb) = (a.shape.len(), b.shape.len());
        if ra < 2 || rb < 2 || ra != rb {
            return Err(unsupported(
                node,
                "MatMul of runtime operands needs equal ranks ≥ 2",
            ));
        }
        let r = ra;
        let batch = broadcast_shape(&a.shape[..r - 2], &b.shape[..r - 2]).ok_or_else(|| {
            malformed(format!("node '{}': batch dims do not broadcast", node.name))
        })?;
        let (m, k, k2, n) = (
            a.shape[r - 2],
            a.shape[r - 1],
            b.shape[r - 2],
            b.shape[r - 1],
        );
        if k != k2 {
            return Err(malformed(format!(
                "node '{}': inner dimensions differ ({:?} × {:?})",
                node.name, a.shape, b.shape
            )));
        }
        let mut ta = batch.clone();
        ta.extend([m, k]);
        let mut tb = batch.clone();
        tb.extend([k, n]);
        let mut out = batch;
        out.extend([m, n]);
        Ok((ta, tb, out))
    }

    /// The strided view of `a` broadcast to `target`, making it row-major
    /// first if its layout cannot be described by three strides.
    pub(super) fn operand_view(
        &mut self,
        a: Act,
        target: &[usize],
        name: &str,
    ) -> Result<(Act, [usize; 3], [usize; 3])> {
        if let Some((e, s)) = view3(&a, target) {
            return Ok((a, e, s));
        }
        let a = self.in_rowmajor(a, name)?;
        let (e, s) = view3(&a, target).ok_or_else(|| {
            malformed(format!(
                "node '{name}': operand does not broadcast to {target:?}"
            ))
        })?;
        Ok((a, e, s))
    }

    fn lower_act_matmul(&mut self, node: &NodeProto) -> Result<()> {
        let a = self.float_act(&node.input[0], "MatMul")?;
        let b = self.float_act(&node.input[1], "MatMul")?;
        let (ta, tb, out_shape) = self.matmul_shapes(node, &a, &b)?;
        let (a, ea, sa) = self.operand_view(a, &ta, &node.name)?;
        let (b, eb, sb) = self.operand_view(b, &tb, &node.name)?;
        let out = Self::out_name(node);
        let y = self.new_act(&out, DType::F32, out_shape);
        let p = matmul::Params {
            batch: ea[0],
            m: ea[1],
            n: eb[2],
            k: ea[2],
            a_strides: sa,
            b_strides: sb,
        };
        self.g.push(
            OpCode::MatMul,
            vec![Some(a.t), Some(b.t)],
            y.t,
            &p,
            &node.name,
        );
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }
}
