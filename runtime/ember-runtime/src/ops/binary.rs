//! Element-wise arithmetic with numpy broadcasting ([`OpCode::Add`],
//! [`OpCode::Sub`], [`OpCode::Mul`], [`OpCode::Div`], [`OpCode::Pow`],
//! [`OpCode::Min`], [`OpCode::Max`], [`OpCode::Mod`], [`OpCode::Fmod`],
//! [`OpCode::PRelu`]):
//! f32 and i32, and int8 Add and Mul.

use super::ctx::{broadcasts, cast, cast_mut, Ctx};
use super::params::{Bounds, ParamReader, Params as ParamsTrait};
use super::{has, not_built, Kernel, OpCode, OpIo};
use crate::error::Result;
use crate::format::{DType, REFERENCE_VARIANT};
use crate::kernel_set::KernelSet;
use crate::kernels::{
    self,
    elementwise::{AddParamsS8, BinaryOp, MulParamsS8},
};

/// [`OpCode::Add`] variant: int8 with TFLite rounding, operands and output
/// of one shape.
pub const VARIANT_ADD_S8: u16 = 1;

/// An element-wise op's params: `[act_min, act_max]`, then the words of
/// its [`Fixed`] requantization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Fused activation clamp.
    pub act: Bounds,
    /// TFLite's fixed-point requantization, for int8 ops with that rounding.
    pub fixed: Fixed,
}

/// The fixed-point constants of an int8 op with TFLite rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixed {
    /// None: f32 ops, and int8 ops with onnxruntime rounding (no words).
    None,
    /// Add (7 words, see [`AddFixed`]).
    Add(AddFixed),
    /// Mul (2 words): `[out_mult, out_shift]`.
    Mul {
        /// Output multiplier.
        out_mult: i32,
        /// Output shift.
        out_shift: i32,
    },
}

/// TFLite's Add constants (7 words): `[left_shift, a_mult, a_shift,
/// b_mult, b_shift, out_mult, out_shift]`; the zero points and bounds
/// come from the tensors and [`Params::act`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddFixed {
    /// Left shift applied to both inputs.
    pub left_shift: i32,
    /// Multiplier of `a`.
    pub a_mult: i32,
    /// Shift of `a`.
    pub a_shift: i32,
    /// Multiplier of `b`.
    pub b_mult: i32,
    /// Shift of `b`.
    pub b_shift: i32,
    /// Output multiplier.
    pub out_mult: i32,
    /// Output shift.
    pub out_shift: i32,
}

impl AddFixed {
    /// The constants of a kernel's [`AddParamsS8`].
    pub fn of(p: &AddParamsS8) -> AddFixed {
        AddFixed::from_words([
            p.left_shift,
            p.a_mult,
            p.a_shift,
            p.b_mult,
            p.b_shift,
            p.out_mult,
            p.out_shift,
        ])
    }

    fn from_words(w: [i32; 7]) -> AddFixed {
        let [left_shift, a_mult, a_shift, b_mult, b_shift, out_mult, out_shift] = w;
        AddFixed {
            left_shift,
            a_mult,
            a_shift,
            b_mult,
            b_shift,
            out_mult,
            out_shift,
        }
    }

    fn words(&self) -> [i32; 7] {
        [
            self.left_shift,
            self.a_mult,
            self.a_shift,
            self.b_mult,
            self.b_shift,
            self.out_mult,
            self.out_shift,
        ]
    }

    /// The kernel's parameters, with the zero points of `a`, `b` and the
    /// output and the clamp.
    fn kernel(&self, zp: [i32; 3], act: Bounds) -> AddParamsS8 {
        AddParamsS8 {
            a_zp: zp[0],
            b_zp: zp[1],
            out_zp: zp[2],
            left_shift: self.left_shift,
            a_mult: self.a_mult,
            a_shift: self.a_shift,
            b_mult: self.b_mult,
            b_shift: self.b_shift,
            out_mult: self.out_mult,
            out_shift: self.out_shift,
            act_min: act.lo,
            act_max: act.hi,
        }
    }
}

impl ParamsTrait for Params {
    fn encode(&self, out: &mut impl Extend<i32>) {
        self.act.encode(out);
        match self.fixed {
            Fixed::None => {}
            Fixed::Add(a) => out.extend(a.words()),
            Fixed::Mul {
                out_mult,
                out_shift,
            } => out.extend([out_mult, out_shift]),
        }
    }

    fn decode(r: &mut ParamReader<'_>) -> core::result::Result<Self, &'static str> {
        let act = Bounds::decode(r)?;
        let fixed = match r.remaining() {
            0 => Fixed::None,
            2 => {
                let [out_mult, out_shift] = r.array()?;
                Fixed::Mul {
                    out_mult,
                    out_shift,
                }
            }
            7 => Fixed::Add(AddFixed::from_words(r.array()?)),
            _ => return Err("wrong number of params"),
        };
        Ok(Params { act, fixed })
    }
}

pub(crate) const REFERENCE_SCRATCH: bool = false;

pub(crate) fn variant_name(op: OpCode, v: u16) -> Option<&'static str> {
    match (op, v) {
        (OpCode::Add, VARIANT_ADD_S8) => Some("add_s8_opt"),
        _ => None,
    }
}

pub(crate) fn kernel_of(c: &Ctx<'_, '_>) -> Result<Kernel> {
    use Kernel as K;
    let opt = c.op.variant != REFERENCE_VARIANT;
    Ok(match c.op.opcode {
        _ if c.input_dtype(0)? == DType::F32 => K::BinaryF32,
        _ if c.input_dtype(0)? == DType::I32 => K::BinaryI32,
        OpCode::Add if c.tflite() => [K::AddS8, K::AddS8Opt][opt as usize],
        OpCode::Mul if c.tflite() => K::MulS8,
        _ => K::BinaryS8Float,
    })
}

fn shift_ok(mult: i32, shift: i32) -> bool {
    mult >= 0 && (-31..=30).contains(&shift)
}

pub(crate) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(2, 2)?;
    let (a, b, y) = (c.input(0)?, c.input(1)?, c.output()?);
    if c.op.variant != REFERENCE_VARIANT {
        c.check(
            a.dtype == DType::I8 && c.tflite(),
            "optimized add is int8 with TFLite rounding only",
        )?;
    }
    c.check(
        a.dtype == b.dtype && a.dtype == y.dtype,
        "binary op dtypes differ",
    )?;
    c.check(
        broadcasts(&a, &b, &y),
        "shapes do not broadcast to the output",
    )?;
    let p: Params = c.params()?;
    match a.dtype {
        DType::F32 => {
            c.check(p.fixed == Fixed::None, "wrong number of params")?;
            c.check_act_f32(p.act)?;
        }
        DType::I32 => {
            c.check(
                p.fixed == Fixed::None && p.act == Bounds::int(i32::MIN, i32::MAX),
                "int32 ops take no clamp or requantization",
            )?;
        }
        DType::I8 => {
            c.quant_of(&a)?;
            c.quant_of(&b)?;
            c.quant_of(&y)?;
            match (c.op.opcode, c.tflite(), p.fixed) {
                (OpCode::Add, true, Fixed::Add(f)) => {
                    if c.op.variant != REFERENCE_VARIANT {
                        c.check(
                            a.dims() == y.dims() && b.dims() == y.dims(),
                            "optimized add needs operands of the output's shape",
                        )?;
                    }
                    c.check(
                        (0..=20).contains(&f.left_shift),
                        "add left shift outside [0, 20]",
                    )?;
                    c.check(
                        shift_ok(f.a_mult, f.a_shift)
                            && shift_ok(f.b_mult, f.b_shift)
                            && shift_ok(f.out_mult, f.out_shift),
                        "add multiplier/shift out of range",
                    )?;
                }
                (
                    OpCode::Mul,
                    true,
                    Fixed::Mul {
                        out_mult,
                        out_shift,
                    },
                ) => c.check(
                    shift_ok(out_mult, out_shift),
                    "mul multiplier/shift out of range",
                )?,
                (OpCode::Add, false, Fixed::None) => {}
                (OpCode::Add | OpCode::Mul, true, _) | (OpCode::Add, false, _) => {
                    return Err(c.err("wrong number of params"))
                }
                _ => return Err(c.err("int8 supports Add and Mul (TFLite) or Add (ONNX)")),
            }
            c.check_act_i8(p.act)?;
        }
        _ => return Err(c.err("binary ops support i8, i32 and f32")),
    }
    Ok(())
}

pub(crate) fn eval<S: KernelSet>(c: &Ctx<'_, '_>, k: Kernel, io: OpIo<'_>) -> Result<()> {
    use Kernel as K;
    let OpIo { ins, out, .. } = io;
    let p: Params = c.params()?;
    let (x, b, y) = (c.input(0)?, c.input(1)?, c.output()?);
    if k == K::BinaryI32 {
        if !has::<S>(K::BinaryI32) {
            return Err(not_built(c, k));
        }
        return kernels::elementwise::binary_i32(
            binary_op(c.op.opcode),
            cast(ins[0])?,
            x.dims(),
            cast(ins[1])?,
            b.dims(),
            cast_mut(out)?,
            y.dims(),
        );
    }
    if k == K::BinaryF32 {
        if !has::<S>(K::BinaryF32) {
            return Err(not_built(c, k));
        }
        let bop = binary_op(c.op.opcode);
        let (lo, hi) = p.act.as_f32();
        return kernels::elementwise::binary_f32(
            bop,
            cast(ins[0])?,
            x.dims(),
            cast(ins[1])?,
            b.dims(),
            lo,
            hi,
            cast_mut(out)?,
            y.dims(),
        );
    }
    let (sa, za) = c.quant_of(&x)?;
    let (sb, zb) = c.quant_of(&b)?;
    let (sy, zy) = c.quant_of(&y)?;
    let (lo, hi) = (p.act.lo, p.act.hi);
    match (k, p.fixed) {
        (K::AddS8 | K::AddS8Opt, Fixed::Add(f)) if has::<S>(K::AddS8) || has::<S>(K::AddS8Opt) => {
            let ap = f.kernel([za, zb, zy], p.act);
            if k == K::AddS8Opt && has::<S>(K::AddS8Opt) {
                kernels::opt::elementwise::add_s8_opt(
                    cast(ins[0])?,
                    cast(ins[1])?,
                    &ap,
                    cast_mut(out)?,
                )
            } else if k == K::AddS8 && has::<S>(K::AddS8) {
                kernels::elementwise::add_s8(
                    cast(ins[0])?,
                    x.dims(),
                    cast(ins[1])?,
                    b.dims(),
                    &ap,
                    cast_mut(out)?,
                    y.dims(),
                )
            } else {
                Err(not_built(c, k))
            }
        }
        (
            K::MulS8,
            Fixed::Mul {
                out_mult,
                out_shift,
            },
        ) if has::<S>(K::MulS8) => {
            let mp = MulParamsS8 {
                a_zp: za,
                b_zp: zb,
                out_zp: zy,
                out_mult,
                out_shift,
                act_min: lo,
                act_max: hi,
            };
            kernels::elementwise::mul_s8(
                cast(ins[0])?,
                x.dims(),
                cast(ins[1])?,
                b.dims(),
                &mp,
                cast_mut(out)?,
                y.dims(),
            )
        }
        (K::BinaryS8Float, _) if has::<S>(K::BinaryS8Float) => {
            kernels::elementwise::add_s8_float(
                cast(ins[0])?,
                x.dims(),
                sa,
                za,
                cast(ins[1])?,
                b.dims(),
                sb,
                zb,
                sy,
                zy,
                lo,
                hi,
                cast_mut(out)?,
                y.dims(),
            )
        }
        _ => Err(not_built(c, k)),
    }
}

/// The kernels' operator for an opcode of this family.
fn binary_op(op: OpCode) -> BinaryOp {
    match op {
        OpCode::Add => BinaryOp::Add,
        OpCode::Sub => BinaryOp::Sub,
        OpCode::Mul => BinaryOp::Mul,
        OpCode::Pow => BinaryOp::Pow,
        OpCode::Min => BinaryOp::Min,
        OpCode::Max => BinaryOp::Max,
        OpCode::Mod => BinaryOp::Mod,
        OpCode::Fmod => BinaryOp::Fmod,
        OpCode::PRelu => BinaryOp::PRelu,
        _ => BinaryOp::Div,
    }
}

pub(crate) fn macs(c: &Ctx<'_, '_>) -> u64 {
    c.output().map(|y| super::ctx::prod(y.dims())).unwrap_or(0)
}
