//! Broadcast copies to the output's shape ([`OpCode::Expand`]).

use super::ctx::{prod, Ctx};
use super::{has, not_built, Kernel, NoParams, OpCode, OpIo};
use crate::error::Result;
use crate::kernel_set::KernelSet;
use crate::kernels::broadcast::Broadcast;
use crate::kernels::logic::expand;

/// Expand takes no params.
pub type Params = NoParams;

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Expand)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    c.params::<Params>()?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.check(
        x.dtype == y.dtype && x.quant == y.quant,
        "expand changes the type",
    )?;
    Broadcast::new(x.dims(), y.dims(), y.dims())
        .map_err(|_| c.err("expand shapes do not broadcast"))?;
    Ok(())
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Expand) {
        return Err(not_built(c, k));
    }
    let (x, y) = (c.input(0)?, c.output()?);
    expand(io.ins[0], x.dims(), x.dtype.size(), io.out, y.dims())
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
