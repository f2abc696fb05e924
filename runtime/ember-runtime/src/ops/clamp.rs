//! Clamps that could not be fused into their producer ([`OpCode::Clamp`]:
//! ReLU, ReLU6, Clip), int8 and f32.

use super::ctx::{cast, cast_mut, Ctx};
use super::params::{Bounds, ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels;

/// Clamp params (2 words): `[min, max]`, quantized integers for int8 or
/// `f32` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The bounds.
    pub bounds: Bounds,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        self.bounds.encode(out);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params {
            bounds: Bounds::decode(r)?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok([Kernel::ClampF32, Kernel::ClampS8][(c.input_dtype(0)? == DType::I8) as usize])
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let p: Params = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.check(
        x.dtype == y.dtype && x.dims() == y.dims(),
        "clamp changes shape or dtype",
    )?;
    match x.dtype {
        DType::I8 => {
            c.check_act_i8(p.bounds)?;
            c.check(x.quant == y.quant, "int8 clamp changes quantization")
        }
        DType::F32 => c.check_act_f32(p.bounds),
        _ => Err(c.err("clamp supports i8 and f32")),
    }
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    let OpIo { ins, out, .. } = io;
    let Params { bounds } = c.params()?;
    match k {
        Kernel::ClampS8 if has::<S>(Kernel::ClampS8) => {
            kernels::clamp::clamp_s8(cast(ins[0])?, bounds.lo, bounds.hi, cast_mut(out)?)
        }
        Kernel::ClampF32 if has::<S>(Kernel::ClampF32) => {
            let (lo, hi) = bounds.as_f32();
            kernels::clamp::clamp_f32(cast(ins[0])?, lo, hi, cast_mut(out)?)
        }
        _ => Err(not_built(c, k)),
    }
}

pub(crate) fn macs(_: &Ctx<'_, '_>) -> u64 {
    0
}
