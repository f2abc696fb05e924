//! Softmax over the last axis ([`OpCode::Softmax`]), f32 and int8, and its
//! f32 relatives [`OpCode::LogSoftmax`] and [`OpCode::Hardmax`].

use super::ctx::{cast, cast_mut, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels;

/// Softmax params: `[f32 beta]`, then for int8 with TFLite rounding
/// `[input_left_shift, diff_min, input_multiplier]` (see
/// [`kernels::softmax::softmax_params_s8`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Inverse temperature.
    pub beta: f32,
    /// TFLite's fixed-point constants (int8 with TFLite rounding only).
    pub fixed: Option<Fixed>,
}

/// TFLite's fixed-point softmax constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixed {
    /// Left shift of the input differences.
    pub input_left_shift: i32,
    /// Smallest difference that still counts (non-positive).
    pub diff_min: i32,
    /// Multiplier of the input differences.
    pub input_multiplier: i32,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.beta.to_bits() as i32]);
        if let Some(f) = self.fixed {
            out.extend([f.input_left_shift, f.diff_min, f.input_multiplier]);
        }
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let beta = r.f32()?;
        let fixed = if r.remaining() == 3 {
            let [input_left_shift, diff_min, input_multiplier] = r.array()?;
            Some(Fixed {
                input_left_shift,
                diff_min,
                input_multiplier,
            })
        } else {
            None
        };
        Ok(Params { beta, fixed })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    match c.op.opcode {
        OpCode::LogSoftmax => return Ok(Kernel::LogSoftmaxF32),
        OpCode::Hardmax => return Ok(Kernel::HardmaxF32),
        _ => {}
    }
    Ok(if c.input_dtype(0)? == DType::F32 {
        Kernel::SoftmaxF32
    } else {
        [Kernel::SoftmaxS8Float, Kernel::SoftmaxS8][c.tflite() as usize]
    })
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.check(
        x.dims() == y.dims() && x.rank >= 1,
        "softmax changes the shape",
    )?;
    let p: Params = c.params()?;
    c.check(
        p.beta.is_finite() && p.beta > 0.0,
        "softmax beta must be positive",
    )?;
    if c.op.opcode != OpCode::Softmax {
        return c.check(
            x.dtype == DType::F32 && y.dtype == DType::F32 && p.fixed.is_none(),
            "log-softmax and hardmax are f32",
        );
    }
    match x.dtype {
        DType::F32 => {
            c.check(p.fixed.is_none(), "wrong number of params")?;
            c.check(y.dtype == DType::F32, "float softmax must output f32")
        }
        DType::I8 => {
            c.quant_of(&x)?;
            let (s, zp) = c.quant_of(&y)?;
            c.check(y.dtype == DType::I8, "int8 softmax must output int8")?;
            match (c.tflite(), p.fixed) {
                (true, Some(f)) => {
                    c.check(
                        s == 1.0 / 256.0 && zp == -128,
                        "int8 softmax output must be scale 1/256, zero point -128",
                    )?;
                    c.check(
                        (0..=31).contains(&f.input_left_shift),
                        "softmax left shift out of range",
                    )?;
                    c.check(f.diff_min <= 0, "softmax diff_min must be non-positive")?;
                    c.check(
                        f.input_multiplier >= 0,
                        "softmax multiplier must be non-negative",
                    )
                }
                (false, None) => Ok(()),
                _ => Err(c.err("wrong number of params")),
            }
        }
        _ => Err(c.err("softmax supports i8 and f32")),
    }
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    use Kernel as K;
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    let depth = x.dim_from_end(0);
    let rows = x.numel() / depth.max(1);
    match (k, p.fixed) {
        (K::SoftmaxF32, _) if has::<S>(K::SoftmaxF32) => {
            kernels::softmax::softmax_f32(cast(ins[0])?, rows, depth, p.beta, cast_mut(out)?)
        }
        (K::LogSoftmaxF32, _) if has::<S>(K::LogSoftmaxF32) => {
            kernels::softmax::log_softmax_f32(cast(ins[0])?, rows, depth, p.beta, cast_mut(out)?)
        }
        (K::HardmaxF32, _) if has::<S>(K::HardmaxF32) => {
            kernels::softmax::hardmax_f32(cast(ins[0])?, rows, depth, cast_mut(out)?)
        }
        (K::SoftmaxS8, Some(f)) if has::<S>(K::SoftmaxS8) => kernels::softmax::softmax_s8(
            cast(ins[0])?,
            rows,
            depth,
            f.input_multiplier,
            f.input_left_shift,
            f.diff_min,
            cast_mut(out)?,
        ),
        (K::SoftmaxS8Float, _) if has::<S>(K::SoftmaxS8Float) => {
            let (sx, zx) = c.quant_of(&x)?;
            let (sy, zy) = c.quant_of(&y)?;
            kernels::softmax::softmax_s8_float(
                cast(ins[0])?,
                rows,
                depth,
                sx,
                zx,
                p.beta,
                sy,
                zy,
                cast_mut(out)?,
            )
        }
        _ => Err(not_built(c, k)),
    }
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
