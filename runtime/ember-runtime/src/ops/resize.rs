//! Resize and Upsample ([`OpCode::Resize`]): nearest on any element type,
//! linear, cubic and antialiased on f32, by per-axis tables the compiler computes
//! ([`crate::kernels::resize`]).

use super::ctx::{cast, cast_mut, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::{DType, Storage};
use crate::kernel_set::KernelSet;
use crate::kernels::resize::{self, check_table, MAX_TAPS};

/// Resize params (2 words): `[taps, extrapolation]`: taps per axis in the
/// table (1 = nearest), the extrapolation value as f32 bits for f32 data,
/// else the element's integer value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Input coordinates blended per axis (1: nearest, any element type;
    /// more: f32).
    pub taps: usize,
    /// The value of output points outside the input (TF crop-and-resize).
    pub extrapolation: i32,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.taps as i32, self.extrapolation]);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let taps = r.usize()?;
        if taps == 0 || taps > MAX_TAPS {
            return Err("resize taps out of range");
        }
        Ok(Params {
            taps,
            extrapolation: r.i32()?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    let p: Params = c.params()?;
    Ok(if p.taps > 1 {
        Kernel::ResizeF32
    } else {
        Kernel::ResizeNearest
    })
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(2, 2)?;
    let p: Params = c.params()?;
    let (x, t, y) = (c.input(0)?, c.input(1)?, c.output()?);
    c.check(
        x.dtype == y.dtype && x.quant == y.quant,
        "resize changes dtype or quantization",
    )?;
    c.check(
        p.taps == 1 || x.dtype == DType::F32,
        "interpolating resize is f32 only",
    )?;
    c.check(
        matches!(x.dtype.size(), 1 | 2 | 4),
        "resize element size",
    )?;
    c.check(
        t.dtype == DType::I32 && t.storage == Storage::Const,
        "resize table must be a constant int32 tensor",
    )?;
    let table: &[i32] = cast(c.const_bytes(&t, "resize table")?)?;
    check_table(table, p.taps, x.dims(), y.dims()).map_err(|e| c.err(e))
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    let table: &[i32] = cast(ins[1])?;
    let e = p.extrapolation;
    match k {
        Kernel::ResizeF32 if has::<S>(Kernel::ResizeF32) => resize::resize_f32(
            cast(ins[0])?,
            x.dims(),
            table,
            p.taps,
            f32::from_bits(e as u32),
            cast_mut(out)?,
            y.dims(),
        ),
        Kernel::ResizeNearest if has::<S>(Kernel::ResizeNearest) => match x.dtype.size() {
            1 => resize::resize_nearest::<u8>(ins[0], x.dims(), table, e as u8, out, y.dims()),
            2 => resize::resize_nearest::<u16>(
                cast(ins[0])?,
                x.dims(),
                table,
                e as u16,
                cast_mut(out)?,
                y.dims(),
            ),
            _ => resize::resize_nearest::<u32>(
                cast(ins[0])?,
                x.dims(),
                table,
                e as u32,
                cast_mut(out)?,
                y.dims(),
            ),
        },
        _ => Err(not_built(c, k)),
    }
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
