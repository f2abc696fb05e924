//! Resize and Upsample ([`OpCode::Resize`]): nearest on any element type,
//! linear, cubic and antialiased on f32 and int8, by per-axis tables the
//! compiler computes ([`crate::kernels::resize`]).

use super::ctx::{cast, cast_mut, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::{DType, Storage};
use crate::kernel_set::KernelSet;
use crate::kernels::opt::resize::{resize_f32_opt, resize_nearest_opt, resize_s8_opt};
use crate::kernels::resize::{self, check_table, MAX_TAPS};

/// Resize params (2 words): `[taps, extrapolation]`: taps per axis in the
/// table (1 = nearest), the extrapolation value as f32 bits for f32 data
/// and for interpolated int8 data (it is quantized like every output),
/// else the element's integer value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Input coordinates blended per axis (1: nearest, any element type;
    /// more: f32 or int8).
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

/// The variant that runs the optimized kernels of
/// [`crate::kernels::opt::resize`] (nearest, f32 and int8 blends).
pub const VARIANT_OPT: u16 = 1;

pub(crate) fn variant_name(op: OpCode, v: u16) -> Option<&'static str> {
    match (op, v) {
        (OpCode::Resize, VARIANT_OPT) => Some("resize_opt"),
        _ => None,
    }
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    let p: Params = c.params()?;
    let opt = c.op.variant == VARIANT_OPT;
    let int8 = c.input_dtype(0)? == DType::I8;
    Ok(match (p.taps, opt) {
        (1, true) => Kernel::ResizeNearestOpt,
        (1, false) => Kernel::ResizeNearest,
        (_, true) if int8 => Kernel::ResizeS8Opt,
        (_, false) if int8 => Kernel::ResizeS8,
        (_, true) => Kernel::ResizeF32Opt,
        (_, false) => Kernel::ResizeF32,
    })
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(2, 2)?;
    let p: Params = c.params()?;
    let (x, t, y) = (c.input(0)?, c.input(1)?, c.output()?);
    c.check(x.dtype == y.dtype, "resize changes the data type")?;
    if p.taps == 1 {
        c.check(x.quant == y.quant, "nearest resize changes the quantization")?;
    } else if x.dtype == DType::I8 {
        c.quant_of(&x)?;
        c.quant_of(&y)?;
    } else {
        c.check(
            x.dtype == DType::F32,
            "interpolating resize is f32 or int8 only",
        )?;
    }
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
    // Each kernel is named under a constant guard, so a build's kernel set
    // links only the ones it has; the reference and optimized variant of a
    // form share the call.
    let f32_blend: Option<F32Blend> = match k {
        Kernel::ResizeF32 if has::<S>(Kernel::ResizeF32) => Some(resize::resize_f32),
        Kernel::ResizeF32Opt if has::<S>(Kernel::ResizeF32Opt) => Some(resize_f32_opt),
        _ => None,
    };
    let s8_blend: Option<S8Blend> = match k {
        Kernel::ResizeS8 if has::<S>(Kernel::ResizeS8) => Some(resize::resize_s8),
        Kernel::ResizeS8Opt if has::<S>(Kernel::ResizeS8Opt) => Some(resize_s8_opt),
        _ => None,
    };
    let nearest: Option<(Nearest<u8>, Nearest<u16>, Nearest<u32>)> = match k {
        Kernel::ResizeNearest if has::<S>(Kernel::ResizeNearest) => Some((
            resize::resize_nearest::<u8>,
            resize::resize_nearest::<u16>,
            resize::resize_nearest::<u32>,
        )),
        Kernel::ResizeNearestOpt if has::<S>(Kernel::ResizeNearestOpt) => Some((
            resize_nearest_opt::<u8>,
            resize_nearest_opt::<u16>,
            resize_nearest_opt::<u32>,
        )),
        _ => None,
    };
    let ef = f32::from_bits(e as u32);
    if let Some(f) = f32_blend {
        f(
            cast(ins[0])?,
            x.dims(),
            table,
            p.taps,
            ef,
            cast_mut(out)?,
            y.dims(),
        )
    } else if let Some(f) = s8_blend {
        let (xq, yq) = (c.quant_of(&x)?, c.quant_of(&y)?);
        f(
            cast(ins[0])?,
            x.dims(),
            xq,
            table,
            p.taps,
            ef,
            cast_mut(out)?,
            y.dims(),
            yq,
        )
    } else if let Some((one, two, four)) = nearest {
        let (xd, yd) = (x.dims(), y.dims());
        match x.dtype.size() {
            1 => one(ins[0], xd, table, e as u8, out, yd),
            2 => two(cast(ins[0])?, xd, table, e as u16, cast_mut(out)?, yd),
            _ => four(cast(ins[0])?, xd, table, e as u32, cast_mut(out)?, yd),
        }
    } else {
        Err(not_built(c, k))
    }
}

/// An f32 interpolating kernel's signature.
type F32Blend = fn(&[f32], &[usize], &[i32], usize, f32, &mut [f32], &[usize]) -> Result<()>;

/// An int8 interpolating kernel's signature.
type S8Blend = fn(
    &[i8],
    &[usize],
    (f32, i32),
    &[i32],
    usize,
    f32,
    &mut [i8],
    &[usize],
    (f32, i32),
) -> Result<()>;

/// A nearest-neighbour kernel's signature for elements of type `T`.
type Nearest<T> = fn(&[T], &[usize], &[i32], T, &mut [T], &[usize]) -> Result<()>;

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
