//! Gathers along an axis ([`OpCode::Gather`]): embedding lookups, any
//! element type.

use super::ctx::{cast, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels;
use crate::model::TensorInfo;

/// Gather params (1 word): `[axis]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The axis the indices select along.
    pub axis: usize,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.axis as i32]);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params { axis: r.usize()? })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Gather)
}

/// `(outer, n, inner)` of a gather along the op's axis of `x`.
fn split(c: &Ctx<'_, '_>, x: &TensorInfo<'_>) -> Result<(usize, usize, usize)> {
    let Params { axis } = c.params()?;
    c.check(axis < x.rank, "gather axis out of range")?;
    let d = x.dims();
    Ok((
        d[..axis].iter().product(),
        d[axis],
        d[axis + 1..].iter().product(),
    ))
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(2, 2)?;
    c.params::<Params>()?;
    let (x, idx, y) = (c.input(0)?, c.input(1)?, c.output()?);
    c.check(idx.dtype == DType::I32, "gather indices must be i32")?;
    c.check(
        x.dtype == y.dtype && x.quant == y.quant,
        "gather changes type or quantization",
    )?;
    let (outer, _, inner) = split(c, &x)?;
    c.check(
        outer
            .checked_mul(idx.numel())
            .and_then(|v| v.checked_mul(inner))
            == Some(y.numel()),
        "gather output size",
    )
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Gather) {
        return Err(not_built(c, k));
    }
    let x = c.input(0)?;
    let (outer, n, inner) = split(c, &x)?;
    kernels::gather::gather(
        io.ins[0],
        outer,
        n,
        inner,
        x.dtype.size(),
        cast(io.ins[1])?,
        io.out,
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
