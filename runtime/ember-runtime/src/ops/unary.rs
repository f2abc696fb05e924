//! Element-wise functions of one tensor: [`OpCode::Unary`] applies an f32
//! function (GELU, sigmoid, tanh, exp, … see
//! [`UnaryOp`](crate::kernels::unary::UnaryOp)); [`OpCode::Lut`] applies one
//! to int8 or uint8 data through a 256-entry table that the compiler
//! computed from the same function.

use super::ctx::{cast, cast_mut, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::kernel_set::KernelSet;
use crate::kernels::opt::lut::lut_8_opt;
use crate::kernels::unary::{lut_8, unary_f32};
pub use crate::kernels::unary::{UnaryFn, UnaryOp};
use crate::format::{DType, Storage};

/// Unary params: `[function]` ([`UnaryOp`] as its code), then `[alpha,
/// beta]` as f32 bits for the functions that take them
/// ([`UnaryOp::has_params`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// The function and its parameters.
    pub f: UnaryFn,
}

impl Params {
    /// The params of a function without parameters.
    pub const fn of(op: UnaryOp) -> Params {
        Params { f: UnaryFn::of(op) }
    }
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.f.op as i32]);
        if self.f.op.has_params() {
            out.extend([self.f.alpha.to_bits() as i32, self.f.beta.to_bits() as i32]);
        }
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let op = UnaryOp::from_i32(r.i32()?).ok_or("unknown unary function")?;
        let (alpha, beta) = if op.has_params() {
            (r.f32()?, r.f32()?)
        } else {
            (0.0, 0.0)
        };
        Ok(Params {
            f: UnaryFn { op, alpha, beta },
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

/// The [`OpCode::Lut`] variant that runs
/// [`crate::kernels::opt::lut::lut_8_opt`].
pub const VARIANT_LUT_OPT: u16 = 1;

pub(crate) fn variant_name(op: OpCode, v: u16) -> Option<&'static str> {
    match (op, v) {
        (OpCode::Lut, VARIANT_LUT_OPT) => Some("lut_8_opt"),
        _ => None,
    }
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(match c.op.opcode {
        OpCode::Lut if c.op.variant == VARIANT_LUT_OPT => Kernel::Lut8Opt,
        OpCode::Lut => Kernel::Lut8,
        _ => Kernel::Unary,
    })
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    if c.op.opcode == OpCode::Lut {
        c.need_inputs(2, 2)?;
        let (x, t, y) = (c.input(0)?, c.input(1)?, c.output()?);
        c.check(
            matches!(x.dtype, DType::I8 | DType::U8) && matches!(y.dtype, DType::I8 | DType::U8),
            "lut: int8 or uint8 data",
        )?;
        c.check(x.numel() == y.numel(), "lut: input and output sizes differ")?;
        return c.check(
            t.storage == Storage::Const && t.dtype == y.dtype && t.numel() == 256,
            "lut: the table must be a constant of 256 entries of the output's type",
        );
    }
    c.need_inputs(1, 1)?;
    let p: Params = c.params()?;
    c.check(
        p.f.alpha.is_finite() && p.f.beta.is_finite(),
        "unary: non-finite parameter",
    )?;
    c.check(
        !(p.f.op == UnaryOp::Celu && p.f.alpha == 0.0),
        "unary: celu alpha must not be 0",
    )?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.check(
        x.dtype == DType::F32 && y.dtype == DType::F32 && x.numel() == y.numel(),
        "unary: f32, same size",
    )
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    match k {
        Kernel::Lut8 if has::<S>(Kernel::Lut8) => lut_8(io.ins[0], io.ins[1], io.out),
        Kernel::Lut8Opt if has::<S>(Kernel::Lut8Opt) => lut_8_opt(io.ins[0], io.ins[1], io.out),
        Kernel::Unary if has::<S>(Kernel::Unary) => {
            let Params { f } = c.params()?;
            unary_f32(&f, cast(io.ins[0])?, cast_mut(io.out)?)
        }
        _ => Err(not_built(c, k)),
    }
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
