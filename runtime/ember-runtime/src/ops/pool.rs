//! Pooling ([`OpCode::AvgPool2d`], [`OpCode::MaxPool2d`]) over NHWC, int8
//! and f32.

use super::ctx::{cast, cast_mut, prod, shape4, Ctx};
use super::params::{decode_window, encode_window, Bounds, ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::{DType, REFERENCE_VARIANT};
use crate::kernel_set::KernelSet;
use crate::kernels::{self, pool::PoolParams};

/// [`OpCode::AvgPool2d`] variant: int8, the window is the whole image (no
/// padding, one output pixel).
pub const VARIANT_GLOBAL_AVG_S8: u16 = 1;

/// A pooling op's params (11 words): `[kh, kw, stride_h, stride_w, pad_top,
/// pad_left, pad_bottom, pad_right, count_include_pad, act_min, act_max]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Window size, strides, dilations, paddings and how averages count.
    pub pool: PoolParams,
    /// Fused activation clamp.
    pub act: Bounds,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.pool.kh as i32, self.pool.kw as i32]);
        encode_window(&self.pool.win, self.pool.win.is_dilated(), out);
        out.extend([self.pool.count_include_pad as i32]);
        self.act.encode(out);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        // Undilated windows leave out the two dilation words.
        let dilated = r.remaining() == DILATED_WORDS;
        let [kh, kw] = r.usizes()?;
        Ok(Params {
            pool: PoolParams {
                kh,
                kw,
                win: decode_window(r, dilated)?,
                count_include_pad: r.bool().map_err(|_| "count_include_pad must be 0 or 1")?,
            },
            act: Bounds::decode(r)?,
        })
    }
}

/// Words of a dilated pool's params: kh, kw, 2 strides, 2 dilations, 4
/// pads, count_include_pad, 2 bounds.
const DILATED_WORDS: usize = 13;

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(op: OpCode, v: u16) -> Option<&'static str> {
    match (op, v) {
        (OpCode::AvgPool2d, VARIANT_GLOBAL_AVG_S8) => Some("global_avg_pool_s8_opt"),
        _ => None,
    }
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    use Kernel as K;
    let int8 = c.input_dtype(0)? == DType::I8;
    let avg = c.op.opcode == OpCode::AvgPool2d;
    Ok(match (avg, int8) {
        (true, true) if c.op.variant != REFERENCE_VARIANT => K::GlobalAvgPoolS8Opt,
        (true, true) => [K::AvgPoolS8Zp, K::AvgPoolS8][c.tflite() as usize],
        (true, false) => K::AvgPoolF32,
        (false, true) => K::MaxPoolS8,
        (false, false) => K::MaxPoolF32,
    })
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let p: Params = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    let xs = shape4(&x).ok_or(c.err("pool input must be 4-D NHWC"))?;
    let ys = shape4(&y).ok_or(c.err("pool output must be 4-D NHWC"))?;
    let (kh, kw, win) = (p.pool.kh, p.pool.kw, p.pool.win);
    c.check(
        xs.n == ys.n && xs.c == ys.c,
        "pool changes batch or channels",
    )?;
    c.check(
        win.out_hw(xs.h, xs.w, kh, kw) == Some((ys.h, ys.w)),
        "output size does not match the window",
    )?;
    c.check(x.dtype == y.dtype, "pool changes dtype")?;
    if c.op.variant != REFERENCE_VARIANT {
        c.check(
            x.dtype == DType::I8
                && kh == xs.h
                && kw == xs.w
                && ys.h == 1
                && ys.w == 1
                && !win.is_dilated()
                && win.pad_top == 0
                && win.pad_left == 0
                && win.pad_bottom == 0
                && win.pad_right == 0,
            "global pooling variant needs an int8 whole-image window without padding",
        )?;
    }
    match x.dtype {
        DType::I8 => {
            c.check(
                x.quant.is_some() && x.quant == y.quant,
                "int8 pool must keep quantization",
            )?;
            c.check_act_i8(p.act)
        }
        DType::F32 => c.check_act_f32(p.act),
        _ => Err(c.err("pooling supports i8 and f32")),
    }
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    use Kernel as K;
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    let xs = shape4(&x).ok_or(c.err("shape"))?;
    let ys = shape4(&y).ok_or(c.err("shape"))?;
    let pp = &p.pool;
    if x.dtype == DType::I8 {
        let (lo, hi) = (p.act.lo, p.act.hi);
        let (xd, yd) = (cast::<i8>(ins[0])?, cast_mut::<i8>(out)?);
        match k {
            K::GlobalAvgPoolS8Opt if has::<S>(K::GlobalAvgPoolS8Opt) => {
                let (half_even, zp) = if c.tflite() {
                    (false, 0)
                } else {
                    (true, c.quant_of(&x)?.1)
                };
                kernels::opt::pool::global_avg_pool_s8_opt(xd, xs, half_even, zp, lo, hi, yd, ys)
            }
            K::AvgPoolS8Zp if has::<S>(K::AvgPoolS8Zp) => {
                // onnxruntime rounds around the zero point.
                let zp = c.quant_of(&x)?.1;
                kernels::pool::avg_pool_s8_zp(xd, xs, pp, true, zp, lo, hi, yd, ys)
            }
            K::AvgPoolS8 if has::<S>(K::AvgPoolS8) => {
                kernels::pool::avg_pool_s8(xd, xs, pp, false, lo, hi, yd, ys)
            }
            K::MaxPoolS8 if has::<S>(K::MaxPoolS8) => {
                kernels::pool::max_pool_s8(xd, xs, pp, lo, hi, yd, ys)
            }
            _ => Err(not_built(c, k)),
        }
    } else {
        let (lo, hi) = p.act.as_f32();
        let (xd, yd) = (cast::<f32>(ins[0])?, cast_mut::<f32>(out)?);
        match k {
            K::AvgPoolF32 if has::<S>(K::AvgPoolF32) => {
                kernels::pool::avg_pool_f32(xd, xs, pp, lo, hi, yd, ys)
            }
            K::MaxPoolF32 if has::<S>(K::MaxPoolF32) => {
                kernels::pool::max_pool_f32(xd, xs, pp, lo, hi, yd, ys)
            }
            _ => Err(not_built(c, k)),
        }
    }
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    let (Ok(y), Ok(p)) = (c.output(), c.params::<Params>()) else {
        return 0;
    };
    prod(y.dims()).saturating_mul(prod(&[p.pool.kh, p.pool.kw]))
}
