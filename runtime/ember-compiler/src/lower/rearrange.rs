//! Rearrangements built from views, transposes and broadcasts:
//! `DepthToSpace`, `SpaceToDepth` (a 6-D reshape, a transpose, a reshape)
//! and `Tile` (per repeated axis: a unit axis added, broadcast, folded back).

use ember_runtime::format::OpCode;
use ember_runtime::ops::NoParams;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_i, attr_s, unsupported};
use super::fold::{f64_array, like_dtype};
use super::shape::transposed;
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};

impl Lowerer<'_> {
    /// `DepthToSpace` (DCR or CRD) and `SpaceToDepth` on NCHW.
    pub(super) fn lower_depth_space(&mut self, node: &NodeProto) -> Result<()> {
        let b = attr_i(node, "blocksize", 0);
        if b < 1 {
            return Err(malformed(format!("node '{}': blocksize {b}", node.name)));
        }
        let b = b as usize;
        let x = self.req_input(node, 0)?;
        let shape = match &x {
            Val::Act(a) | Val::DqAct { src: a, .. } => a.shape.clone(),
            _ => return Err(unsupported(node, "a constant input")),
        };
        let [n, c, h, w] = shape[..] else {
            return Err(unsupported(
                node,
                format!("input of rank {} (NCHW only)", shape.len()),
            ));
        };
        let to_space = node.op_type == "DepthToSpace";
        let (split, perm, out): (Vec<usize>, [usize; 6], Vec<usize>) = if to_space {
            if c % (b * b) != 0 {
                return Err(malformed(format!(
                    "node '{}': {c} channels for blocksize {b}",
                    node.name
                )));
            }
            let cb = c / (b * b);
            let out = vec![n, cb, h * b, w * b];
            match attr_s(node, "mode").as_deref().unwrap_or("DCR") {
                "DCR" => (vec![n, b, b, cb, h, w], [0, 3, 4, 1, 5, 2], out),
                "CRD" => (vec![n, cb, b, b, h, w], [0, 1, 4, 2, 5, 3], out),
                m => {
                    return Err(unsupported(
                        node,
                        format!("mode={m} (DCR and CRD are supported)"),
                    ))
                }
            }
        } else {
            if h % b != 0 || w % b != 0 {
                return Err(malformed(format!(
                    "node '{}': {h}×{w} for blocksize {b}",
                    node.name
                )));
            }
            (
                vec![n, c, h / b, b, w / b, b],
                [0, 3, 5, 1, 2, 4],
                vec![n, c * b * b, h / b, w / b],
            )
        };
        let name = Self::out_name(node);
        let rearrange = |lw: &mut Self, a: Act| -> Result<Act> {
            let a = lw.reshape_act(a, split.clone(), &format!("{name}.split"))?;
            let t = match transposed(Val::Act(a), &perm)? {
                Val::Act(t) => t,
                _ => return Err(malformed("a runtime value became a constant")),
            };
            lw.reshape_act(t, out.clone(), &name)
        };
        let v = match x {
            Val::Act(a) => Val::Act(rearrange(self, a)?),
            Val::DqAct { src, scale, zp } => Val::DqAct {
                src: rearrange(self, src)?,
                scale,
                zp,
            },
            _ => return Err(unsupported(node, "a constant input")),
        };
        self.vals.insert(name, v);
        Ok(())
    }

    /// `Tile`: constant repeats; each repeated axis in turn gets a unit axis
    /// in front of it, broadcast to the repeat count, then the two fold into
    /// one.
    pub(super) fn lower_tile(&mut self, node: &NodeProto) -> Result<()> {
        let reps = self
            .const_input(node, 1)?
            .ok_or_else(|| unsupported(node, "repeats must be constant"))?
            .to_i64();
        let x = self.req_input(node, 0)?;
        if let Val::Const(c) = &x {
            let a = f64_array(c);
            let reps: Vec<usize> = reps.iter().map(|&r| r.max(0) as usize).collect();
            let mut t = a.clone();
            for (ax, &r) in reps.iter().enumerate() {
                let views: Vec<_> = std::iter::repeat_n(t.view(), r).collect();
                t = ndarray::concatenate(ndarray::Axis(ax), &views)
                    .map_err(|e| malformed(format!("node '{}': {e}", node.name)))?;
            }
            self.set(node, 0, Val::Const(like_dtype(c, t)));
            return Ok(());
        }
        let x = self.runtime_operand(node, 0, None)?;
        let x = self.in_rowmajor(x, &node.name)?;
        if reps.len() != x.shape.len() || reps.iter().any(|&r| r < 1) {
            return Err(malformed(format!(
                "node '{}': repeats {reps:?} for rank {}",
                node.name,
                x.shape.len()
            )));
        }
        if reps.iter().all(|&r| r == 1) {
            self.set(node, 0, Val::Act(x));
            return Ok(());
        }
        let out = Self::out_name(node);
        // One repeated axis at a time: [.., d, ..] → [.., 1, d, ..] →
        // broadcast [.., r, d, ..] → [.., r·d, ..].
        let mut y = x;
        for (ax, &r) in reps.iter().enumerate() {
            if r == 1 {
                continue;
            }
            if y.shape.len() + 1 > ember_runtime::format::MAX_RANK {
                return Err(unsupported(
                    node,
                    format!("rank {} (at most 5 for Tile)", y.shape.len()),
                ));
            }
            let tag = format!("{out}.axis{ax}");
            let dt = self.g.tensors[y.t].dtype;
            let mut unit = y.shape.clone();
            unit.insert(ax, 1);
            let mut wide = y.shape.clone();
            wide.insert(ax, r as usize);
            let mut fin = y.shape.clone();
            fin[ax] *= r as usize;
            let u = self.reshape_act(y, unit, &format!("{tag}.unit"))?;
            let w = self.new_act(&format!("{tag}.wide"), dt, wide);
            self.g
                .push(OpCode::Expand, vec![Some(u.t)], w.t, &NoParams, &node.name);
            y = self.reshape_act(w, fin, &tag)?;
        }
        self.vals.insert(out, Val::Act(y));
        Ok(())
    }
}
