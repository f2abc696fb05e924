//! Strided slices of runtime tensors ([`OpCode::Slice`]), any element
//! type: ONNX `Slice` (and `Split`) with every bound resolved by the
//! compiler.

use super::ctx::{cast, cast_mut, Ctx};
use super::params::{ParamReader, Params as ParamsTrait, PerAxis};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::MAX_RANK;
use crate::kernel_set::KernelSet;
use crate::kernels;
use crate::kernels::slice::slice_axis_fits;

/// Slice params (two words per axis): `start[0..rank]` (first input index
/// read on each axis), then `step[0..rank]` (input elements moved per
/// output element, non-zero, negative for reversed slices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// First index read on each axis.
    pub start: PerAxis,
    /// Step on each axis; entries past the rank are 0.
    pub step: [i32; MAX_RANK],
}

impl Params {
    /// The steps of the slice's axes.
    pub fn steps(&self) -> &[i32] {
        &self.step[..self.start.rank]
    }
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        self.start.encode(out);
        out.extend(self.steps().iter().copied());
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let n = r.remaining();
        if !n.is_multiple_of(2) {
            return Err("wrong number of params");
        }
        let start = PerAxis::decode(r, n / 2)?;
        let mut step = [0i32; MAX_RANK];
        for s in step.iter_mut().take(start.rank) {
            *s = r.i32()?;
            if *s == 0 {
                return Err("a slice step is 0");
            }
        }
        Ok(Params { start, step })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Slice)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let (x, y) = (c.input(0)?, c.output()?);
    let p: Params = c.params()?;
    c.check(p.start.rank == x.rank, "wrong number of params")?;
    c.check(
        x.dtype == y.dtype && x.rank == y.rank,
        "slice changes dtype or rank",
    )?;
    c.check(x.quant == y.quant, "slice changes quantization")?;
    for d in 0..x.rank {
        c.check(
            slice_axis_fits(
                x.dims()[d],
                p.start.v[d],
                p.step[d] as isize,
                y.dims()[d],
            ),
            "slice reads outside its input",
        )?;
    }
    Ok(())
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Slice) {
        return Err(not_built(c, k));
    }
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    let mut step = [0isize; MAX_RANK];
    for (s, &v) in step.iter_mut().zip(p.steps()) {
        *s = v as isize;
    }
    let (start, step) = (p.start.as_slice(), &step[..x.rank]);
    match x.dtype.size() {
        1 => kernels::slice::slice::<u8>(ins[0], x.dims(), start, step, out, y.dims()),
        2 => kernels::slice::slice::<u16>(
            cast(ins[0])?,
            x.dims(),
            start,
            step,
            cast_mut(out)?,
            y.dims(),
        ),
        _ => kernels::slice::slice::<u32>(
            cast(ins[0])?,
            x.dims(),
            start,
            step,
            cast_mut(out)?,
            y.dims(),
        ),
    }
}

pub(crate) fn macs(_: &Ctx<'_, '_>) -> u64 {
    0
}
