//! Operator registration: for each opcode, what its inputs, outputs and
//! params must look like (`validate`, run once at load time), how to call
//! its kernel (`eval`), and how much work it is (`macs`).
//!
//! `eval` only runs on ops that passed `validate`, but it still never
//! indexes unchecked: kernels re-check slice lengths and return errors.

use crate::error::{Error, Result};
use crate::format::{
    variant, DType, OpCode, Rounding, Storage, FOLDED_BIAS_INPUT, MAX_RANK, PACKED_WEIGHTS_INPUT,
    REQUANT_BLOCKS_INPUT, SCRATCH_INPUT,
};
use crate::interpreter::OpIo;
use crate::kernel_set::{built, Kernel, KernelSet};
use crate::kernels::{
    self, elementwise::BinaryOp, pool::PoolParams, QuantIo, Requant, Shape4, Window,
};
use crate::model::{Model, OpInfo, TensorInfo};

// Transformer operators: on every target but 32-bit Arm (Cortex-M), where
// they would add about 32 KB of code to firmware that runs CNNs; there the
// `transformers` feature brings them in.
#[cfg(any(not(target_arch = "arm"), feature = "transformers"))]
mod sequence;

/// What validation says on a build without the transformer operators.
#[cfg(all(target_arch = "arm", not(feature = "transformers")))]
mod sequence {
    use super::Ctx;
    use crate::error::Result;

    const ABSENT: &str =
        "transformer operators are not in this 32-bit Arm build: enable ember-runtime's `transformers` feature";

    pub(super) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
        Err(c.err(ABSENT))
    }

    pub(super) fn eval<S: crate::kernel_set::KernelSet>(
        c: &Ctx<'_, '_>,
        _ins: &[&[u8]],
        _out: &mut [u8],
        _scratch: &mut [u8],
    ) -> Result<()> {
        Err(c.err(ABSENT))
    }

    pub(super) fn macs(_c: &Ctx<'_, '_>) -> u64 {
        0
    }
}

/// Pattern matching the opcodes registered in [`sequence`].
macro_rules! sequence_ops {
    () => {
        OpCode::MatMul
            | OpCode::Attention
            | OpCode::LayerNorm
            | OpCode::Unary
            | OpCode::Gather
            | OpCode::DynamicFullyConnected
            | OpCode::Reduce
            | OpCode::Cast
            | OpCode::Compare
            | OpCode::Where
            | OpCode::Expand
    };
}

struct Ctx<'m, 'a> {
    model: &'m Model<'a>,
    op: &'m OpInfo<'a>,
}

impl<'a> Ctx<'_, 'a> {
    fn err(&self, reason: &'static str) -> Error {
        Error::BadOp {
            op: self.op.index,
            reason,
        }
    }

    fn input(&self, i: usize) -> Result<TensorInfo<'a>> {
        let t = self.op.input(i).ok_or(self.err("missing input"))?;
        self.model.tensor(t)
    }

    fn opt_input(&self, i: usize) -> Result<Option<TensorInfo<'a>>> {
        match self.op.input(i) {
            Some(t) => Ok(Some(self.model.tensor(t)?)),
            None => Ok(None),
        }
    }

    fn output(&self) -> Result<TensorInfo<'a>> {
        self.model.tensor(self.op.output)
    }

    fn p(&self, i: usize) -> Result<i32> {
        self.op.param(i).ok_or(self.err("missing param"))
    }

    fn pu(&self, i: usize) -> Result<usize> {
        let v = self.p(i)?;
        if v < 0 {
            return Err(self.err("negative param"));
        }
        Ok(v as usize)
    }

    fn pf(&self, i: usize) -> Result<f32> {
        self.op.param_f32(i).ok_or(self.err("missing param"))
    }

    fn need_params(&self, n: usize) -> Result<()> {
        if self.op.n_params() != n {
            return Err(self.err("wrong number of params"));
        }
        Ok(())
    }

    fn need_inputs(&self, lo: usize, hi: usize) -> Result<()> {
        if self.op.n_inputs < lo || self.op.n_inputs > hi {
            return Err(self.err("wrong number of inputs"));
        }
        Ok(())
    }

    fn check(&self, cond: bool, reason: &'static str) -> Result<()> {
        if cond {
            Ok(())
        } else {
            Err(self.err(reason))
        }
    }
}

fn shape4(t: &TensorInfo<'_>) -> Option<Shape4> {
    if t.rank != 4 {
        return None;
    }
    let d = t.dims();
    Some(Shape4::new(d[0], d[1], d[2], d[3]))
}

fn window(c: &Ctx<'_, '_>, base: usize, dilated: bool) -> Result<Window> {
    let w = Window {
        stride_h: c.pu(base)?,
        stride_w: c.pu(base + 1)?,
        dil_h: if dilated { c.pu(base + 2)? } else { 1 },
        dil_w: if dilated { c.pu(base + 3)? } else { 1 },
        pad_top: c.pu(base + if dilated { 4 } else { 2 })?,
        pad_left: c.pu(base + if dilated { 5 } else { 3 })?,
        pad_bottom: c.pu(base + if dilated { 6 } else { 4 })?,
        pad_right: c.pu(base + if dilated { 7 } else { 5 })?,
    };
    Ok(w)
}

fn quant_of(c: &Ctx<'_, '_>, t: &TensorInfo<'_>) -> Result<(f32, i32)> {
    t.quant
        .map(|q| (q.scale, q.zero_point))
        .ok_or(c.err("integer tensor without quantization parameters"))
}

fn is_i8_bound(v: i32) -> bool {
    (-128..=127).contains(&v)
}

/// Checks the int8 activation bounds at params `i`, `i + 1`.
fn check_act_i8(c: &Ctx<'_, '_>, i: usize) -> Result<(i32, i32)> {
    let (lo, hi) = (c.p(i)?, c.p(i + 1)?);
    c.check(
        is_i8_bound(lo) && is_i8_bound(hi) && lo <= hi,
        "activation bounds outside int8 or inverted",
    )?;
    Ok((lo, hi))
}

fn check_act_f32(c: &Ctx<'_, '_>, i: usize) -> Result<(f32, f32)> {
    let (lo, hi) = (c.pf(i)?, c.pf(i + 1)?);
    c.check(
        !lo.is_nan() && !hi.is_nan() && lo <= hi,
        "activation bounds are NaN or inverted",
    )?;
    Ok((lo, hi))
}

fn check_const(
    c: &Ctx<'_, '_>,
    t: &TensorInfo<'_>,
    dtype: DType,
    what: &'static str,
) -> Result<()> {
    c.check(t.storage == Storage::Const && t.dtype == dtype, what)
}

/// Validates a requant tensor against the model's rounding and the number
/// of output channels; returns nothing, `eval` re-derives the view.
fn check_requant(c: &Ctx<'_, '_>, t: &TensorInfo<'_>, channels: usize) -> Result<()> {
    match c.model.rounding() {
        Rounding::TfliteFixedPoint => {
            check_const(
                c,
                t,
                DType::I32,
                "requant must be a constant i32 [C, 2] tensor",
            )?;
            c.check(
                t.rank == 2 && t.dims()[1] == 2 && (t.dims()[0] == 1 || t.dims()[0] == channels),
                "requant must be [1 or C, 2]",
            )?;
            let bytes = c
                .model
                .const_bytes(t)
                .ok_or(c.err("requant out of range"))?;
            let pairs: &[i32] =
                bytemuck::try_cast_slice(bytes).map_err(|_| c.err("requant misaligned"))?;
            for p in pairs.chunks_exact(2) {
                c.check(
                    p[0] >= 0 && (-31..=30).contains(&p[1]),
                    "requant multiplier negative or shift outside [-31, 30]",
                )?;
            }
        }
        Rounding::OnnxFloat => {
            check_const(
                c,
                t,
                DType::F32,
                "requant must be a constant f32 [C] tensor",
            )?;
            c.check(
                t.rank == 1 && (t.dims()[0] == 1 || t.dims()[0] == channels),
                "requant must be [1 or C]",
            )?;
            let bytes = c
                .model
                .const_bytes(t)
                .ok_or(c.err("requant out of range"))?;
            let s: &[f32] =
                bytemuck::try_cast_slice(bytes).map_err(|_| c.err("requant misaligned"))?;
            c.check(
                s.iter().all(|v| v.is_finite() && *v >= 0.0),
                "requant scale not finite",
            )?;
        }
    }
    Ok(())
}

fn requant<'b>(model: &Model<'_>, bytes: &'b [u8]) -> Result<Requant<'b>> {
    Ok(match model.rounding() {
        Rounding::TfliteFixedPoint => Requant::Fixed(cast(bytes)?),
        Rounding::OnnxFloat => Requant::Float(cast(bytes)?),
    })
}

fn cast<T: bytemuck::Pod>(b: &[u8]) -> Result<&[T]> {
    bytemuck::try_cast_slice(b).map_err(|_| Error::ShapeMismatch("misaligned tensor data"))
}

fn cast_mut<T: bytemuck::Pod>(b: &mut [u8]) -> Result<&mut [T]> {
    bytemuck::try_cast_slice_mut(b).map_err(|_| Error::ShapeMismatch("misaligned tensor data"))
}

/// The kernels of `S` that `opcode` may run on (a constant test, so the
/// validation of opcodes `S` leaves out is not linked).
const fn has_opcode<S: KernelSet>(opcode: OpCode) -> bool {
    use Kernel as K;
    S::KERNELS.any(match opcode {
        OpCode::Conv2d => &[
            K::ConvS8,
            K::ConvS8Opt,
            K::ConvS8OptFloat,
            K::ConvF32,
            K::ConvF32Opt,
        ],
        OpCode::DepthwiseConv2d => &[
            K::DepthwiseS8,
            K::DepthwiseS8Opt,
            K::DepthwiseS8OptFloat,
            K::DepthwiseF32,
            K::DepthwiseF32Opt,
        ],
        OpCode::FullyConnected => &[
            K::FullyConnectedS8,
            K::FullyConnectedS8Opt,
            K::FullyConnectedF32,
            K::FullyConnectedF32Opt,
        ],
        OpCode::Add | OpCode::Mul | OpCode::Sub | OpCode::Div => &[
            K::BinaryF32,
            K::AddS8,
            K::AddS8Opt,
            K::MulS8,
            K::BinaryS8Float,
        ],
        OpCode::AvgPool2d | OpCode::MaxPool2d => &[
            K::GlobalAvgPoolS8Opt,
            K::AvgPoolS8,
            K::AvgPoolS8Zp,
            K::MaxPoolS8,
            K::AvgPoolF32,
            K::MaxPoolF32,
        ],
        OpCode::Softmax => &[K::SoftmaxF32, K::SoftmaxS8, K::SoftmaxS8Float],
        OpCode::Transpose => &[K::Transpose],
        OpCode::Copy => &[K::Copy],
        OpCode::Pad => &[K::PadS8, K::PadF32],
        OpCode::Concat => &[K::ConcatS8, K::ConcatF32],
        OpCode::Quantize => &[K::Quantize],
        OpCode::Dequantize => &[K::Dequantize],
        OpCode::Clamp => &[K::ClampS8, K::ClampF32],
        OpCode::MatMul => &[K::MatMul],
        OpCode::Attention => &[K::Attention],
        OpCode::LayerNorm => &[K::LayerNorm],
        OpCode::Unary => &[K::Unary],
        OpCode::Gather => &[K::Gather],
        OpCode::DynamicFullyConnected => &[K::DynamicFullyConnected, K::DynamicFullyConnectedOpt],
        OpCode::Reduce => &[K::Reduce],
        OpCode::Cast => &[K::Cast],
        OpCode::Compare => &[K::Compare],
        OpCode::Where => &[K::Where],
        OpCode::Expand => &[K::Expand],
    })
}

/// The kernel a validated op runs on: the same choice [`eval`] makes.
pub(crate) fn kernel_of(model: &Model<'_>, op: &OpInfo<'_>) -> Result<Kernel> {
    use Kernel as K;
    let c = Ctx { model, op };
    let x = c.input(0)?;
    let int8 = x.dtype == DType::I8;
    let opt = op.variant != variant::REFERENCE;
    let tflite = model.rounding() == Rounding::TfliteFixedPoint;
    // The f32 convolution kernels are not in 32-bit Arm builds (validation
    // refuses their variants there).
    let f32_opt = |v: u16| cfg!(not(target_arch = "arm")) && op.variant == v;
    Ok(match op.opcode {
        OpCode::Conv2d if int8 && !opt => K::ConvS8,
        OpCode::Conv2d if int8 => [K::ConvS8OptFloat, K::ConvS8Opt][tflite as usize],
        OpCode::Conv2d if f32_opt(variant::CONV_F32) => K::ConvF32Opt,
        OpCode::Conv2d => K::ConvF32,
        OpCode::DepthwiseConv2d if int8 && !opt => K::DepthwiseS8,
        OpCode::DepthwiseConv2d if int8 => {
            [K::DepthwiseS8OptFloat, K::DepthwiseS8Opt][tflite as usize]
        }
        OpCode::DepthwiseConv2d if f32_opt(variant::DEPTHWISE_F32) => K::DepthwiseF32Opt,
        OpCode::DepthwiseConv2d => K::DepthwiseF32,
        OpCode::FullyConnected if int8 => {
            [K::FullyConnectedS8, K::FullyConnectedS8Opt][opt as usize]
        }
        OpCode::FullyConnected if f32_opt(variant::FULLY_CONNECTED_F32) => K::FullyConnectedF32Opt,
        OpCode::FullyConnected => K::FullyConnectedF32,
        OpCode::Add | OpCode::Mul | OpCode::Sub | OpCode::Div if x.dtype == DType::F32 => {
            K::BinaryF32
        }
        OpCode::Add if tflite => [K::AddS8, K::AddS8Opt][opt as usize],
        OpCode::Mul if tflite => K::MulS8,
        OpCode::Add | OpCode::Mul | OpCode::Sub | OpCode::Div => K::BinaryS8Float,
        OpCode::AvgPool2d if int8 && opt => K::GlobalAvgPoolS8Opt,
        OpCode::AvgPool2d if int8 => [K::AvgPoolS8Zp, K::AvgPoolS8][tflite as usize],
        OpCode::AvgPool2d => K::AvgPoolF32,
        OpCode::MaxPool2d if int8 => K::MaxPoolS8,
        OpCode::MaxPool2d => K::MaxPoolF32,
        OpCode::Softmax if x.dtype == DType::F32 => K::SoftmaxF32,
        OpCode::Softmax => [K::SoftmaxS8Float, K::SoftmaxS8][tflite as usize],
        OpCode::Transpose => K::Transpose,
        OpCode::Copy => K::Copy,
        OpCode::Pad => [K::PadF32, K::PadS8][int8 as usize],
        OpCode::Concat => [K::ConcatF32, K::ConcatS8][(c.output()?.dtype == DType::I8) as usize],
        OpCode::Quantize => K::Quantize,
        OpCode::Dequantize => K::Dequantize,
        OpCode::Clamp => [K::ClampF32, K::ClampS8][int8 as usize],
        OpCode::MatMul => K::MatMul,
        OpCode::Attention => K::Attention,
        OpCode::LayerNorm => K::LayerNorm,
        OpCode::Unary => K::Unary,
        OpCode::Gather => K::Gather,
        OpCode::DynamicFullyConnected if op.variant == variant::DYNAMIC_FC => {
            K::DynamicFullyConnectedOpt
        }
        OpCode::DynamicFullyConnected => K::DynamicFullyConnected,
        OpCode::Reduce => K::Reduce,
        OpCode::Cast => K::Cast,
        OpCode::Compare => K::Compare,
        OpCode::Where => K::Where,
        OpCode::Expand => K::Expand,
    })
}

/// Validates one op against its kernel's contract, and that `S` has the
/// kernel.
pub(crate) fn validate<S: KernelSet>(model: &Model<'_>, op: &OpInfo<'_>) -> Result<()> {
    let c = Ctx { model, op };
    // Each arm's guard is a constant: the arms of opcodes `S` leaves out,
    // and the validators only they call, are dead code.
    let on = |opcode| has_opcode::<S>(opcode);
    let seq = S::KERNELS.any(Kernel::TRANSFORMER);
    let conv = on(OpCode::Conv2d) || on(OpCode::DepthwiseConv2d);
    match op.opcode {
        sequence_ops!() if seq => sequence::validate(&c),
        OpCode::Conv2d | OpCode::DepthwiseConv2d if conv => validate_conv(&c),
        OpCode::FullyConnected if on(OpCode::FullyConnected) => validate_fc(&c),
        OpCode::Add | OpCode::Mul | OpCode::Sub | OpCode::Div if on(OpCode::Add) => {
            validate_binary(&c)
        }
        OpCode::AvgPool2d | OpCode::MaxPool2d if on(OpCode::AvgPool2d) => validate_pool(&c),
        OpCode::Softmax if on(OpCode::Softmax) => validate_softmax(&c),
        OpCode::Transpose if on(OpCode::Transpose) => validate_transpose(&c),
        OpCode::Copy if on(OpCode::Copy) => {
            c.need_inputs(1, 1)?;
            c.need_params(0)?;
            let (x, y) = (c.input(0)?, c.output()?);
            c.check(
                x.dtype == y.dtype && x.size == y.size,
                "copy changes size or dtype",
            )
        }
        OpCode::Pad if on(OpCode::Pad) => validate_pad(&c),
        OpCode::Concat if on(OpCode::Concat) => validate_concat(&c),
        OpCode::Quantize if on(OpCode::Quantize) => {
            c.need_inputs(1, 1)?;
            c.need_params(0)?;
            let (x, y) = (c.input(0)?, c.output()?);
            c.check(x.dtype == DType::F32, "quantize input must be f32")?;
            c.check(
                matches!(y.dtype, DType::I8 | DType::U8) && y.quant.is_some(),
                "quantize output must be quantized i8/u8",
            )?;
            c.check(x.dims() == y.dims(), "quantize changes the shape")
        }
        OpCode::Dequantize if on(OpCode::Dequantize) => {
            c.need_inputs(1, 1)?;
            c.need_params(0)?;
            let (x, y) = (c.input(0)?, c.output()?);
            c.check(
                matches!(x.dtype, DType::I8 | DType::U8 | DType::I32) && x.quant.is_some(),
                "dequantize input must be quantized",
            )?;
            c.check(y.dtype == DType::F32, "dequantize output must be f32")?;
            c.check(x.dims() == y.dims(), "dequantize changes the shape")
        }
        OpCode::Clamp if on(OpCode::Clamp) => {
            c.need_inputs(1, 1)?;
            c.need_params(2)?;
            let (x, y) = (c.input(0)?, c.output()?);
            c.check(
                x.dtype == y.dtype && x.dims() == y.dims(),
                "clamp changes shape or dtype",
            )?;
            match x.dtype {
                DType::I8 => {
                    check_act_i8(&c, 0)?;
                    c.check(x.quant == y.quant, "int8 clamp changes quantization")
                }
                DType::F32 => check_act_f32(&c, 0).map(|_| ()),
                _ => Err(c.err("clamp supports i8 and f32")),
            }
        }
        // An opcode whose kernels `S` leaves out.
        _ => Err(Error::KernelNotBuilt {
            op: op.index,
            kernel: kernel_of(model, op)?,
        }),
    }?;
    built::<S>(op.index, kernel_of(model, op)?)
}

/// Whether the op names one of the f32 optimized kernels (reference-shaped
/// inputs plus, for convolutions, a scratch).
fn is_f32_variant(op: &OpInfo<'_>) -> bool {
    matches!(
        (op.opcode, op.variant),
        (OpCode::Conv2d, variant::CONV_F32)
            | (OpCode::DepthwiseConv2d, variant::DEPTHWISE_F32)
            | (OpCode::FullyConnected, variant::FULLY_CONNECTED_F32)
    )
}

/// An f32 optimized variant: an f32 op, and the scratch it needs.
fn validate_f32_opt(c: &Ctx<'_, '_>, x: &TensorInfo<'_>, scratch: usize) -> Result<()> {
    // Kept out of Cortex-M builds, where flash is scarce and the compiler
    // never selects them.
    c.check(
        !cfg!(target_arch = "arm"),
        "f32 kernel variants are not in 32-bit Arm builds: compile the model for this target",
    )?;
    c.check(x.dtype == DType::F32, "f32 kernel variant on a non-f32 op")?;
    match c.opt_input(SCRATCH_INPUT)? {
        Some(s) => c.check(
            s.storage == Storage::Arena && s.dtype == DType::I8 && s.size >= scratch,
            "scratch must be an int8 arena tensor of the kernel's scratch size",
        ),
        None => c.check(scratch == 0, "f32 kernel variant without its scratch"),
    }
}

fn validate_conv(c: &Ctx<'_, '_>) -> Result<()> {
    if c.op.variant == variant::REFERENCE {
        c.need_inputs(2, 4)?;
    } else if is_f32_variant(c.op) {
        c.need_inputs(2, SCRATCH_INPUT + 1)?;
    } else {
        c.need_inputs(FOLDED_BIAS_INPUT + 1, PACKED_WEIGHTS_INPUT + 1)?;
    }
    c.need_params(11)?;
    let (x, w, y) = (c.input(0)?, c.input(1)?, c.output()?);
    let xs = shape4(&x).ok_or(c.err("conv input must be 4-D NHWC"))?;
    let ws = shape4(&w).ok_or(c.err("conv filter must be 4-D"))?;
    let ys = shape4(&y).ok_or(c.err("conv output must be 4-D NHWC"))?;
    let win = window(c, 0, true)?;
    let g = c.pu(8)?;
    let co = ys.c;
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
    validate_weights(c, &x, &w, &y, co, 9)?;
    match (c.op.opcode, c.op.variant) {
        (_, variant::REFERENCE) => Ok(()),
        (OpCode::Conv2d, variant::CONV_F32) => {
            c.check(g == 1, "optimized convolution needs one group")?;
            #[cfg(not(target_arch = "arm"))]
            let scratch = kernels::opt::conv_f32::conv2d_f32_opt_scratch_size(ws, &win);
            #[cfg(target_arch = "arm")]
            let scratch = 0;
            validate_f32_opt(c, &x, scratch)
        }
        (OpCode::DepthwiseConv2d, variant::DEPTHWISE_F32) => {
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
                pointwise == (v == variant::CONV_POINTWISE),
                "kernel variant does not fit the convolution's geometry",
            )?;
            validate_opt(
                c,
                &x,
                co,
                kernels::opt::conv::conv2d_s8_opt_scratch_size(ws, &win, false),
            )?;
            validate_packed_weights(c, &w, co, ws.h * ws.w * ws.c)
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
            )
        }
    }
}

/// A convolution's packed filter, when present, must hold exactly the
/// filter's values in one of the two layouts, told apart by the length:
/// [`kernels::opt::pack_weights_s16`]'s (NEON) or
/// [`kernels::opt::pack_weights_dsp`]'s (Cortex-M DSP). Checked element
/// by element: the kernels read only the packed copy.
fn validate_packed_weights(c: &Ctx<'_, '_>, w: &TensorInfo<'_>, co: usize, k: usize) -> Result<()> {
    let Some(t) = c.opt_input(PACKED_WEIGHTS_INPUT)? else {
        return Ok(());
    };
    check_const(c, &t, DType::I16, "packed weights must be constant int16")?;
    let dsp = t.numel() == kernels::opt::dsp_weights_len(co, k);
    c.check(
        dsp || t.numel() == kernels::opt::packed_weights_len(co, k),
        "packed weights length does not fit the filter",
    )?;
    let packed: &[i16] = cast(
        c.model
            .const_bytes(&t)
            .ok_or(c.err("packed weights out of range"))?,
    )?;
    let wd: &[i8] = cast(c.model.const_bytes(w).ok_or(c.err("filter out of range"))?)?;
    let same = if dsp {
        kernels::opt::dsp_weights_match(wd, co, k, packed)
    } else {
        kernels::opt::packed_weights_match(wd, co, k, packed)
    };
    c.check(same, "packed weights differ from the filter")
}

/// What every optimized variant needs: an int8 op, a constant i32 folded
/// bias of `channels` at [`FOLDED_BIAS_INPUT`], and, when the kernel needs
/// `scratch` bytes, an int8 arena tensor at least that large at
/// [`SCRATCH_INPUT`].
fn validate_opt(
    c: &Ctx<'_, '_>,
    x: &TensorInfo<'_>,
    channels: usize,
    scratch: usize,
) -> Result<()> {
    c.check(x.dtype == DType::I8, "optimized variants are int8 only")?;
    let fb = c
        .opt_input(FOLDED_BIAS_INPUT)?
        .ok_or(c.err("optimized variant without a folded bias"))?;
    check_const(c, &fb, DType::I32, "folded bias must be constant int32")?;
    c.check(
        fb.numel() == channels,
        "folded bias length ≠ output channels",
    )?;
    match c.opt_input(SCRATCH_INPUT)? {
        Some(s) => c.check(
            s.storage == Storage::Arena && s.dtype == DType::I8 && s.size >= scratch,
            "scratch must be an int8 arena tensor of the kernel's scratch size",
        )?,
        None => c.check(scratch == 0, "optimized variant without its scratch")?,
    }
    if let Some(t) = c.opt_input(REQUANT_BLOCKS_INPUT)? {
        // The table must say exactly what the [mult, shift] pairs say, so
        // the Helium epilogue computes what the reference would.
        c.check(
            c.op.opcode != OpCode::FullyConnected
                && c.model.rounding() == Rounding::TfliteFixedPoint,
            "blocked requant only for convolutions with TFLite rounding",
        )?;
        check_const(c, &t, DType::I32, "blocked requant must be constant int32")?;
        let rq = c.input(3)?;
        let pairs: &[i32] = cast(
            c.model
                .const_bytes(&rq)
                .ok_or(c.err("requant out of range"))?,
        )?;
        c.check(
            pairs.len() == 2 * channels,
            "blocked requant needs per-channel requant pairs",
        )?;
        let blocks: &[i32] = cast(
            c.model
                .const_bytes(&t)
                .ok_or(c.err("blocked requant out of range"))?,
        )?;
        c.check(
            blocks.len() == channels / 4 * kernels::opt::REQUANT_BLOCK_WORDS,
            "blocked requant length",
        )?;
        let mut want = [0i32; kernels::opt::REQUANT_BLOCK_WORDS];
        for (b, blk) in blocks.chunks_exact(want.len()).enumerate() {
            let p = pairs
                .get(8 * b..8 * b + 8)
                .ok_or(c.err("blocked requant length"))?;
            kernels::opt::requant_blocks(p, 4, &mut want);
            c.check(
                blk == want,
                "blocked requant disagrees with the requant pairs",
            )?;
        }
    }
    Ok(())
}

fn validate_fc(c: &Ctx<'_, '_>) -> Result<()> {
    if c.op.variant == variant::REFERENCE {
        c.need_inputs(2, 4)?;
    } else if is_f32_variant(c.op) {
        c.need_inputs(2, 3)?;
    } else {
        c.need_inputs(FOLDED_BIAS_INPUT + 1, PACKED_WEIGHTS_INPUT + 1)?;
    }
    c.need_params(2)?;
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
    validate_weights(c, &x, &w, &y, n, 0)?;
    if c.op.variant == variant::FULLY_CONNECTED_F32 {
        validate_f32_opt(c, &x, 0)?;
    } else if c.op.variant != variant::REFERENCE {
        c.check(
            quant_of(c, &w)?.1 == 0,
            "optimized fully connected needs weight zero point 0",
        )?;
        validate_opt(c, &x, n, 0)?;
        // Only the DSP layout: the NEON kernels have no packed form here.
        if let Some(t) = c.opt_input(PACKED_WEIGHTS_INPUT)? {
            c.check(
                t.numel() == kernels::opt::dsp_weights_len(n, k),
                "fully connected packed weights must be the DSP layout",
            )?;
            validate_packed_weights(c, &w, n, k)?;
        }
    }
    Ok(())
}

/// The dtype rules shared by ops with weights (convolutions, fully
/// connected): int8 activations need constant int8 weights, an optional
/// constant int32 bias of `channels`, a requant tensor and int8 bounds at
/// param `act`; float ones need f32 weights and bias and f32 bounds.
fn validate_weights(
    c: &Ctx<'_, '_>,
    x: &TensorInfo<'_>,
    w: &TensorInfo<'_>,
    y: &TensorInfo<'_>,
    channels: usize,
    act: usize,
) -> Result<()> {
    match x.dtype {
        DType::I8 => {
            c.check(y.dtype == DType::I8, "int8 input needs an int8 output")?;
            check_const(c, w, DType::I8, "int8 weights must be constant int8")?;
            quant_of(c, x)?;
            quant_of(c, y)?;
            quant_of(c, w)?;
            if let Some(b) = c.opt_input(2)? {
                check_const(c, &b, DType::I32, "int8 bias must be constant int32")?;
                c.check(b.numel() == channels, "bias length ≠ output channels")?;
            }
            let rq = c
                .opt_input(3)?
                .ok_or(c.err("int8 op needs a requant tensor"))?;
            check_requant(c, &rq, channels)?;
            check_act_i8(c, act)?;
        }
        DType::F32 => {
            c.check(
                y.dtype == DType::F32 && w.dtype == DType::F32,
                "float op must be all f32",
            )?;
            if let Some(b) = c.opt_input(2)? {
                c.check(
                    b.dtype == DType::F32 && b.numel() == channels,
                    "float bias must be f32 of the output channels",
                )?;
            }
            c.check(c.op.input(3).is_none(), "float op takes no requant")?;
            check_act_f32(c, act)?;
        }
        _ => return Err(c.err("supports i8 and f32 only")),
    }
    Ok(())
}

/// Checks numpy broadcasting of `a` and `b` to `y`.
fn broadcasts(a: &TensorInfo<'_>, b: &TensorInfo<'_>, y: &TensorInfo<'_>) -> bool {
    if y.rank < a.rank || y.rank < b.rank {
        return false;
    }
    (0..y.rank).all(|i| {
        let (da, db, dy) = (a.dim_from_end(i), b.dim_from_end(i), y.dim_from_end(i));
        (da == dy || da == 1) && (db == dy || db == 1) && (dy == da.max(db))
    })
}

fn validate_binary(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(2, 2)?;
    let (a, b, y) = (c.input(0)?, c.input(1)?, c.output()?);
    if c.op.variant != variant::REFERENCE {
        c.check(
            a.dtype == DType::I8 && c.model.rounding() == Rounding::TfliteFixedPoint,
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
    match a.dtype {
        DType::F32 => {
            c.need_params(2)?;
            check_act_f32(c, 0)?;
        }
        DType::I8 => {
            quant_of(c, &a)?;
            quant_of(c, &b)?;
            quant_of(c, &y)?;
            let fixed = c.model.rounding() == Rounding::TfliteFixedPoint;
            match (c.op.opcode, fixed) {
                (OpCode::Add, true) => {
                    c.need_params(9)?;
                    if c.op.variant != variant::REFERENCE {
                        c.check(
                            a.dims() == y.dims() && b.dims() == y.dims(),
                            "optimized add needs operands of the output's shape",
                        )?;
                    }
                    c.check(
                        (0..=20).contains(&c.p(2)?),
                        "add left shift outside [0, 20]",
                    )?;
                    for i in [3, 5, 7] {
                        c.check(
                            c.p(i)? >= 0 && (-31..=30).contains(&c.p(i + 1)?),
                            "add multiplier/shift out of range",
                        )?;
                    }
                }
                (OpCode::Mul, true) => {
                    c.need_params(4)?;
                    c.check(
                        c.p(2)? >= 0 && (-31..=30).contains(&c.p(3)?),
                        "mul multiplier/shift out of range",
                    )?;
                }
                (OpCode::Add, false) => c.need_params(2)?,
                _ => return Err(c.err("int8 supports Add and Mul (TFLite) or Add (ONNX)")),
            }
            check_act_i8(c, 0)?;
        }
        _ => return Err(c.err("binary ops support i8 and f32")),
    }
    Ok(())
}

fn validate_pool(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    c.need_params(11)?;
    let (x, y) = (c.input(0)?, c.output()?);
    let xs = shape4(&x).ok_or(c.err("pool input must be 4-D NHWC"))?;
    let ys = shape4(&y).ok_or(c.err("pool output must be 4-D NHWC"))?;
    let (kh, kw) = (c.pu(0)?, c.pu(1)?);
    let win = window(c, 2, false)?;
    c.check(
        c.p(8)? == 0 || c.p(8)? == 1,
        "count_include_pad must be 0 or 1",
    )?;
    c.check(
        xs.n == ys.n && xs.c == ys.c,
        "pool changes batch or channels",
    )?;
    c.check(
        win.out_hw(xs.h, xs.w, kh, kw) == Some((ys.h, ys.w)),
        "output size does not match the window",
    )?;
    c.check(x.dtype == y.dtype, "pool changes dtype")?;
    if c.op.variant != variant::REFERENCE {
        c.check(
            x.dtype == DType::I8
                && kh == xs.h
                && kw == xs.w
                && ys.h == 1
                && ys.w == 1
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
            check_act_i8(c, 9)?;
        }
        DType::F32 => {
            check_act_f32(c, 9)?;
        }
        _ => return Err(c.err("pooling supports i8 and f32")),
    }
    Ok(())
}

fn validate_softmax(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.check(
        x.dims() == y.dims() && x.rank >= 1,
        "softmax changes the shape",
    )?;
    let beta = c.pf(0)?;
    c.check(
        beta.is_finite() && beta > 0.0,
        "softmax beta must be positive",
    )?;
    match x.dtype {
        DType::F32 => {
            c.need_params(1)?;
            c.check(y.dtype == DType::F32, "float softmax must output f32")
        }
        DType::I8 => {
            quant_of(c, &x)?;
            let (s, zp) = quant_of(c, &y)?;
            c.check(y.dtype == DType::I8, "int8 softmax must output int8")?;
            if c.model.rounding() == Rounding::TfliteFixedPoint {
                c.need_params(4)?;
                c.check(
                    s == 1.0 / 256.0 && zp == -128,
                    "int8 softmax output must be scale 1/256, zero point -128",
                )?;
                c.check(
                    c.p(1)? >= 0 && c.p(1)? <= 31,
                    "softmax left shift out of range",
                )?;
                c.check(c.p(2)? <= 0, "softmax diff_min must be non-positive")?;
                c.check(c.p(3)? >= 0, "softmax multiplier must be non-negative")
            } else {
                c.need_params(1)
            }
        }
        _ => Err(c.err("softmax supports i8 and f32")),
    }
}

fn validate_transpose(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.need_params(x.rank)?;
    c.check(
        x.dtype == y.dtype && x.rank == y.rank,
        "transpose changes dtype or rank",
    )?;
    let mut seen = [false; MAX_RANK];
    for i in 0..x.rank {
        let p = c.pu(i)?;
        c.check(p < x.rank && !seen[p], "perm is not a permutation")?;
        seen[p] = true;
        c.check(
            y.dims()[i] == x.dims()[p],
            "output dims are not the permuted input dims",
        )?;
    }
    Ok(())
}

fn validate_pad(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, 1)?;
    let (x, y) = (c.input(0)?, c.output()?);
    c.need_params(2 * x.rank + 1)?;
    c.check(
        x.dtype == y.dtype && x.rank == y.rank,
        "pad changes dtype or rank",
    )?;
    c.check(x.quant == y.quant, "pad changes quantization")?;
    for i in 0..x.rank {
        let (b, a) = (c.pu(i)?, c.pu(x.rank + i)?);
        c.check(
            x.dims()[i].checked_add(b).and_then(|v| v.checked_add(a)) == Some(y.dims()[i]),
            "output dims ≠ input dims + pads",
        )?;
    }
    if x.dtype == DType::I8 {
        c.check(is_i8_bound(c.p(2 * x.rank)?), "int8 pad value out of range")?;
    }
    c.check(
        matches!(x.dtype, DType::I8 | DType::F32),
        "pad supports i8 and f32",
    )
}

fn validate_concat(c: &Ctx<'_, '_>) -> Result<()> {
    c.need_inputs(1, crate::format::MAX_OP_INPUTS)?;
    c.need_params(1)?;
    let y = c.output()?;
    let axis = c.pu(0)?;
    c.check(axis < y.rank, "concat axis out of range")?;
    let mut total = 0usize;
    for i in 0..c.op.n_inputs {
        let x = c.input(i)?;
        c.check(
            x.dtype == y.dtype && x.rank == y.rank,
            "concat input dtype/rank differs",
        )?;
        c.check(x.quant == y.quant, "concat inputs must share quantization")?;
        for d in 0..y.rank {
            if d != axis {
                c.check(
                    x.dims()[d] == y.dims()[d],
                    "concat input dims differ off-axis",
                )?;
            }
        }
        total = total.checked_add(x.dims()[axis]).ok_or(c.err("overflow"))?;
    }
    c.check(
        total == y.dims()[axis],
        "concat output extent ≠ sum of inputs",
    )?;
    c.check(
        matches!(y.dtype, DType::I8 | DType::F32),
        "concat supports i8 and f32",
    )
}

/// Runs one validated op.
///
/// Every kernel call is behind [`built`] for its [`Kernel`] (the one
/// [`kernel_of`] names): a constant test, so the kernels `S` leaves out are
/// not linked.
pub(crate) fn eval<S: KernelSet>(model: &Model<'_>, op: &OpInfo<'_>, io: OpIo<'_>) -> Result<()> {
    let c = Ctx { model, op };
    let need = |k: Kernel| {
        debug_assert_eq!(kernel_of(model, op), Ok(k), "kernel_of and eval disagree");
        built::<S>(op.index, k)
    };
    let OpIo { ins, out, scratch } = io;
    let x = c.input(0)?;
    let y = c.output()?;
    match op.opcode {
        sequence_ops!() => sequence::eval::<S>(&c, &ins, out, scratch),
        OpCode::Conv2d | OpCode::DepthwiseConv2d => {
            let w = c.input(1)?;
            let (xs, ws, ys) = (
                shape4(&x).ok_or(c.err("shape"))?,
                shape4(&w).ok_or(c.err("shape"))?,
                shape4(&y).ok_or(c.err("shape"))?,
            );
            let win = window(&c, 0, true)?;
            let g = c.pu(8)?;
            let has_bias = op.input(2).is_some();
            let dw = op.opcode == OpCode::DepthwiseConv2d;
            if x.dtype == DType::I8 {
                let q = QuantIo {
                    in_zp: quant_of(&c, &x)?.1,
                    out_zp: quant_of(&c, &y)?.1,
                    act_min: c.p(9)?,
                    act_max: c.p(10)?,
                };
                let bias = if has_bias {
                    Some(cast::<i32>(ins[2])?)
                } else {
                    None
                };
                let mut rq = requant(model, ins[3])?;
                if let (Requant::Fixed(pairs), Some(_)) = (rq, op.input(REQUANT_BLOCKS_INPUT)) {
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
                if op.variant != variant::REFERENCE {
                    let fb = cast::<i32>(ins[FOLDED_BIAS_INPUT])?;
                    let scratch = cast_mut::<i8>(scratch)?;
                    let tflite = model.rounding() == Rounding::TfliteFixedPoint;
                    if dw {
                        need(
                            [Kernel::DepthwiseS8OptFloat, Kernel::DepthwiseS8Opt][tflite as usize],
                        )?;
                        kernels::opt::depthwise_conv::depthwise_conv2d_s8_opt_for::<S>(
                            xd, xs, wd, ws, fb, rq, q, &win, scratch, yd, ys,
                        )
                    } else {
                        let packed = match op.input(PACKED_WEIGHTS_INPUT) {
                            Some(_) => cast::<i16>(ins[PACKED_WEIGHTS_INPUT])?,
                            None => &[],
                        };
                        need([Kernel::ConvS8OptFloat, Kernel::ConvS8Opt][tflite as usize])?;
                        kernels::opt::conv::conv2d_s8_opt_for::<S>(
                            xd, xs, wd, ws, packed, fb, rq, q, &win, scratch, yd, ys,
                        )
                    }
                } else if dw {
                    need(Kernel::DepthwiseS8)?;
                    kernels::depthwise_conv::depthwise_conv2d_s8(
                        xd, xs, wd, ws, bias, rq, q, &win, g, yd, ys,
                    )
                } else {
                    need(Kernel::ConvS8)?;
                    kernels::conv::conv2d_s8(xd, xs, wd, ws, bias, rq, q, &win, g, yd, ys)
                }
            } else {
                let bias = if has_bias {
                    Some(cast::<f32>(ins[2])?)
                } else {
                    None
                };
                let (lo, hi) = (c.pf(9)?, c.pf(10)?);
                let (xd, wd, yd) = (
                    cast::<f32>(ins[0])?,
                    cast::<f32>(ins[1])?,
                    cast_mut::<f32>(out)?,
                );
                // Not in 32-bit Arm builds (validation refuses them there).
                #[cfg(not(target_arch = "arm"))]
                if op.variant == variant::DEPTHWISE_F32 {
                    need(Kernel::DepthwiseF32Opt)?;
                    return kernels::opt::depthwise_conv_f32::depthwise_conv2d_f32_opt(
                        xd, xs, wd, ws, bias, &win, lo, hi, yd, ys,
                    );
                } else if op.variant == variant::CONV_F32 {
                    need(Kernel::ConvF32Opt)?;
                    return kernels::opt::conv_f32::conv2d_f32_opt(
                        xd, xs, wd, ws, bias, &win, lo, hi, scratch, yd, ys,
                    );
                }
                #[cfg(target_arch = "arm")]
                let _ = scratch;
                if dw {
                    need(Kernel::DepthwiseF32)?;
                    kernels::depthwise_conv::depthwise_conv2d_f32(
                        xd, xs, wd, ws, bias, &win, g, lo, hi, yd, ys,
                    )
                } else {
                    need(Kernel::ConvF32)?;
                    kernels::conv::conv2d_f32(xd, xs, wd, ws, bias, &win, g, lo, hi, yd, ys)
                }
            }
        }
        OpCode::FullyConnected => {
            let w = c.input(1)?;
            let (n, k) = (w.dims()[0], w.dims()[1]);
            let rows = x.numel() / k.max(1);
            let has_bias = op.input(2).is_some();
            if x.dtype == DType::I8 {
                let q = QuantIo {
                    in_zp: quant_of(&c, &x)?.1,
                    out_zp: quant_of(&c, &y)?.1,
                    act_min: c.p(0)?,
                    act_max: c.p(1)?,
                };
                let w_zp = quant_of(&c, &w)?.1;
                let bias = if has_bias {
                    Some(cast::<i32>(ins[2])?)
                } else {
                    None
                };
                let rq = match requant(model, ins[3])? {
                    Requant::Fixed(p) => Requant::FixedSingle(p),
                    other => other,
                };
                if op.variant != variant::REFERENCE {
                    need(Kernel::FullyConnectedS8Opt)?;
                    // TFLite's one multiplier comes as `FixedSingle`: the
                    // per-channel fixed-point epilogue is never needed.
                    let packed = match op.input(PACKED_WEIGHTS_INPUT) {
                        Some(_) => cast::<i16>(ins[PACKED_WEIGHTS_INPUT])?,
                        None => &[],
                    };
                    return kernels::opt::fully_connected::fully_connected_s8_opt_for::<false>(
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
                    );
                }
                need(Kernel::FullyConnectedS8)?;
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
            } else {
                let bias = if has_bias {
                    Some(cast::<f32>(ins[2])?)
                } else {
                    None
                };
                #[cfg(not(target_arch = "arm"))]
                if op.variant == variant::FULLY_CONNECTED_F32 {
                    need(Kernel::FullyConnectedF32Opt)?;
                    return kernels::opt::conv_f32::fully_connected_f32_opt(
                        cast(ins[0])?,
                        rows,
                        k,
                        cast(ins[1])?,
                        n,
                        bias,
                        c.pf(0)?,
                        c.pf(1)?,
                        cast_mut(out)?,
                    );
                }
                need(Kernel::FullyConnectedF32)?;
                kernels::fully_connected::fully_connected_f32(
                    cast(ins[0])?,
                    rows,
                    k,
                    cast(ins[1])?,
                    n,
                    bias,
                    c.pf(0)?,
                    c.pf(1)?,
                    cast_mut(out)?,
                )
            }
        }
        OpCode::Add | OpCode::Mul | OpCode::Sub | OpCode::Div => {
            let b = c.input(1)?;
            if x.dtype == DType::F32 {
                let bop = match op.opcode {
                    OpCode::Add => BinaryOp::Add,
                    OpCode::Sub => BinaryOp::Sub,
                    OpCode::Mul => BinaryOp::Mul,
                    _ => BinaryOp::Div,
                };
                need(Kernel::BinaryF32)?;
                return kernels::elementwise::binary_f32(
                    bop,
                    cast(ins[0])?,
                    x.dims(),
                    cast(ins[1])?,
                    b.dims(),
                    c.pf(0)?,
                    c.pf(1)?,
                    cast_mut(out)?,
                    y.dims(),
                );
            }
            let (sa, za) = quant_of(&c, &x)?;
            let (sb, zb) = quant_of(&c, &b)?;
            let (sy, zy) = quant_of(&c, &y)?;
            let (lo, hi) = (c.p(0)?, c.p(1)?);
            match (op.opcode, model.rounding()) {
                (OpCode::Add, Rounding::TfliteFixedPoint) => {
                    let p = kernels::elementwise::AddParamsS8 {
                        a_zp: za,
                        b_zp: zb,
                        out_zp: zy,
                        left_shift: c.p(2)?,
                        a_mult: c.p(3)?,
                        a_shift: c.p(4)?,
                        b_mult: c.p(5)?,
                        b_shift: c.p(6)?,
                        out_mult: c.p(7)?,
                        out_shift: c.p(8)?,
                        act_min: lo,
                        act_max: hi,
                    };
                    if op.variant != variant::REFERENCE {
                        need(Kernel::AddS8Opt)?;
                        return kernels::opt::elementwise::add_s8_opt(
                            cast(ins[0])?,
                            cast(ins[1])?,
                            &p,
                            cast_mut(out)?,
                        );
                    }
                    need(Kernel::AddS8)?;
                    kernels::elementwise::add_s8(
                        cast(ins[0])?,
                        x.dims(),
                        cast(ins[1])?,
                        b.dims(),
                        &p,
                        cast_mut(out)?,
                        y.dims(),
                    )
                }
                (OpCode::Mul, Rounding::TfliteFixedPoint) => {
                    let p = kernels::elementwise::MulParamsS8 {
                        a_zp: za,
                        b_zp: zb,
                        out_zp: zy,
                        out_mult: c.p(2)?,
                        out_shift: c.p(3)?,
                        act_min: lo,
                        act_max: hi,
                    };
                    need(Kernel::MulS8)?;
                    kernels::elementwise::mul_s8(
                        cast(ins[0])?,
                        x.dims(),
                        cast(ins[1])?,
                        b.dims(),
                        &p,
                        cast_mut(out)?,
                        y.dims(),
                    )
                }
                _ => {
                    need(Kernel::BinaryS8Float)?;
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
            }
        }
        OpCode::AvgPool2d | OpCode::MaxPool2d => {
            let xs = shape4(&x).ok_or(c.err("shape"))?;
            let ys = shape4(&y).ok_or(c.err("shape"))?;
            let p = PoolParams {
                kh: c.pu(0)?,
                kw: c.pu(1)?,
                win: window(&c, 2, false)?,
                count_include_pad: c.p(8)? == 1,
            };
            let avg = op.opcode == OpCode::AvgPool2d;
            if x.dtype == DType::I8 {
                let (lo, hi) = (c.p(9)?, c.p(10)?);
                let (xd, yd) = (cast::<i8>(ins[0])?, cast_mut::<i8>(out)?);
                if avg && op.variant != variant::REFERENCE {
                    need(Kernel::GlobalAvgPoolS8Opt)?;
                    let (half_even, zp) = match model.rounding() {
                        Rounding::OnnxFloat => (true, quant_of(&c, &x)?.1),
                        Rounding::TfliteFixedPoint => (false, 0),
                    };
                    kernels::opt::pool::global_avg_pool_s8_opt(
                        xd, xs, half_even, zp, lo, hi, yd, ys,
                    )
                } else if avg {
                    if model.rounding() == Rounding::OnnxFloat {
                        // onnxruntime rounds around the zero point.
                        let zp = quant_of(&c, &x)?.1;
                        need(Kernel::AvgPoolS8Zp)?;
                        kernels::pool::avg_pool_s8_zp(xd, xs, &p, true, zp, lo, hi, yd, ys)
                    } else {
                        need(Kernel::AvgPoolS8)?;
                        kernels::pool::avg_pool_s8(xd, xs, &p, false, lo, hi, yd, ys)
                    }
                } else {
                    need(Kernel::MaxPoolS8)?;
                    kernels::pool::max_pool_s8(xd, xs, &p, lo, hi, yd, ys)
                }
            } else {
                let (lo, hi) = (c.pf(9)?, c.pf(10)?);
                let (xd, yd) = (cast::<f32>(ins[0])?, cast_mut::<f32>(out)?);
                if avg {
                    need(Kernel::AvgPoolF32)?;
                    kernels::pool::avg_pool_f32(xd, xs, &p, lo, hi, yd, ys)
                } else {
                    need(Kernel::MaxPoolF32)?;
                    kernels::pool::max_pool_f32(xd, xs, &p, lo, hi, yd, ys)
                }
            }
        }
        OpCode::Softmax => {
            let depth = x.dim_from_end(0);
            let rows = x.numel() / depth.max(1);
            let beta = c.pf(0)?;
            match (x.dtype, model.rounding()) {
                (DType::F32, _) => {
                    need(Kernel::SoftmaxF32)?;
                    kernels::softmax::softmax_f32(cast(ins[0])?, rows, depth, beta, cast_mut(out)?)
                }
                (_, Rounding::TfliteFixedPoint) => {
                    need(Kernel::SoftmaxS8)?;
                    kernels::softmax::softmax_s8(
                        cast(ins[0])?,
                        rows,
                        depth,
                        c.p(3)?,
                        c.p(1)?,
                        c.p(2)?,
                        cast_mut(out)?,
                    )
                }
                (_, Rounding::OnnxFloat) => {
                    need(Kernel::SoftmaxS8Float)?;
                    let (sx, zx) = quant_of(&c, &x)?;
                    let (sy, zy) = quant_of(&c, &y)?;
                    kernels::softmax::softmax_s8_float(
                        cast(ins[0])?,
                        rows,
                        depth,
                        sx,
                        zx,
                        beta,
                        sy,
                        zy,
                        cast_mut(out)?,
                    )
                }
            }
        }
        OpCode::Transpose => {
            let mut perm = [0usize; MAX_RANK];
            for (i, p) in perm.iter_mut().enumerate().take(x.rank) {
                *p = c.pu(i)?;
            }
            let perm = &perm[..x.rank];
            need(Kernel::Transpose)?;
            match x.dtype.size() {
                1 => kernels::transpose::transpose::<u8>(ins[0], x.dims(), perm, out),
                _ => kernels::transpose::transpose::<u32>(
                    cast(ins[0])?,
                    x.dims(),
                    perm,
                    cast_mut(out)?,
                ),
            }
        }
        OpCode::Copy => {
            need(Kernel::Copy)?;
            if ins[0].len() != out.len() {
                return Err(Error::ShapeMismatch("copy"));
            }
            out.copy_from_slice(ins[0]);
            Ok(())
        }
        OpCode::Pad => {
            let r = x.rank;
            let mut before = [0usize; MAX_RANK];
            let mut after = [0usize; MAX_RANK];
            for i in 0..r {
                before[i] = c.pu(i)?;
                after[i] = c.pu(r + i)?;
            }
            if x.dtype == DType::I8 {
                let v = c.p(2 * r)? as i8;
                need(Kernel::PadS8)?;
                kernels::pad::pad::<i8>(
                    cast(ins[0])?,
                    x.dims(),
                    &before[..r],
                    &after[..r],
                    v,
                    cast_mut(out)?,
                )
            } else {
                let v = c.pf(2 * r)?;
                need(Kernel::PadF32)?;
                kernels::pad::pad::<f32>(
                    cast(ins[0])?,
                    x.dims(),
                    &before[..r],
                    &after[..r],
                    v,
                    cast_mut(out)?,
                )
            }
        }
        OpCode::Concat => {
            let n = op.n_inputs;
            let mut infos = [x; crate::format::MAX_OP_INPUTS];
            for (i, info) in infos.iter_mut().enumerate().take(n) {
                *info = c.input(i)?;
            }
            let mut dims: [&[usize]; crate::format::MAX_OP_INPUTS] =
                [&[]; crate::format::MAX_OP_INPUTS];
            for i in 0..n {
                dims[i] = infos[i].dims();
            }
            let axis = c.pu(0)?;
            if y.dtype == DType::I8 {
                let mut d: [&[i8]; crate::format::MAX_OP_INPUTS] =
                    [&[]; crate::format::MAX_OP_INPUTS];
                for i in 0..n {
                    d[i] = cast(ins[i])?;
                }
                need(Kernel::ConcatS8)?;
                kernels::concat::concat::<i8>(&d[..n], &dims[..n], axis, cast_mut(out)?, y.dims())
            } else {
                let mut d: [&[f32]; crate::format::MAX_OP_INPUTS] =
                    [&[]; crate::format::MAX_OP_INPUTS];
                for i in 0..n {
                    d[i] = cast(ins[i])?;
                }
                need(Kernel::ConcatF32)?;
                kernels::concat::concat::<f32>(&d[..n], &dims[..n], axis, cast_mut(out)?, y.dims())
            }
        }
        OpCode::Quantize => {
            let (s, zp) = quant_of(&c, &y)?;
            need(Kernel::Quantize)?;
            match y.dtype {
                DType::I8 => {
                    kernels::quantize::quantize_f32_s8(cast(ins[0])?, s, zp, cast_mut(out)?)
                }
                _ => kernels::quantize::quantize_f32_u8(cast(ins[0])?, s, zp, out),
            }
        }
        OpCode::Dequantize => {
            let (s, zp) = quant_of(&c, &x)?;
            let yd = cast_mut::<f32>(out)?;
            need(Kernel::Dequantize)?;
            match x.dtype {
                DType::I8 => kernels::quantize::dequantize_s8_f32(cast(ins[0])?, s, zp, yd),
                DType::U8 => kernels::quantize::dequantize_u8_f32(ins[0], s, zp, yd),
                _ => kernels::quantize::dequantize_i32_f32(cast(ins[0])?, s, zp, yd),
            }
        }
        OpCode::Clamp => {
            if x.dtype == DType::I8 {
                need(Kernel::ClampS8)?;
                kernels::clamp::clamp_s8(cast(ins[0])?, c.p(0)?, c.p(1)?, cast_mut(out)?)
            } else {
                need(Kernel::ClampF32)?;
                kernels::clamp::clamp_f32(cast(ins[0])?, c.pf(0)?, c.pf(1)?, cast_mut(out)?)
            }
        }
    }
}

/// Multiply-accumulates (or element operations, for element-wise ops) of a
/// validated op.
pub(crate) fn macs(model: &Model<'_>, op: &OpInfo<'_>) -> u64 {
    let c = Ctx { model, op };
    let (Ok(y), Ok(x)) = (c.output(), c.input(0)) else {
        return 0;
    };
    // u64 saturating arithmetic: usize is 32 bits on the MCU targets.
    let prod = |v: &[usize]| v.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64));
    let yn = prod(y.dims());
    match op.opcode {
        sequence_ops!() => sequence::macs(&c),
        OpCode::Conv2d | OpCode::DepthwiseConv2d => match c.input(1) {
            // Per output: Kh·Kw taps × (Ci/groups channels, or 1 for depthwise).
            Ok(w) if w.rank == 4 => {
                let taps = prod(&w.dims()[1..3]);
                let ci = if op.opcode == OpCode::Conv2d {
                    w.dims()[3] as u64
                } else {
                    1
                };
                yn.saturating_mul(taps).saturating_mul(ci)
            }
            _ => 0,
        },
        OpCode::FullyConnected => yn.saturating_mul(x.dim_from_end(0) as u64),
        OpCode::AvgPool2d | OpCode::MaxPool2d => {
            let k = (c.pu(0).unwrap_or(0) as u64).saturating_mul(c.pu(1).unwrap_or(0) as u64);
            yn.saturating_mul(k)
        }
        OpCode::Add | OpCode::Mul | OpCode::Sub | OpCode::Div | OpCode::Softmax => yn,
        _ => 0,
    }
}
