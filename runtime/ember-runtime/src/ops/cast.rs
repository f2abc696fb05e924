//! Element type conversion ([`OpCode::Cast`]).

use super::ctx::{prod, Ctx};
use super::params::{ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::DType;
use crate::kernel_set::KernelSet;
use crate::kernels::logic::{self, Elems};

/// Cast params (1 word, or 2 when not saturating): `[to_bool(,
/// saturate)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Cast to booleans (u8 0/1: non-zero is true) rather than to the
    /// output's numeric type.
    pub to_bool: bool,
    /// Out-of-range values cast to an 8-bit float become its largest
    /// value (ONNX `saturate`, the default) rather than infinity or NaN.
    pub saturate: bool,
}

impl Params {
    /// A numeric cast (saturating).
    pub const NUMERIC: Params = Params {
        to_bool: false,
        saturate: true,
    };
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        out.extend([self.to_bool as i32]);
        if !self.saturate {
            out.extend([0]);
        }
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let to_bool = r.bool().map_err(|_| "cast to_bool must be 0 or 1")?;
        let saturate = match r.remaining() {
            0 => true,
            _ => r.bool().map_err(|_| "cast saturate must be 0 or 1")?,
        };
        Ok(Params { to_bool, saturate })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(_: OpCode, _: u16) -> Option<&'static str> {
    None
}

pub(crate) fn kernel_of(_: &Ctx<'_, '_>) -> Result<Kernel> {
    Ok(Kernel::Cast)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.check(x.numel() == y.numel(), "cast changes the size")?;
    let p: Params = c.params()?;
    c.check(!p.to_bool || y.dtype == DType::U8, "bool casts output u8")
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    if !has::<S>(Kernel::Cast) {
        return Err(not_built(c, k));
    }
    let Params { to_bool, saturate } = c.params()?;
    let (x, y) = (c.input(0)?, c.output()?);
    logic::cast(
        Elems::new(io.ins[0], x.dtype, x.numel())?,
        x.numel(),
        io.out,
        y.dtype,
        to_bool,
        saturate,
    )
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| prod(y.dims())).unwrap_or(0)
}
