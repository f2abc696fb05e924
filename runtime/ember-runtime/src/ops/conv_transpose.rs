//! Transposed convolution ([`OpCode::ConvTranspose`]), f32 on NHWC.

use super::ctx::{cast, cast_mut, opt_cast, prod, shape4, Ctx};
use super::params::{decode_window, encode_window, Bounds, ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::{DType, Storage};
use crate::kernel_set::KernelSet;
use crate::kernels::conv_transpose::{conv_transpose_f32, ConvTransposeGeometry};

/// ConvTranspose params (13 words): `[kh, kw, stride_h, stride_w, dil_h,
/// dil_w, pad_top, pad_left, pad_bottom, pad_right, groups, act_lo,
/// act_hi]` (the bottom/right padding is informational: the output's
/// extent decides it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Filter size, window and groups.
    pub geo: ConvTransposeGeometry,
    /// Fused activation clamp.
    pub act: Bounds,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.geo.kh as i32, self.geo.kw as i32]);
        encode_window(&self.geo.win, true, out);
        out.extend([self.geo.groups as i32]);
        self.act.encode(out);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let [kh, kw] = r.usizes()?;
        let win = decode_window(r, true)?;
        let groups = r.usize()?;
        Ok(Params {
            geo: ConvTransposeGeometry {
                kh,
                kw,
                win,
                groups,
            },
            act: Bounds::decode(r)?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::ConvTransposeF32)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(2, 3)?;
    let p: Params = c.params()?;
    let (x, w, y) = (c.input(0)?, c.input(1)?, c.output()?);
    let xs = shape4(&x).ok_or(c.err("conv_transpose input must be 4-D NHWC"))?;
    let ys = shape4(&y).ok_or(c.err("conv_transpose output must be 4-D NHWC"))?;
    let g = &p.geo;
    c.check(
        x.dtype == DType::F32 && y.dtype == DType::F32,
        "conv_transpose is f32",
    )?;
    c.check(
        g.groups > 0 && xs.c % g.groups == 0 && ys.c % g.groups == 0 && xs.n == ys.n,
        "conv_transpose channels, groups or batch",
    )?;
    c.check(
        g.win.stride_h > 0 && g.win.stride_w > 0 && g.win.dil_h > 0 && g.win.dil_w > 0,
        "conv_transpose stride or dilation is 0",
    )?;
    c.check(
        w.dtype == DType::F32
            && w.storage == Storage::Const
            && w.dims() == [g.kh, g.kw, xs.c, ys.c / g.groups],
        "conv_transpose filter must be constant f32 [kh, kw, c, m/groups]",
    )?;
    if let Some(b) = c.opt_input(2)? {
        c.check(
            b.dtype == DType::F32 && b.storage == Storage::Const && b.numel() == ys.c,
            "conv_transpose bias must be constant f32 [m]",
        )?;
    }
    c.check_act_f32(p.act)
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::ConvTransposeF32) {
        return Err(not_built(c, k));
    }
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    let xs = shape4(&x).ok_or(c.err("shape"))?;
    let ys = shape4(&y).ok_or(c.err("shape"))?;
    let (lo, hi) = p.act.as_f32();
    conv_transpose_f32(
        cast(ins[0])?,
        xs,
        cast(ins[1])?,
        opt_cast(c, &ins, 2)?,
        &p.geo,
        lo,
        hi,
        cast_mut(out)?,
        ys,
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    // Every input element meets kh·kw·(m/groups) weights.
    let (Ok(x), Ok(w)) = (c.input(0), c.input(1)) else {
        return 0;
    };
    let d = w.dims();
    prod(x.dims()).saturating_mul(prod(&[d[0], d[1], d[3]]))
}
