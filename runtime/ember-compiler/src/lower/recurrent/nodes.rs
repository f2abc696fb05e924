//! The ops an unrolled recurrent node becomes, built as ONNX nodes and
//! lowered through the operator table: constants, slices, reshapes,
//! transposes, binary ops and concatenations.

use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::{AttributeProto, NodeProto};

use super::super::attrs::step;
use super::super::op_table;
use super::super::{Lowerer, Val};
use crate::error::{malformed, Result};
use crate::tensor::HostTensor;

pub(super) fn int_attr(name: &str, v: i64) -> AttributeProto {
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

impl Lowerer<'_> {
    /// Lowers a synthesized node through the operator table.
    pub(super) fn sub(&mut self, i: usize, n: NodeProto) -> Result<()> {
        match op_table::find(&n.domain, &n.op_type) {
            Some(op) => (op.lower)(self, i, &n),
            None => Err(op_table::unknown_op(&n)),
        }
    }

    /// Binds a constant under `name` and returns the name.
    pub(super) fn konst(&mut self, name: String, t: HostTensor) -> String {
        self.vals.insert(name.clone(), Val::Const(t));
        name
    }

    pub(super) fn f32_const(
        &mut self,
        name: String,
        dims: &[usize],
        v: Vec<f32>,
    ) -> Result<String> {
        let a = ArrayD::from_shape_vec(IxDyn(dims), v).map_err(|e| malformed(e.to_string()))?;
        Ok(self.konst(name, HostTensor::F32(a)))
    }

    pub(super) fn i64_const(&mut self, name: String, v: Vec<i64>) -> Result<String> {
        let n = v.len();
        let a = ArrayD::from_shape_vec(IxDyn(&[n]), v).map_err(|e| malformed(e.to_string()))?;
        Ok(self.konst(name, HostTensor::I64(a)))
    }

    /// `out = x[.., lo..hi, ..]` along `axis`.
    pub(super) fn slice_axis(
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

    pub(super) fn reshape(
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

    pub(super) fn transpose(
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

    pub(super) fn binary(
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
    pub(super) fn concat_many(
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
}
