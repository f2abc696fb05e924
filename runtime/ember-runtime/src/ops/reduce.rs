//! Reductions of the middle axis of `[outer, n, inner]` ([`OpCode::Reduce`]),
//! f32 values or i32 indices (ArgMax, ArgMin).

use super::ctx::{cast, cast_mut, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
pub use crate::kernels::reduce::ReduceOp;

/// Reduce params (4 words): `[kind, outer, n, inner]` ([`ReduceOp`] as its
/// code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The reduction.
    pub op: ReduceOp,
    /// Product of the axes before the reduced one.
    pub outer: usize,
    /// Extent of the reduced axis.
    pub n: usize,
    /// Product of the axes after it.
    pub inner: usize,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([
            self.op as i32,
            self.outer as i32,
            self.n as i32,
            self.inner as i32,
        ]);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params {
            op: ReduceOp::from_i32(r.i32()?).ok_or("unknown reduction")?,
            outer: r.usize()?,
            n: r.usize()?,
            inner: r.usize()?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Reduce)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let p: Params = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    let out = if p.op.is_arg() { DType::I32 } else { DType::F32 };
    c.check(
        x.dtype == DType::F32 && y.dtype == out,
        "reduce reads f32 and writes f32 (i32 indices for arg reductions)",
    )?;
    c.check(!p.op.is_arg() || p.n >= 1, "an index reduction of an empty axis")?;
    c.check(
        p.outer.checked_mul(p.n).and_then(|v| v.checked_mul(p.inner)) == Some(x.numel())
            && p.outer.checked_mul(p.inner) == Some(y.numel()),
        "reduce shape",
    )
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Reduce) {
        return Err(not_built(c, k));
    }
    let p: Params = c.params()?;
    if p.op.is_arg() {
        return crate::kernels::reduce::arg_reduce_f32(
            p.op,
            cast(io.ins[0])?,
            p.outer,
            p.n,
            p.inner,
            cast_mut(io.out)?,
        );
    }
    crate::kernels::reduce::reduce_f32(
        p.op,
        cast(io.ins[0])?,
        p.outer,
        p.n,
        p.inner,
        cast_mut(io.out)?,
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
