//! Element-wise selection `cond ? a : b` with broadcasting
//! ([`OpCode::Where`]).

use super::ctx::{prod, Ctx};
use super::{has, not_built, Kernel, NoParams, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels::broadcast::Broadcast;
use crate::kernels::logic::where_select;

/// Where takes no params.
pub type Params = NoParams;

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Where)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(3, 3)?;
    c.params::<Params>()?;
    let (cd, a, b, y) = (c.input(0)?, c.input(1)?, c.input(2)?, c.output()?);
    c.check(cd.dtype == DType::U8, "where condition must be u8")?;
    c.check(
        a.dtype == y.dtype && b.dtype == y.dtype,
        "where operands and output differ in type",
    )?;
    let ok = Broadcast::into_shape(a.dims(), b.dims(), y.dims()).is_ok()
        && Broadcast::into_shape(cd.dims(), a.dims(), y.dims()).is_ok();
    c.check(ok, "where shapes do not broadcast")
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Where) {
        return Err(not_built(c, k));
    }
    let (cd, a, b, y) = (c.input(0)?, c.input(1)?, c.input(2)?, c.output()?);
    where_select(
        io.ins[0],
        cd.dims(),
        io.ins[1],
        a.dims(),
        io.ins[2],
        b.dims(),
        y.dtype.size(),
        io.out,
        y.dims(),
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
