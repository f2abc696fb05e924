//! Padding ([`OpCode::Pad`]), int8 and f32: with a constant, or with the
//! input's own edge, reflection or wrap.

use super::ctx::{cast, cast_mut, Ctx};
use super::params::{ParamReader, Params as ParamsTrait, PerAxis};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels;
use crate::kernels::pad::PadMode;

/// Pad params (`2·rank + 1` words for constant padding, one more for the
/// other modes): `[before_0, .., before_{r-1}, after_0, .., after_{r-1},
/// value(, mode)]`, the value a quantized integer for int8 or `f32` bits,
/// the mode a [`PadMode`] word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Elements added before each axis.
    pub before: PerAxis,
    /// Elements added after each axis.
    pub after: PerAxis,
    /// The fill value's word (constant padding).
    pub value: i32,
    /// Fill from the input instead of with `value`.
    pub mode: Option<PadMode>,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        self.before.encode(out);
        self.after.encode(out);
        out.extend([self.value]);
        if let Some(m) = self.mode {
            out.extend([m as i32]);
        }
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let n = r.remaining();
        let with_mode = n.is_multiple_of(2);
        let rank = (n - with_mode as usize) / 2;
        Ok(Params {
            before: PerAxis::decode(r, rank)?,
            after: PerAxis::decode(r, rank)?,
            value: r.i32()?,
            mode: match with_mode {
                true => Some(PadMode::from_i32(r.i32()?).ok_or("unknown pad mode")?),
                false => None,
            },
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok([Kernel::PadF32, Kernel::PadS8][(c.input_dtype(0)?.size() == 1) as usize])
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let (x, y) = (c.input(0)?, c.output()?);
    let p: Params = c.params()?;
    c.check(p.before.rank == x.rank, "wrong number of params")?;
    c.check(
        x.dtype == y.dtype && x.rank == y.rank,
        "pad changes dtype or rank",
    )?;
    c.check(x.quant == y.quant, "pad changes quantization")?;
    for i in 0..x.rank {
        let (b, a) = (p.before.v[i], p.after.v[i]);
        c.check(
            x.dims()[i].checked_add(b).and_then(|v| v.checked_add(a)) == Some(y.dims()[i]),
            "output dims ≠ input dims + pads",
        )?;
    }
    match x.dtype {
        DType::I8 => c.check((-128..=127).contains(&p.value), "int8 pad value out of range"),
        DType::U8 => c.check((0..=255).contains(&p.value), "uint8 pad value out of range"),
        DType::F32 | DType::I32 => Ok(()),
        _ => Err(c.err("pad supports i8, u8, i32 and f32")),
    }
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let x = c.input(0)?;
    let (before, after) = (p.before.as_slice(), p.after.as_slice());
    if let Some(mode) = p.mode {
        return match k {
            Kernel::PadS8 if has::<S>(Kernel::PadS8) => kernels::pad::pad_from_input::<u8>(
                ins[0],
                x.dims(),
                before,
                after,
                mode,
                out,
            ),
            Kernel::PadF32 if has::<S>(Kernel::PadF32) => kernels::pad::pad_from_input::<u32>(
                cast(ins[0])?,
                x.dims(),
                before,
                after,
                mode,
                cast_mut(out)?,
            ),
            _ => Err(not_built(c, k)),
        };
    }
    match k {
        Kernel::PadS8 if has::<S>(Kernel::PadS8) => {
            kernels::pad::pad::<u8>(ins[0], x.dims(), before, after, p.value as u8, out)
        }
        // 4-byte elements (f32 bits, i32) are moved as words.
        Kernel::PadF32 if has::<S>(Kernel::PadF32) => kernels::pad::pad::<u32>(
            cast(ins[0])?,
            x.dims(),
            before,
            after,
            p.value as u32,
            cast_mut(out)?,
        ),
        _ => Err(not_built(c, k)),
    }
}

pub(crate) fn macs(_: &Ctx<'_, '_>) -> u64 {
    0
}
