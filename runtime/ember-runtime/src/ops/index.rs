//! Data-indexed ops ([`OpCode::GatherElements`], [`OpCode::NllLoss`],
//! [`OpCode::CumSum`], [`OpCode::TopK`]): the indices come from the input
//! data and are checked as they are read (or are the op's output).

use super::ctx::{cast, cast_mut, prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels::index::{self, Reduction};

/// Params (3 words): `[axis, a, b]`. GatherElements: the axis (a, b 0).
/// NllLoss: the class axis (1), the reduction, and the ignored class
/// (`i32::MIN` for none). CumSum: the axis, exclusive, reverse. TopK: the
/// axis, k, and [`TOP_K_LARGEST`] | [`TOP_K_INDICES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The axis the op indexes or sums along.
    pub axis: usize,
    /// NllLoss: the [`Reduction`] code; CumSum: exclusive (0/1).
    pub a: i32,
    /// NllLoss: the ignored class, `i32::MIN` for none; CumSum: reverse
    /// (0/1).
    pub b: i32,
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.axis as i32, self.a, self.b]);
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        Ok(Params {
            axis: r.usize()?,
            a: r.i32()?,
            b: r.i32()?,
        })
    }
}

/// TopK flag: the largest values (else the smallest).
pub const TOP_K_LARGEST: i32 = 1;
/// TopK flag: output the indices (i32) rather than the values.
pub const TOP_K_INDICES: i32 = 2;

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(match c.op.opcode {
        OpCode::GatherElements => Kernel::GatherElements,
        OpCode::NllLoss => Kernel::NllLossF32,
        OpCode::TopK => Kernel::TopKF32,
        _ => Kernel::CumSum,
    })
}

/// `(outer, n, inner)` around `axis` of `dims`.
fn split(dims: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        dims[..axis].iter().product(),
        dims[axis],
        dims[axis + 1..].iter().product(),
    )
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    let p: Params = c.params()?;
    let y = c.output()?;
    match c.op.opcode {
        OpCode::GatherElements => {
            c.need_inputs(2, 2)?;
            let (x, i) = (c.input(0)?, c.input(1)?);
            c.check(i.dtype == DType::I32, "indices must be i32")?;
            c.check(
                x.dtype == y.dtype && x.quant == y.quant && matches!(x.dtype.size(), 1 | 4),
                "gather_elements changes the type, or an element size other than 1 or 4",
            )?;
            c.check(
                p.axis < x.rank && i.rank == x.rank && i.dims() == y.dims(),
                "gather_elements shapes",
            )?;
            c.check(
                (0..x.rank).all(|d| d == p.axis || i.dims()[d] <= x.dims()[d]),
                "gather_elements index dims exceed the data's",
            )
        }
        OpCode::NllLoss => {
            c.need_inputs(2, 3)?;
            let (x, t) = (c.input(0)?, c.input(1)?);
            c.check(
                x.dtype == DType::F32 && y.dtype == DType::F32 && t.dtype == DType::I32,
                "nll loss reads f32 scores and i32 targets",
            )?;
            c.check(p.axis == 1 && x.rank >= 2, "nll loss classes on axis 1")?;
            let (n, cl, inner) = split(x.dims(), 1);
            c.check(t.numel() == n * inner, "nll loss target size")?;
            if let Some(w) = c.opt_input(2)? {
                c.check(
                    w.dtype == DType::F32 && w.numel() == cl,
                    "nll loss weight: one f32 per class",
                )?;
            }
            let r = Reduction::from_i32(p.a).ok_or(c.err("unknown loss reduction"))?;
            let want = if r == Reduction::None { t.numel() } else { 1 };
            c.check(y.numel() == want, "nll loss output size")
        }
        OpCode::TopK => {
            c.need_inputs(1, 1)?;
            let x = c.input(0)?;
            c.check(x.dtype == DType::F32, "top_k reads f32")?;
            c.check(
                (0..=3).contains(&p.b),
                "top_k flags",
            )?;
            let want = if p.b & TOP_K_INDICES != 0 {
                DType::I32
            } else {
                DType::F32
            };
            c.check(y.dtype == want, "top_k writes f32 values or i32 indices")?;
            c.check(p.axis < x.rank && y.rank == x.rank, "top_k axis")?;
            let k = usize::try_from(p.a).map_err(|_| c.err("top_k k"))?;
            c.check(
                k >= 1
                    && k <= x.dims()[p.axis]
                    && (0..x.rank).all(|d| y.dims()[d] == if d == p.axis { k } else { x.dims()[d] }),
                "top_k output shape",
            )
        }
        _ => {
            c.need_inputs(1, 1)?;
            let x = c.input(0)?;
            c.check(
                x.dtype == y.dtype && x.dims() == y.dims(),
                "cumsum changes type or shape",
            )?;
            c.check(
                matches!(x.dtype, DType::F32 | DType::I32),
                "cumsum is f32 or i32",
            )?;
            c.check(
                p.axis < x.rank && (0..=1).contains(&p.a) && (0..=1).contains(&p.b),
                "cumsum params",
            )
        }
    }
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let x = c.input(0)?;
    match k {
        Kernel::GatherElements if has::<S>(Kernel::GatherElements) => {
            let i = c.input(1)?;
            let idx: &[i32] = cast(ins[1])?;
            if x.dtype.size() == 1 {
                index::gather_elements(ins[0], x.dims(), idx, i.dims(), p.axis, out)
            } else {
                index::gather_elements::<u32>(
                    cast(ins[0])?,
                    x.dims(),
                    idx,
                    i.dims(),
                    p.axis,
                    cast_mut(out)?,
                )
            }
        }
        Kernel::NllLossF32 if has::<S>(Kernel::NllLossF32) => {
            let (n, cl, inner) = split(x.dims(), 1);
            let weight = match ins.get(2) {
                Some(w) if c.opt_input(2)?.is_some() => Some(cast::<f32>(w)?),
                _ => None,
            };
            index::nll_loss_f32(
                cast(ins[0])?,
                n,
                cl,
                inner,
                cast(ins[1])?,
                weight,
                (p.b != i32::MIN).then_some(p.b),
                Reduction::from_i32(p.a).ok_or(c.err("unknown loss reduction"))?,
                cast_mut(out)?,
            )
        }
        Kernel::TopKF32 if has::<S>(Kernel::TopKF32) => {
            let (o, n, inner) = split(x.dims(), p.axis);
            let k = usize::try_from(p.a).map_err(|_| c.err("top_k k"))?;
            let largest = p.b & TOP_K_LARGEST != 0;
            if p.b & TOP_K_INDICES != 0 {
                index::top_k_f32(cast(ins[0])?, o, n, inner, k, largest, None, Some(cast_mut(out)?))
            } else {
                index::top_k_f32(cast(ins[0])?, o, n, inner, k, largest, Some(cast_mut(out)?), None)
            }
        }
        Kernel::CumSum if has::<S>(Kernel::CumSum) => {
            let (o, n, inner) = split(x.dims(), p.axis);
            let (ex, rev) = (p.a != 0, p.b != 0);
            if x.dtype == DType::F32 {
                let add = |a: f32, b: f32| a + b;
                index::cumsum(cast(ins[0])?, o, n, inner, ex, rev, add, cast_mut(out)?)
            } else {
                let add = i32::wrapping_add;
                index::cumsum(cast(ins[0])?, o, n, inner, ex, rev, add, cast_mut(out)?)
            }
        }
        _ => Err(not_built(c, k)),
    }
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
