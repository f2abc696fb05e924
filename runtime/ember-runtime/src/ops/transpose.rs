//! Axis permutation ([`OpCode::Transpose`]) of any element type.

use super::ctx::{cast, cast_mut, Ctx};
use super::params::{ParamReader, Params as ParamsTrait, PerAxis};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::MAX_RANK;
use crate::kernel_set::KernelSet;
use crate::kernels;

/// Transpose params (one word per axis): `perm[0..rank]`, output axis `i`
/// is input axis `perm[i]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The permutation.
    pub perm: PerAxis,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        self.perm.encode(out);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let rank = r.remaining();
        Ok(Params {
            perm: PerAxis::decode(r, rank)?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Transpose)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let (x, y) = (c.input(0)?, c.output()?);
    let p: Params = c.params()?;
    c.check(p.perm.rank == x.rank, "wrong number of params")?;
    c.check(
        x.dtype == y.dtype && x.rank == y.rank,
        "transpose changes dtype or rank",
    )?;
    let mut seen = [false; MAX_RANK];
    for (i, &a) in p.perm.as_slice().iter().enumerate() {
        c.check(a < x.rank && !seen[a], "perm is not a permutation")?;
        seen[a] = true;
        c.check(
            y.dims()[i] == x.dims()[a],
            "output dims are not the permuted input dims",
        )?;
    }
    Ok(())
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Transpose) {
        return Err(not_built(c, k));
    }
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let x = c.input(0)?;
    let perm = p.perm.as_slice();
    match x.dtype.size() {
        1 => kernels::transpose::transpose::<u8>(ins[0], x.dims(), perm, out),
        _ => kernels::transpose::transpose::<u32>(cast(ins[0])?, x.dims(), perm, cast_mut(out)?),
    }
}

pub(crate) fn macs(_: &Ctx<'_, '_>) -> u64 {
    0
}
