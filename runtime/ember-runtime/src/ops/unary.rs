//! Element-wise functions of one f32 tensor ([`OpCode::Unary`]): erf, GELU,
//! square root, … (see [`crate::kernels::unary::UnaryOp`]).

use super::ctx::{cast, cast_mut, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
pub use crate::kernels::unary::UnaryOp;
use crate::kernels::unary::unary_f32;

/// Unary params (1 word): `[function]` ([`UnaryOp`] as its code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The function.
    pub op: UnaryOp,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.op as i32]);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params {
            op: UnaryOp::from_i32(r.i32()?).ok_or("unknown unary function")?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Unary)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    c.params::<Params>()?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.check(
        x.dtype == DType::F32 && y.dtype == DType::F32 && x.numel() == y.numel(),
        "unary: f32, same size",
    )
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Unary) {
        return Err(not_built(c, k));
    }
    let Params { op } = c.params()?;
    unary_f32(op, cast(io.ins[0])?, cast_mut(io.out)?)
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
