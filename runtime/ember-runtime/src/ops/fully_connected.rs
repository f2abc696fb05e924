//! Fully connected layers ([`OpCode::FullyConnected`]): int8 and f32,
//! reference and optimized kernels.

use super::ctx::{cast, cast_mut, opt_cast, prod, Ctx};
use super::params::{Bounds, ParamReader, Params as ParamsTrait};
use super::weights::{validate_f32_opt, validate_opt, validate_packed_weights, validate_weights};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::{DType, FOLDED_BIAS_INPUT, PACKED_WEIGHTS_INPUT, REFERENCE_VARIANT};
use crate::kernel_set::KernelSet;
use crate::kernels::{self, QuantIo, Requant};

/// Variant: int8, weight zero point 0.
pub const VARIANT_S8: u16 = 1;
/// Variant: f32, four outputs per pass.
pub const VARIANT_F32: u16 = 2;

/// A fully connected layer's params (2 words): `[act_min, act_max]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Fused activation clamp.
    pub act: Bounds,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        self.act.encode(out);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params {
            act: Bounds::decode(r)?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, v: u16) -> Option<&'static str> {
    match v {
        VARIANT_S8 => Some("fully_connected_s8_opt"),
        VARIANT_F32 => Some("fully_connected_f32_opt"),
        _ => None,
    }
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    use Kernel as K;
    let opt = c.op.variant != REFERENCE_VARIANT;
    Ok(if c.input_dtype(0)? == DType::I8 {
        [K::FullyConnectedS8, K::FullyConnectedS8Opt][opt as usize]
    } else if c.op.variant == VARIANT_F32 {
        K::FullyConnectedF32Opt
    } else {
        K::FullyConnectedF32
    })
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    if c.op.variant == REFERENCE_VARIANT {
        c.need_inputs(2, 4)?;
    } else if c.op.variant == VARIANT_F32 {
        c.need_inputs(2, 3)?;
    } else {
        c.need_inputs(FOLDED_BIAS_INPUT + 1, PACKED_WEIGHTS_INPUT + 1)?;
    }
    let p: Params = c.params()?;
    let (x, w, y) = (c.input(0)?, c.input(1)?, c.output()?);
    c.check(w.rank == 2, "weights must be [N, K]")?;
    let (n, k) = (w.dims()[0], w.dims()[1]);
    c.check(
        x.rank >= 1 && x.dim_from_end(0) == k,
        "input's last dim ≠ K",
    )?;
    c.check(
        y.rank == x.rank && y.dim_from_end(0) == n,
        "output's last dim ≠ N",
    )?;
    c.check(
        x.dims()[..x.rank - 1] == y.dims()[..y.rank - 1],
        "input and output leading dims differ",
    )?;
    validate_weights(c, &x, &w, &y, n, p.act)?;
    if c.op.variant == VARIANT_F32 {
        validate_f32_opt(c, &x, 0)?;
    } else if c.op.variant != REFERENCE_VARIANT {
        c.check(
            c.quant_of(&w)?.1 == 0,
            "optimized fully connected needs weight zero point 0",
        )?;
        validate_opt(c, &x, n, 0, false)?;
        // Only the DSP layout: the NEON kernels have no packed form here.
        validate_packed_weights(c, &w, n, k, true)?;
    }
    Ok(())
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, kernel: Kernel, io: OpIo<'_>) -> Result<()> {
    use Kernel as K;
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let (x, w, y) = (c.input(0)?, c.input(1)?, c.output()?);
    let (n, k) = (w.dims()[0], w.dims()[1]);
    let rows = x.numel() / k.max(1);
    if x.dtype == DType::I8 {
        let q = QuantIo {
            in_zp: c.quant_of(&x)?.1,
            out_zp: c.quant_of(&y)?.1,
            act_min: p.act.lo,
            act_max: p.act.hi,
        };
        let w_zp = c.quant_of(&w)?.1;
        let bias = opt_cast::<i32>(c, &ins, 2)?;
        // TFLite's one multiplier per layer rounds the 64-bit product once.
        let rq = match c.requant(ins[3])? {
            Requant::Fixed(p) => Requant::FixedSingle(p),
            other => other,
        };
        match kernel {
            K::FullyConnectedS8Opt if has::<S>(K::FullyConnectedS8Opt) => {
                // TFLite's one multiplier comes as `FixedSingle`: the
                // per-channel fixed-point epilogue is never needed.
                let packed = opt_cast::<i16>(c, &ins, PACKED_WEIGHTS_INPUT)?.unwrap_or(&[]);
                kernels::opt::fully_connected::fully_connected_s8_opt_for::<false>(
                    cast(ins[0])?,
                    rows,
                    k,
                    cast(ins[1])?,
                    packed,
                    n,
                    cast(ins[FOLDED_BIAS_INPUT])?,
                    rq,
                    q,
                    cast_mut(out)?,
                )
            }
            K::FullyConnectedS8 if has::<S>(K::FullyConnectedS8) => {
                kernels::fully_connected::fully_connected_s8(
                    cast(ins[0])?,
                    rows,
                    k,
                    cast(ins[1])?,
                    n,
                    w_zp,
                    bias,
                    rq,
                    q,
                    cast_mut(out)?,
                )
            }
            _ => Err(not_built(c, kernel)),
        }
    } else {
        let bias = opt_cast::<f32>(c, &ins, 2)?;
        let (lo, hi) = p.act.as_f32();
        match kernel {
            K::FullyConnectedF32Opt if has::<S>(K::FullyConnectedF32Opt) => {
                kernels::opt::conv_f32::fully_connected_f32_opt(
                    cast(ins[0])?,
                    rows,
                    k,
                    cast(ins[1])?,
                    n,
                    bias,
                    lo,
                    hi,
                    cast_mut(out)?,
                )
            }
            K::FullyConnectedF32 if has::<S>(K::FullyConnectedF32) => {
                kernels::fully_connected::fully_connected_f32(
                    cast(ins[0])?,
                    rows,
                    k,
                    cast(ins[1])?,
                    n,
                    bias,
                    lo,
                    hi,
                    cast_mut(out)?,
                )
            }
            _ => Err(not_built(c, kernel)),
        }
    }
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    match (c.output(), c.input(0)) {
        (Ok(y), Ok(x)) => prod(y.dims()).saturating_mul(x.dim_from_end(0) as u64),
        _ => 0,
    }
}
