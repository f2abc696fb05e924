//! Comparisons and boolean ops with broadcasting ([`OpCode::Compare`]),
//! output u8 0/1.

use super::ctx::{prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels::broadcast::Broadcast;
pub use crate::kernels::logic::CompareOp;
use crate::kernels::logic::{self, Elems};

/// Compare params (1 word): `[kind]` ([`CompareOp`] as its code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The comparison.
    pub op: CompareOp,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.op as i32]);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params {
            op: CompareOp::from_i32(r.i32()?).ok_or("unknown comparison")?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Compare)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(2, 2)?;
    c.params::<Params>()?;
    let (a, b, y) = (c.input(0)?, c.input(1)?, c.output()?);
    c.check(
        a.dtype == b.dtype && y.dtype == DType::U8,
        "compare: same input types, u8 output",
    )?;
    Broadcast::new(a.dims(), b.dims(), y.dims())
        .map_err(|_| c.err("compare shapes do not broadcast"))?;
    Ok(())
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Compare) {
        return Err(not_built(c, k));
    }
    let Params { op } = c.params()?;
    let (a, b, y) = (c.input(0)?, c.input(1)?, c.output()?);
    logic::compare(
        op,
        Elems::new(io.ins[0], a.dtype, a.numel())?,
        a.dims(),
        Elems::new(io.ins[1], b.dtype, b.numel())?,
        b.dims(),
        io.out,
        y.dims(),
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
