//! Layer normalization over the last axis ([`OpCode::LayerNorm`]), f32.

use super::ctx::{cast, cast_mut, opt_cast, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels;

/// LayerNorm params (1 word): `[f32 epsilon]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Added to the variance.
    pub epsilon: f32,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.epsilon.to_bits() as i32]);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params { epsilon: r.f32()? })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::LayerNorm)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(2, 3)?;
    let p: Params = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.check(
        x.dtype == DType::F32 && y.dtype == DType::F32 && x.dims() == y.dims() && x.rank >= 1,
        "layer norm: f32, same shape",
    )?;
    // The normalized axes are the trailing ones whose sizes multiply to
    // gamma's length (ONNX's `axis` and everything after it).
    let d = c.input(1)?.numel();
    let dims = x.dims();
    c.check(
        (0..dims.len()).any(|a| dims[a..].iter().product::<usize>() == d),
        "layer norm gamma must cover the trailing axes",
    )?;
    c.const_f32_vec(
        &c.input(1)?,
        d,
        "layer norm gamma must be constant f32 [D]",
    )?;
    if let Some(b) = c.opt_input(2)? {
        c.const_f32_vec(&b, d, "layer norm beta must be constant f32 [D]")?;
    }
    c.check(
        p.epsilon.is_finite() && p.epsilon >= 0.0,
        "layer norm epsilon",
    )
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::LayerNorm) {
        return Err(not_built(c, k));
    }
    let Params { epsilon } = c.params()?;
    let beta = opt_cast::<f32>(c, &io.ins, 2)?;
    kernels::layer_norm::layer_norm_f32(
        cast(io.ins[0])?,
        cast(io.ins[1])?,
        beta,
        epsilon,
        cast_mut(io.out)?,
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
