//! Batched matrix products of two run-time f32 tensors ([`OpCode::MatMul`]).

use super::ctx::{cast, cast_mut, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels::{self, matmul::StridedView};
use crate::model::TensorInfo;

/// MatMul params (10 words): `[batch, M, N, K, a_sb, a_sm, a_sk, b_sb,
/// b_sk, b_sn]`, the element strides of a `[batch, M, K]` view of `a` and
/// a `[batch, K, N]` view of `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Batch count.
    pub batch: usize,
    /// Rows of `a` and of the output.
    pub m: usize,
    /// Columns of `b` and of the output.
    pub n: usize,
    /// The reduced dimension.
    pub k: usize,
    /// Strides of `a` (batch, row, column).
    pub a_strides: [usize; 3],
    /// Strides of `b` (batch, row, column).
    pub b_strides: [usize; 3],
}

/// A strided view with extents `e` and strides `s`.
pub(crate) fn view(e: (usize, usize, usize), s: [usize; 3]) -> StridedView {
    StridedView {
        batch: e.0,
        rows: e.1,
        cols: e.2,
        s_batch: s[0],
        s_row: s[1],
        s_col: s[2],
    }
}

pub(crate) fn encode_strides(s: &[usize; 3], out: &mut impl Extend<i32>) {
    out.extend(s.map(|v| v as i32));
}

pub(crate) fn decode_strides(r: &mut ParamReader<'_>) -> core::result::Result<[usize; 3], &'static str> {
    Ok([r.usize()?, r.usize()?, r.usize()?])
}

/// Whether view `v` lies inside tensor `t`.
pub(crate) fn fits(v: &StridedView, t: &TensorInfo<'_>) -> bool {
    matches!(v.span(), Some(s) if s <= t.numel())
}

impl Params {
    /// The views of `a` (`[batch, M, K]`) and `b` (`[batch, K, N]`).
    pub fn views(&self) -> (StridedView, StridedView) {
        (
            view((self.batch, self.m, self.k), self.a_strides),
            view((self.batch, self.k, self.n), self.b_strides),
        )
    }
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.batch, self.m, self.n, self.k].map(|v| v as i32));
        encode_strides(&self.a_strides, out);
        encode_strides(&self.b_strides, out);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params {
            batch: r.usize()?,
            m: r.usize()?,
            n: r.usize()?,
            k: r.usize()?,
            a_strides: decode_strides(r)?,
            b_strides: decode_strides(r)?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::MatMul)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(2, 2)?;
    let p: Params = c.params()?;
    let (a, b, y) = (c.input(0)?, c.input(1)?, c.output()?);
    let f32 = |t: &TensorInfo<'_>| t.dtype == DType::F32;
    c.check(f32(&a) && f32(&b) && f32(&y), "matmul is f32 only")?;
    let (va, vb) = p.views();
    c.check(
        fits(&va, &a) && fits(&vb, &b),
        "matmul view outside its tensor",
    )?;
    c.check(
        StridedView::dense(p.batch, p.m, p.n).numel() == Some(y.numel()),
        "matmul output size",
    )
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::MatMul) {
        return Err(not_built(c, k));
    }
    let p: Params = c.params()?;
    let (va, vb) = p.views();
    kernels::matmul::matmul_f32(
        cast(io.ins[0])?,
        &va,
        cast(io.ins[1])?,
        &vb,
        cast_mut(io.out)?,
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.params::<Params>()
        .map(|p| prod(&[p.batch, p.m, p.n, p.k]))
        .unwrap_or(0)
}
