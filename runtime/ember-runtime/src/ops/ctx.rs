//! What every operator module validates and evaluates with: the op and its
//! model ([`Ctx`]), typed access to its tensors and params, and the checks
//! several operators share.

use crate::error::{Error, Result};
use crate::format::{DType, Rounding, Storage};
use crate::kernels::{Requant, Shape4};
use crate::model::{Model, OpInfo, TensorInfo};

use super::params::{Bounds, ParamReader, Params};

/// One op of a loaded model, with the model it belongs to.
pub(crate) struct Ctx<'m, 'a> {
    pub model: &'m Model<'a>,
    pub op: &'m OpInfo<'a>,
}

impl<'a> Ctx<'_, 'a> {
    /// A validation error about this op.
    pub fn err(&self, reason: &'static str) -> Error {
        Error::BadOp {
            op: self.op.index,
            reason,
        }
    }

    /// Input `i`, which must be present.
    pub fn input(&self, i: usize) -> Result<TensorInfo<'a>> {
        let t = self.op.input(i).ok_or(self.err("missing input"))?;
        self.model.tensor(t)
    }

    /// Input `i`, if present.
    pub fn opt_input(&self, i: usize) -> Result<Option<TensorInfo<'a>>> {
        match self.op.input(i) {
            Some(t) => Ok(Some(self.model.tensor(t)?)),
            None => Ok(None),
        }
    }

    /// The element type of input `i`, which must be present (cheaper than
    /// [`Self::input`]: the kernel choice runs before every op).
    pub fn input_dtype(&self, i: usize) -> Result<DType> {
        let t = self.op.input(i).ok_or(self.err("missing input"))?;
        self.model.tensor_dtype(t)
    }

    /// The element type of the output.
    pub fn output_dtype(&self) -> Result<DType> {
        self.model.tensor_dtype(self.op.output)
    }

    /// The output.
    pub fn output(&self) -> Result<TensorInfo<'a>> {
        self.model.tensor(self.op.output)
    }

    /// The op's params, decoded as `P` (every word read, each in range).
    pub fn params<P: Params>(&self) -> Result<P> {
        let mut r = ParamReader::le_bytes(self.op.param_bytes());
        let p = P::decode(&mut r).map_err(|e| self.err(e))?;
        r.finish().map_err(|e| self.err(e))?;
        Ok(p)
    }

    /// Whether the model requantizes as TFLite does.
    pub fn tflite(&self) -> bool {
        self.model.rounding() == Rounding::TfliteFixedPoint
    }

    /// `Err` unless the op has between `lo` and `hi` input slots.
    pub fn need_inputs(&self, lo: usize, hi: usize) -> Result<()> {
        if self.op.n_inputs < lo || self.op.n_inputs > hi {
            return Err(self.err("wrong number of inputs"));
        }
        Ok(())
    }

    /// `Err(reason)` unless `cond`.
    pub fn check(&self, cond: bool, reason: &'static str) -> Result<()> {
        if cond {
            Ok(())
        } else {
            Err(self.err(reason))
        }
    }

    /// A tensor's (scale, zero point), which an integer tensor must have.
    pub fn quant_of(&self, t: &TensorInfo<'_>) -> Result<(f32, i32)> {
        t.quant
            .map(|q| (q.scale, q.zero_point))
            .ok_or(self.err("integer tensor without quantization parameters"))
    }

    /// `Err(what)` unless `t` is a constant of `dtype`.
    pub fn check_const(&self, t: &TensorInfo<'_>, dtype: DType, what: &'static str) -> Result<()> {
        self.check(t.storage == Storage::Const && t.dtype == dtype, what)
    }

    /// Int8 activation bounds, in range and ordered.
    pub fn check_act_i8(&self, b: Bounds) -> Result<()> {
        self.check(b.valid_i8(), "activation bounds outside int8 or inverted")
    }

    /// Float activation bounds, not NaN and ordered.
    pub fn check_act_f32(&self, b: Bounds) -> Result<()> {
        self.check(b.valid_f32(), "activation bounds are NaN or inverted")
    }

    /// `Err` unless input [`SCRATCH_INPUT`](crate::format::SCRATCH_INPUT)
    /// is an int8 arena tensor of at least `bytes` (or absent when the
    /// kernel needs none and `optional`).
    pub fn check_scratch(&self, bytes: usize, optional: bool, missing: &'static str) -> Result<()> {
        match self.opt_input(crate::format::SCRATCH_INPUT)? {
            Some(s) => self.check(
                s.storage == Storage::Arena && s.dtype == DType::I8 && s.size >= bytes,
                "scratch must be an int8 arena tensor of the kernel's scratch size",
            ),
            None => self.check(optional && bytes == 0, missing),
        }
    }

    /// A constant tensor's bytes.
    pub fn const_bytes(&self, t: &TensorInfo<'_>, what: &'static str) -> Result<&'a [u8]> {
        self.model.const_bytes(t).ok_or(self.err(what))
    }

    /// A constant f32 tensor of `len` elements.
    pub fn const_f32_vec(
        &self,
        t: &TensorInfo<'_>,
        len: usize,
        what: &'static str,
    ) -> Result<&'a [f32]> {
        self.check_const(t, DType::F32, what)?;
        self.check(t.numel() == len, what)?;
        cast(self.const_bytes(t, what)?)
    }

    /// Validates a requant tensor against the model's rounding and the
    /// number of output channels.
    pub fn check_requant(&self, t: &TensorInfo<'_>, channels: usize) -> Result<()> {
        if self.tflite() {
            self.check_const(
                t,
                DType::I32,
                "requant must be a constant i32 [C, 2] tensor",
            )?;
            self.check(
                t.rank == 2 && t.dims()[1] == 2 && (t.dims()[0] == 1 || t.dims()[0] == channels),
                "requant must be [1 or C, 2]",
            )?;
            let pairs: &[i32] =
                bytemuck::try_cast_slice(self.const_bytes(t, "requant out of range")?)
                    .map_err(|_| self.err("requant misaligned"))?;
            for p in pairs.chunks_exact(2) {
                self.check(
                    p[0] >= 0 && (-31..=30).contains(&p[1]),
                    "requant multiplier negative or shift outside [-31, 30]",
                )?;
            }
        } else {
            self.check_const(t, DType::F32, "requant must be a constant f32 [C] tensor")?;
            self.check(
                t.rank == 1 && (t.dims()[0] == 1 || t.dims()[0] == channels),
                "requant must be [1 or C]",
            )?;
            let s: &[f32] = bytemuck::try_cast_slice(self.const_bytes(t, "requant out of range")?)
                .map_err(|_| self.err("requant misaligned"))?;
            self.check(
                s.iter().all(|v| v.is_finite() && *v >= 0.0),
                "requant scale not finite",
            )?;
        }
        Ok(())
    }

    /// The requantization a validated requant tensor's bytes hold.
    pub fn requant<'b>(&self, bytes: &'b [u8]) -> Result<Requant<'b>> {
        Ok(if self.tflite() {
            Requant::Fixed(cast(bytes)?)
        } else {
            Requant::Float(cast(bytes)?)
        })
    }
}

/// The data of a tensor as `T` (alignment checked).
pub(crate) fn cast<T: bytemuck::Pod>(b: &[u8]) -> Result<&[T]> {
    bytemuck::try_cast_slice(b).map_err(|_| Error::ShapeMismatch("misaligned tensor data"))
}

/// The data of a tensor as mutable `T` (alignment checked).
pub(crate) fn cast_mut<T: bytemuck::Pod>(b: &mut [u8]) -> Result<&mut [T]> {
    bytemuck::try_cast_slice_mut(b).map_err(|_| Error::ShapeMismatch("misaligned tensor data"))
}

/// An optional input's data as `T` (`None` when the slot is empty).
pub(crate) fn opt_cast<'b, T: bytemuck::Pod>(
    c: &Ctx<'_, '_>,
    ins: &[&'b [u8]],
    i: usize,
) -> Result<Option<&'b [T]>> {
    match c.op.input(i) {
        Some(_) => Ok(Some(cast(ins.get(i).copied().unwrap_or(&[]))?)),
        None => Ok(None),
    }
}

/// A rank-4 tensor's shape.
pub(crate) fn shape4(t: &TensorInfo<'_>) -> Option<Shape4> {
    if t.rank != 4 {
        return None;
    }
    let d = t.dims();
    Some(Shape4::new(d[0], d[1], d[2], d[3]))
}

/// Product of dims as u64, saturating (usize is 32 bits on the MCUs).
pub(crate) fn prod(v: &[usize]) -> u64 {
    v.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64))
}

/// Whether `a` and `b` broadcast (numpy rules) to exactly `y`.
pub(crate) fn broadcasts(a: &TensorInfo<'_>, b: &TensorInfo<'_>, y: &TensorInfo<'_>) -> bool {
    if y.rank < a.rank || y.rank < b.rank {
        return false;
    }
    (0..y.rank).all(|i| {
        let (da, db, dy) = (a.dim_from_end(i), b.dim_from_end(i), y.dim_from_end(i));
        (da == dy || da == 1) && (db == dy || db == 1) && (dy == da.max(db))
    })
}
