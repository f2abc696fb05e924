//! Convolutions ([`OpCode::Conv2d`], [`OpCode::DepthwiseConv2d`]): int8 and
//! f32, reference and optimized kernels.

use super::ctx::{cast, cast_mut, opt_cast, prod, shape4, Ctx};
use super::params::{decode_window, encode_window, Bounds, ParamReader, Params as ParamsTrait};
use super::weights::{validate_f32_opt, validate_opt, validate_packed_weights, validate_weights};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::{
    DType, FOLDED_BIAS_INPUT, PACKED_WEIGHTS_INPUT, REQUANT_BLOCKS_INPUT, SCRATCH_INPUT,
};
use crate::kernel_set::KernelSet;
use crate::kernels::{self, QuantIo, Requant, Window};

/// [`OpCode::Conv2d`] variant: pointwise 1×1 (stride 1, no padding, one
/// group) as a matrix product on the input rows.
pub const VARIANT_POINTWISE: u16 = 1;
/// [`OpCode::Conv2d`] variant: one group, each receptive field gathered
/// into scratch, then a matrix product.
pub const VARIANT_IM2COL: u16 = 2;
/// [`OpCode::Conv2d`] variant: f32, one group, four pixels and four output
/// channels per pass (fused multiply-adds on NEON; scratch for four
/// receptive fields unless pointwise).
pub const VARIANT_F32: u16 = 3;
/// [`OpCode::DepthwiseConv2d`] variant: int8, multiplier 1, sixteen
/// channels per block.
pub const VARIANT_DEPTHWISE: u16 = 1;
/// [`OpCode::DepthwiseConv2d`] variant: f32, multiplier 1, four channels
/// per vector.
pub const VARIANT_DEPTHWISE_F32: u16 = 2;

/// A convolution's params (11 words): `[stride_h, stride_w, dil_h, dil_w,
/// pad_top, pad_left, pad_bottom, pad_right, groups, act_min, act_max]`,
/// then for an int8 convolution with a fused table activation 65 more:
/// the requantized values' zero point and the 256-byte table, which stays
/// in the blob (the kernel reads it in place; [`Params::encode_with_table`]
/// writes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Strides, dilations and paddings.
    pub window: Window,
    /// Groups ([`OpCode::Conv2d`]) or depth multiplier
    /// ([`OpCode::DepthwiseConv2d`]).
    pub groups: usize,
    /// Fused activation clamp.
    pub act: Bounds,
    /// With a fused int8 table activation ([`OpCode::Lut`]: Sigmoid,
    /// HardSwish, … of the clamped int8 results): the zero point the
    /// convolution requantizes to (and the scale its requantization
    /// constants were computed for) before every output byte `v` becomes
    /// `table[v as u8]`, in the output tensor's quantization.
    pub table_zp: Option<i32>,
}

/// Words before the table in a convolution's params.
const TABLE_AT: usize = 12;

impl Params {
    /// The params followed by the zero point `zp` and `table`: what a
    /// convolution with a fused table activation stores (decoded, its
    /// [`Params::table_zp`] is `Some(zp)`).
    pub fn encode_with_table(&self, zp: i32, table: &[u8; 256], out: &mut impl Extend<i32>) {
        self.encode(out);
        out.extend([zp]);
        out.extend(
            table
                .chunks_exact(4)
                .map(|w| i32::from_le_bytes([w[0], w[1], w[2], w[3]])),
        );
    }
}

impl ParamsTrait for Params {
    /// The 11 words (a table is written by [`Params::encode_with_table`]).
    fn encode(&self, out: &mut impl Extend<i32>) {
        encode_window(&self.window, true, out);
        out.extend([self.groups as i32]);
        self.act.encode(out);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let window = decode_window(r, true)?;
        let groups = r.usize()?;
        let act = Bounds::decode(r)?;
        let table_zp = if r.remaining() > 0 {
            let zp = r.i32()?;
            r.skip(64)?;
            Some(zp)
        } else {
            None
        };
        Ok(Params {
            window,
            groups,
            act,
            table_zp,
        })
    }
}

/// The kernel a convolution runs besides its own: the in-place table
/// lookup ([`Kernel::Lut8Opt`]) when it has a fused table.
pub(crate) fn fused_kernel(c: &Ctx<'_, '_>) -> Result<Option<Kernel>> {
    let p: Params = c.params()?;
    Ok(p.table_zp.map(|_| Kernel::Lut8Opt))
}

/// The fused table of a convolution whose params have one, read in place
/// from the op's parameter bytes.
fn table_of<'a>(c: &Ctx<'a, '_>) -> Result<&'a [u8; 256]> {
    c.op.param_bytes()
        .get(TABLE_AT * 4..TABLE_AT * 4 + 256)
        .and_then(|b| b.try_into().ok())
        .ok_or(c.err("fused table missing from the params"))
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(op: OpCode, v: u16) -> Option<&'static str> {
    Some(match (op, v) {
        (OpCode::Conv2d, VARIANT_POINTWISE) => "conv2d_s8_pointwise",
        (OpCode::Conv2d, VARIANT_IM2COL) => "conv2d_s8_im2col",
        (OpCode::Conv2d, VARIANT_F32) => "conv2d_f32_opt",
        (OpCode::DepthwiseConv2d, VARIANT_DEPTHWISE) => "depthwise_conv2d_s8_opt",
        (OpCode::DepthwiseConv2d, VARIANT_DEPTHWISE_F32) => "depthwise_conv2d_f32_opt",
        _ => return None,
    })
}

/// Whether the op names one of the f32 optimized variants.
fn is_f32_variant(c: &Ctx<'_, '_>) -> bool {
    matches!(
        (c.op.opcode, c.op.variant),
        (OpCode::Conv2d, VARIANT_F32) | (OpCode::DepthwiseConv2d, VARIANT_DEPTHWISE_F32)
    )
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    use Kernel as K;
    let int8 = c.input_dtype(0)? == DType::I8;
    let opt = c.op.variant != crate::format::REFERENCE_VARIANT;
    let f32_opt = is_f32_variant(c);
    let tflite = c.tflite() as usize;
    Ok(match c.op.opcode {
        OpCode::Conv2d if int8 && !opt => K::ConvS8,
        OpCode::Conv2d if int8 => [K::ConvS8OptFloat, K::ConvS8Opt][tflite],
        OpCode::Conv2d if f32_opt => K::ConvF32Opt,
        OpCode::Conv2d => K::ConvF32,
        _ if int8 && !opt => K::DepthwiseS8,
        _ if int8 => [K::DepthwiseS8OptFloat, K::DepthwiseS8Opt][tflite],
        _ if f32_opt => K::DepthwiseF32Opt,
        _ => K::DepthwiseF32,
    })
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    if c.op.variant == crate::format::REFERENCE_VARIANT {
        c.need_inputs(2, 4)?;
    } else if is_f32_variant(c) {
        c.need_inputs(2, SCRATCH_INPUT + 1)?;
    } else {
        c.need_inputs(FOLDED_BIAS_INPUT + 1, PACKED_WEIGHTS_INPUT + 1)?;
    }
    let p: Params = c.params()?;
    let (x, w, y) = (c.input(0)?, c.input(1)?, c.output()?);
    let xs = shape4(&x).ok_or(c.err("conv input must be 4-D NHWC"))?;
    let ws = shape4(&w).ok_or(c.err("conv filter must be 4-D"))?;
    let ys = shape4(&y).ok_or(c.err("conv output must be 4-D NHWC"))?;
    let (win, g, co) = (p.window, p.groups, ys.c);
    if c.op.opcode == OpCode::Conv2d {
        c.check(
            g >= 1 && ws.n == co && co % g == 0,
            "filter/groups do not match output channels",
        )?;
        c.check(
            ws.c.checked_mul(g) == Some(xs.c),
            "filter channels × groups ≠ input channels",
        )?;
    } else {
        c.check(
            g >= 1 && ws.n == 1 && ws.c == co,
            "depthwise filter must be [1, Kh, Kw, Co]",
        )?;
        c.check(
            xs.c.checked_mul(g) == Some(co),
            "input channels × multiplier ≠ output channels",
        )?;
    }
    c.check(ys.n == xs.n, "batch mismatch")?;
    c.check(
        win.out_hw(xs.h, xs.w, ws.h, ws.w) == Some((ys.h, ys.w)),
        "output size does not match the window",
    )?;
    validate_weights(c, &x, &w, &y, co, p.act)?;
    // (Decoding the params checked that the 64 table words follow.)
    if let Some(zp) = p.table_zp {
        c.check(
            x.dtype == DType::I8 && (-128..=127).contains(&zp),
            "a fused table needs int8 data and an int8 zero point",
        )?;
    }
    match (c.op.opcode, c.op.variant) {
        (_, crate::format::REFERENCE_VARIANT) => Ok(()),
        (OpCode::Conv2d, VARIANT_F32) => {
            c.check(g == 1, "optimized convolution needs one group")?;
            let scratch = kernels::opt::conv_f32::conv2d_f32_opt_scratch_size(ws, &win);
            validate_f32_opt(c, &x, scratch)
        }
        (OpCode::DepthwiseConv2d, VARIANT_DEPTHWISE_F32) => {
            c.check(
                xs.c == co,
                "optimized depthwise convolution needs multiplier 1",
            )?;
            validate_f32_opt(c, &x, 0)
        }
        (OpCode::Conv2d, v) => {
            c.check(g == 1, "optimized convolution needs one group")?;
            let pointwise = kernels::opt::conv::is_pointwise(ws, &win);
            c.check(
                pointwise == (v == VARIANT_POINTWISE),
                "kernel variant does not fit the convolution's geometry",
            )?;
            validate_opt(
                c,
                &x,
                co,
                kernels::opt::conv::conv2d_s8_opt_scratch_size(ws, &win, false),
                true,
            )?;
            validate_packed_weights(c, &w, co, ws.h * ws.w * ws.c, false)
        }
        _ => {
            c.check(
                xs.c == co,
                "optimized depthwise convolution needs multiplier 1",
            )?;
            c.check(
                c.op.input(PACKED_WEIGHTS_INPUT).is_none(),
                "packed weights are for convolutions",
            )?;
            validate_opt(
                c,
                &x,
                co,
                kernels::opt::depthwise_conv::depthwise_conv2d_s8_opt_scratch_size(co),
                true,
            )
        }
    }
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    use Kernel as K;
    let OpIo { ins, out, scratch } = io;
    let p: Params = c.params()?;
    let (x, w, y) = (c.input(0)?, c.input(1)?, c.output()?);
    let (xs, ws, ys) = (
        shape4(&x).ok_or(c.err("shape"))?,
        shape4(&w).ok_or(c.err("shape"))?,
        shape4(&y).ok_or(c.err("shape"))?,
    );
    let (win, g) = (&p.window, p.groups);
    if x.dtype == DType::I8 {
        let q = QuantIo {
            in_zp: c.quant_of(&x)?.1,
            out_zp: match p.table_zp {
                Some(zp) => zp,
                None => c.quant_of(&y)?.1,
            },
            act_min: p.act.lo,
            act_max: p.act.hi,
        };
        let bias = opt_cast::<i32>(c, &ins, 2)?;
        let mut rq = c.requant(ins[3])?;
        if let (Requant::Fixed(pairs), Some(_)) = (rq, c.op.input(REQUANT_BLOCKS_INPUT)) {
            rq = Requant::FixedBlocked {
                pairs,
                blocks: cast(ins[REQUANT_BLOCKS_INPUT])?,
            };
        }
        let (xd, wd, yd) = (
            cast::<i8>(ins[0])?,
            cast::<i8>(ins[1])?,
            cast_mut::<i8>(out)?,
        );
        let done = match k {
            K::DepthwiseS8Opt | K::DepthwiseS8OptFloat
                if (k == K::DepthwiseS8Opt && has::<S>(K::DepthwiseS8Opt))
                    || (k == K::DepthwiseS8OptFloat && has::<S>(K::DepthwiseS8OptFloat)) =>
            {
                let fb = cast::<i32>(ins[FOLDED_BIAS_INPUT])?;
                kernels::opt::depthwise_conv::depthwise_conv2d_s8_opt_for::<S>(
                    xd,
                    xs,
                    wd,
                    ws,
                    fb,
                    rq,
                    q,
                    win,
                    cast_mut(scratch)?,
                    yd,
                    ys,
                )
            }
            K::ConvS8Opt | K::ConvS8OptFloat
                if (k == K::ConvS8Opt && has::<S>(K::ConvS8Opt))
                    || (k == K::ConvS8OptFloat && has::<S>(K::ConvS8OptFloat)) =>
            {
                let fb = cast::<i32>(ins[FOLDED_BIAS_INPUT])?;
                let packed = opt_cast::<i16>(c, &ins, PACKED_WEIGHTS_INPUT)?.unwrap_or(&[]);
                kernels::opt::conv::conv2d_s8_opt_for::<S>(
                    xd,
                    xs,
                    wd,
                    ws,
                    packed,
                    fb,
                    rq,
                    q,
                    win,
                    cast_mut(scratch)?,
                    yd,
                    ys,
                )
            }
            K::DepthwiseS8 if has::<S>(K::DepthwiseS8) => {
                kernels::depthwise_conv::depthwise_conv2d_s8(
                    xd, xs, wd, ws, bias, rq, q, win, g, yd, ys,
                )
            }
            K::ConvS8 if has::<S>(K::ConvS8) => {
                kernels::conv::conv2d_s8(xd, xs, wd, ws, bias, rq, q, win, g, yd, ys)
            }
            _ => Err(not_built(c, k)),
        };
        done?;
        if p.table_zp.is_some() {
            // A firmware whose model has no fused table leaves the lookup
            // out (its kernel set lacks `Lut8Opt`; see `fused_kernel`).
            if !has::<S>(K::Lut8Opt) {
                return Err(not_built(c, K::Lut8Opt));
            }
            kernels::opt::lut::lut_8_inplace_opt(cast_mut(out)?, table_of(c)?);
        }
        Ok(())
    } else {
        let bias = opt_cast::<f32>(c, &ins, 2)?;
        let (lo, hi) = p.act.as_f32();
        let (xd, wd, yd) = (
            cast::<f32>(ins[0])?,
            cast::<f32>(ins[1])?,
            cast_mut::<f32>(out)?,
        );
        match k {
            K::DepthwiseF32Opt if has::<S>(K::DepthwiseF32Opt) => {
                kernels::opt::depthwise_conv_f32::depthwise_conv2d_f32_opt(
                    xd, xs, wd, ws, bias, win, lo, hi, yd, ys,
                )
            }
            K::ConvF32Opt if has::<S>(K::ConvF32Opt) => kernels::opt::conv_f32::conv2d_f32_opt(
                xd, xs, wd, ws, bias, win, lo, hi, scratch, yd, ys,
            ),
            K::DepthwiseF32 if has::<S>(K::DepthwiseF32) => {
                kernels::depthwise_conv::depthwise_conv2d_f32(
                    xd, xs, wd, ws, bias, win, g, lo, hi, yd, ys,
                )
            }
            K::ConvF32 if has::<S>(K::ConvF32) => {
                kernels::conv::conv2d_f32(xd, xs, wd, ws, bias, win, g, lo, hi, yd, ys)
            }
            _ => {
                let _ = scratch;
                Err(not_built(c, k))
            }
        }
    }
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    let (Ok(y), Ok(w)) = (c.output(), c.input(1)) else {
        return 0;
    };
    if w.rank != 4 {
        return 0;
    }
    // Per output: Kh·Kw taps × (Ci/groups channels, or 1 for depthwise).
    let taps = prod(&w.dims()[1..3]);
    let ci = if c.op.opcode == OpCode::Conv2d {
        w.dims()[3] as u64
    } else {
        1
    };
    prod(y.dims()).saturating_mul(taps).saturating_mul(ci)
}
