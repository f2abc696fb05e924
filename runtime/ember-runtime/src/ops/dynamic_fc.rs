//! Fully connected layers on dynamically quantized f32 inputs
//! ([`OpCode::DynamicFullyConnected`], see [`crate::kernels::dynamic_fc`]).

use super::ctx::{cast, cast_mut, opt_cast, prod, Ctx};
use super::{has, not_built, Kernel, NoParams, OpCode, OpIo};
use crate::error::Result;
use crate::format::{DType, SCRATCH_INPUT};
use crate::kernel_set::KernelSet;
use crate::kernels;

/// Variant: four weight rows per pass over the quantized input row.
pub const VARIANT_OPT: u16 = 1;

/// The dynamic fully connected op takes no params.
pub type Params = NoParams;

pub(crate) const REFERENCE_SCRATCH: bool = true;

pub(crate) fn variant_name(_: OpCode, v: u16) -> Option<&'static str> {
    (v == VARIANT_OPT).then_some("fully_connected_dynamic_f32_opt")
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(if c.op.variant == VARIANT_OPT {
        Kernel::DynamicFullyConnectedOpt
    } else {
        Kernel::DynamicFullyConnected
    })
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(SCRATCH_INPUT + 1, SCRATCH_INPUT + 1)?;
    c.params::<Params>()?;
    let (x, w, y) = (c.input(0)?, c.input(1)?, c.output()?);
    c.check_const(&w, DType::I8, "dynamic fc weights must be constant int8")?;
    c.check(
        w.rank == 2 && x.rank >= 1 && x.dtype == DType::F32 && y.dtype == DType::F32,
        "dynamic fc shapes",
    )?;
    let (n, k) = (w.dims()[0], w.dims()[1]);
    c.check(
        x.dims()[x.rank - 1] == k && k <= kernels::dynamic_fc::MAX_DEPTH,
        "dynamic fc depth",
    )?;
    let rows = x.numel() / k.max(1);
    c.check(
        rows.checked_mul(n) == Some(y.numel()),
        "dynamic fc output size",
    )?;
    let ws = c.input(2)?;
    let wsn = if ws.numel() == 1 { 1 } else { n };
    let s = c.const_f32_vec(
        &ws,
        wsn,
        "dynamic fc weight scales must be constant f32 [N or 1]",
    )?;
    c.check(
        s.iter().all(|v| v.is_finite()),
        "dynamic fc weight scale not finite",
    )?;
    if let Some(b) = c.opt_input(3)? {
        c.const_f32_vec(&b, n, "dynamic fc bias must be constant f32 [N]")?;
    }
    // The weight sums are checked against the weights, so the kernel can
    // trust them.
    let sums = c.input(4)?;
    const SUMS: &str = "dynamic fc weight sums must be constant i32 [N]";
    c.check_const(&sums, DType::I32, SUMS)?;
    c.check(sums.numel() == n, SUMS)?;
    let sums: &[i32] = cast(c.const_bytes(&sums, "weight sums")?)?;
    let wb: &[i8] = cast(c.const_bytes(&w, "weights")?)?;
    let ok = k == 0
        || wb
            .chunks_exact(k)
            .zip(sums)
            .all(|(r, &s)| r.iter().map(|&v| v as i32).sum::<i32>() == s);
    c.check(ok, "dynamic fc weight sums do not match the weights")?;
    c.check_scratch(
        kernels::dynamic_fc::fully_connected_dynamic_scratch_size(rows, k),
        false,
        "missing input",
    )
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, kernel: Kernel, io: OpIo<'_>) -> Result<()> {
    let OpIo { ins, out, scratch } = io;
    let (x, w) = (c.input(0)?, c.input(1)?);
    let (n, k) = (w.dims()[0], w.dims()[1]);
    let rows = x.numel() / k.max(1);
    let bias = opt_cast::<f32>(c, &ins, 3)?;
    let f = match kernel {
        Kernel::DynamicFullyConnectedOpt if has::<S>(Kernel::DynamicFullyConnectedOpt) => {
            kernels::opt::dynamic_fc::fully_connected_dynamic_f32_opt
        }
        Kernel::DynamicFullyConnected if has::<S>(Kernel::DynamicFullyConnected) => {
            kernels::dynamic_fc::fully_connected_dynamic_f32
        }
        _ => return Err(not_built(c, kernel)),
    };
    f(
        cast(ins[0])?,
        rows,
        k,
        cast(ins[1])?,
        n,
        cast(ins[2])?,
        cast(ins[4])?,
        bias,
        cast_mut(scratch)?,
        cast_mut(out)?,
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    match (c.output(), c.input(0)) {
        (Ok(y), Ok(x)) if x.rank >= 1 => {
            prod(y.dims()).saturating_mul(x.dims()[x.rank - 1] as u64)
        }
        _ => 0,
    }
}
