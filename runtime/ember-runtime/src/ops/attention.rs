//! Fused f32 attention ([`OpCode::Attention`]): `softmax(scale · q·kᵀ +
//! mask) · v`, one row of scores at a time (see [`crate::kernels::attention`]).

use super::ctx::{cast, cast_mut, opt_cast, prod, Ctx};
use super::matmul::{decode_strides, encode_strides, fits, view};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::{DType, SCRATCH_INPUT};
use crate::kernel_set::KernelSet;
use crate::kernels::{self, attention::AttentionParams};
use crate::model::TensorInfo;

/// Attention params (21 words): `[heads, Sq, Sk, D, Dv]`, the strides
/// (head, sequence, dimension) of q, k, v, the output and the mask (zeros
/// without one), then the f32 score scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Heads.
    pub heads: usize,
    /// Query positions.
    pub sq: usize,
    /// Key positions.
    pub sk: usize,
    /// Query/key depth.
    pub d: usize,
    /// Value depth.
    pub dv: usize,
    /// Strides of q.
    pub q: [usize; 3],
    /// Strides of k.
    pub k: [usize; 3],
    /// Strides of v.
    pub v: [usize; 3],
    /// Strides of the output.
    pub y: [usize; 3],
    /// Strides of the mask (zeros without one).
    pub mask: [usize; 3],
    /// Factor applied to each dot product before the mask.
    pub scale: f32,
}

impl Params {
    /// The kernel's geometry, with the mask view when the op has a mask.
    pub fn attention(&self, has_mask: bool) -> AttentionParams {
        let (h, sq, sk) = (self.heads, self.sq, self.sk);
        AttentionParams {
            q: view((h, sq, self.d), self.q),
            k: view((h, sk, self.d), self.k),
            v: view((h, sk, self.dv), self.v),
            y: view((h, sq, self.dv), self.y),
            mask: has_mask.then(|| view((h, sq, sk), self.mask)),
            scale: self.scale,
        }
    }
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.heads, self.sq, self.sk, self.d, self.dv].map(|v| v as i32));
        for s in [&self.q, &self.k, &self.v, &self.y, &self.mask] {
            encode_strides(s, out);
        }
        out.extend([self.scale.to_bits() as i32]);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params {
            heads: r.usize()?,
            sq: r.usize()?,
            sk: r.usize()?,
            d: r.usize()?,
            dv: r.usize()?,
            q: decode_strides(r)?,
            k: decode_strides(r)?,
            v: decode_strides(r)?,
            y: decode_strides(r)?,
            mask: decode_strides(r)?,
            scale: r.f32()?,
        })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = true;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Attention)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(SCRATCH_INPUT + 1, SCRATCH_INPUT + 1)?;
    let pp: Params = c.params()?;
    let (q, k, v, y) = (c.input(0)?, c.input(1)?, c.input(2)?, c.output()?);
    let mask = c.opt_input(3)?;
    c.check(c.op.input(4).is_none(), "attention input 4 must be empty")?;
    let f32 = |t: &TensorInfo<'_>| t.dtype == DType::F32;
    c.check(
        f32(&q) && f32(&k) && f32(&v) && f32(&y) && mask.is_none_or(|m| f32(&m)),
        "attention is f32 only",
    )?;
    let p = pp.attention(mask.is_some());
    c.check(
        fits(&p.q, &q) && fits(&p.k, &k) && fits(&p.v, &v) && p.y.is_permutation_of(y.numel()),
        "attention view outside its tensor",
    )?;
    if let (Some(mv), Some(m)) = (p.mask, mask) {
        c.check(fits(&mv, &m), "attention mask view outside its tensor")?;
    }
    c.check(p.scale.is_finite(), "attention scale not finite")?;
    c.check_scratch(
        kernels::attention::attention_f32_scratch_size(p.k.rows, p.v.cols),
        false,
        "missing input",
    )
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Attention) {
        return Err(not_built(c, k));
    }
    let OpIo { ins, out, scratch } = io;
    let mask = opt_cast::<f32>(c, &ins, 3)?;
    let p = c.params::<Params>()?.attention(mask.is_some());
    let n = kernels::attention::attention_f32_scratch_size(p.k.rows, p.v.cols);
    let s: &mut [f32] = cast_mut(scratch.get_mut(..n).ok_or(c.err("scratch"))?)?;
    kernels::attention::attention_f32(
        cast(ins[0])?,
        cast(ins[1])?,
        cast(ins[2])?,
        mask,
        &p,
        s,
        cast_mut(out)?,
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.params::<Params>()
        .map(|p| prod(&[p.heads, p.sq, p.sk, p.d.saturating_add(p.dv)]))
        .unwrap_or(0)
}
