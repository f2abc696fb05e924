//! Quantization ([`OpCode::Quantize`]: f32 → int8/uint8) and
//! dequantization ([`OpCode::Dequantize`]: int8/uint8/int32 → f32).

use super::ctx::{cast, cast_mut, Ctx};
use super::{has, not_built, Kernel, NoParams, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels::quantize as q;

/// Quantize and Dequantize take no params: the scale and zero point are
/// the quantized tensor's.
pub type Params = NoParams;

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(match c.op.opcode {
        OpCode::Quantize => Kernel::Quantize,
        _ => Kernel::Dequantize,
    })
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    c.params::<Params>()?;
    let (x, y) = (c.input(0)?, c.output()?);
    if c.op.opcode == OpCode::Quantize {
        c.check(x.dtype == DType::F32, "quantize input must be f32")?;
        c.check(
            matches!(y.dtype, DType::I8 | DType::U8) && y.quant.is_some(),
            "quantize output must be quantized i8/u8",
        )?;
        c.check(x.dims() == y.dims(), "quantize changes the shape")
    } else {
        c.check(
            matches!(x.dtype, DType::I8 | DType::U8 | DType::I32) && x.quant.is_some(),
            "dequantize input must be quantized",
        )?;
        c.check(y.dtype == DType::F32, "dequantize output must be f32")?;
        c.check(x.dims() == y.dims(), "dequantize changes the shape")
    }
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    let OpIo { ins, out, .. } = io;
    let (x, y) = (c.input(0)?, c.output()?);
    match k {
        Kernel::Quantize if has::<S>(Kernel::Quantize) => {
            let (s, zp) = c.quant_of(&y)?;
            match y.dtype {
                DType::I8 => q::quantize_f32_s8(cast(ins[0])?, s, zp, cast_mut(out)?),
                _ => q::quantize_f32_u8(cast(ins[0])?, s, zp, out),
            }
        }
        Kernel::Dequantize if has::<S>(Kernel::Dequantize) => {
            let (s, zp) = c.quant_of(&x)?;
            let yd = cast_mut::<f32>(out)?;
            match x.dtype {
                DType::I8 => q::dequantize_s8_f32(cast(ins[0])?, s, zp, yd),
                DType::U8 => q::dequantize_u8_f32(ins[0], s, zp, yd),
                _ => q::dequantize_i32_f32(cast(ins[0])?, s, zp, yd),
            }
        }
        _ => Err(not_built(c, k)),
    }
}

pub(crate) fn macs(_: &Ctx<'_, '_>) -> u64 {
    0
}
