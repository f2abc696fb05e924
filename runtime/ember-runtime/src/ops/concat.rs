//! Concatenation along an axis ([`OpCode::Concat`]), int8 and f32.

use super::ctx::{cast, cast_mut, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::{DType, MAX_OP_INPUTS};
use crate::kernel_set::KernelSet;
use crate::kernels;

/// Concat params (one word): `[axis]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The axis the inputs are stacked along.
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

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok([Kernel::ConcatF32, Kernel::ConcatS8][(c.output_dtype()? == DType::I8) as usize])
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, MAX_OP_INPUTS)?;
    let Params { axis } = c.params()?;
    let y = c.output()?;
    c.check(axis < y.rank, "concat axis out of range")?;
    let mut total = 0usize;
    for i in 0..c.op.n_inputs {
        let x = c.input(i)?;
        c.check(
            x.dtype == y.dtype && x.rank == y.rank,
            "concat input dtype/rank differs",
        )?;
        c.check(x.quant == y.quant, "concat inputs must share quantization")?;
        for d in 0..y.rank {
            if d != axis {
                c.check(
                    x.dims()[d] == y.dims()[d],
                    "concat input dims differ off-axis",
                )?;
            }
        }
        total = total.checked_add(x.dims()[axis]).ok_or(c.err("overflow"))?;
    }
    c.check(
        total == y.dims()[axis],
        "concat output extent ≠ sum of inputs",
    )?;
    c.check(
        matches!(y.dtype, DType::I8 | DType::F32),
        "concat supports i8 and f32",
    )
}

fn concat<T: bytemuck::Pod>(
    c: &Ctx<'_, '_>,
    ins: &[&[u8]],
    out: &mut [u8],
) -> Result<()> {
    let n = c.op.n_inputs;
    let y = c.output()?;
    let mut infos = [y; MAX_OP_INPUTS];
    let mut dims: [&[usize]; MAX_OP_INPUTS] = [&[]; MAX_OP_INPUTS];
    let mut data: [&[T]; MAX_OP_INPUTS] = [&[]; MAX_OP_INPUTS];
    for i in 0..n {
        infos[i] = c.input(i)?;
        data[i] = cast(ins[i])?;
    }
    for i in 0..n {
        dims[i] = infos[i].dims();
    }
    let Params { axis } = c.params()?;
    kernels::concat::concat::<T>(&data[..n], &dims[..n], axis, cast_mut(out)?, y.dims())
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    match k {
        Kernel::ConcatS8 if has::<S>(Kernel::ConcatS8) => concat::<i8>(c, &io.ins, io.out),
        Kernel::ConcatF32 if has::<S>(Kernel::ConcatF32) => concat::<f32>(c, &io.ins, io.out),
        _ => Err(not_built(c, k)),
    }
}

pub(crate) fn macs(_: &Ctx<'_, '_>) -> u64 {
    0
}
