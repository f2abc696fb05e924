//! Byte copies ([`OpCode::Copy`]): reshapes that could not be aliases.

use super::ctx::Ctx;
use super::{has, not_built, Kernel, NoParams, OpCode, OpIo};
use crate::error::{Error, Result};
use crate::kernel_set::KernelSet;

/// Copy takes no params.
pub type Params = NoParams;

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Copy)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    c.params::<Params>()?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.check(
        x.dtype == y.dtype && x.size == y.size,
        "copy changes size or dtype",
    )
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Copy) {
        return Err(not_built(c, k));
    }
    if io.ins[0].len() != io.out.len() {
        return Err(Error::ShapeMismatch("copy"));
    }
    io.out.copy_from_slice(io.ins[0]);
    Ok(())
}

pub(crate) fn macs(_: &Ctx<'_, '_>) -> u64 {
    0
}
