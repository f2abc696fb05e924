//! Runs a validated model in a caller-provided arena.

use crate::error::{Error, Result};
use crate::format::{DType, OpCode, Storage, ALIGN, MAX_OP_INPUTS};
use crate::model::{Model, OpInfo, TensorInfo, TensorView};
use crate::ops;

/// What a profiling hook is told around each op.
#[derive(Clone, Copy, Debug)]
pub struct OpEvent<'a> {
    /// Op index (execution order).
    pub index: u32,
    /// Operator.
    pub opcode: OpCode,
    /// Op name.
    pub name: &'a str,
    /// `false` just before the op runs, `true` just after.
    pub done: bool,
}

/// Binds a model to an arena and runs it.
pub struct Interpreter<'m, 'a> {
    model: &'m Model<'m>,
    arena: &'a mut [u8],
}

/// Writable view of a graph input.
pub struct TensorMut<'b> {
    /// Description.
    pub info: TensorInfo<'b>,
    /// Raw little-endian bytes.
    pub bytes: &'b mut [u8],
}

impl TensorMut<'_> {
    /// Copies `src` in; its element type must match the tensor's dtype and
    /// its length the tensor's element count.
    pub fn copy_from<T: bytemuck::Pod + Element>(&mut self, src: &[T]) -> Result<()> {
        let bytes: &[u8] = bytemuck::cast_slice(src);
        if T::DTYPE != self.info.dtype || bytes.len() != self.bytes.len() {
            return Err(Error::WrongTensorData {
                expected_bytes: self.bytes.len(),
                got_bytes: if T::DTYPE == self.info.dtype {
                    bytes.len()
                } else {
                    0
                },
            });
        }
        self.bytes.copy_from_slice(bytes);
        Ok(())
    }
}

/// Rust element types that correspond to a [`DType`].
pub trait Element {
    /// The matching dtype.
    const DTYPE: DType;
}
impl Element for i8 {
    const DTYPE: DType = DType::I8;
}
impl Element for u8 {
    const DTYPE: DType = DType::U8;
}
impl Element for i32 {
    const DTYPE: DType = DType::I32;
}
impl Element for f32 {
    const DTYPE: DType = DType::F32;
}

impl<'m, 'a> Interpreter<'m, 'a> {
    /// Binds `model` to `arena`, which must be 16-byte aligned (see
    /// [`crate::Aligned`]) and at least [`Model::arena_bytes`] long.
    pub fn new(model: &'m Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        if arena.len() < model.arena_bytes() {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_bytes(),
                got: arena.len(),
            });
        }
        if !(arena.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(Error::MisalignedArena);
        }
        Ok(Interpreter { model, arena })
    }

    /// The model.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// Writable view of graph input `i`.
    pub fn input_mut(&mut self, i: usize) -> Result<TensorMut<'_>> {
        let info = self.model.input_info(i)?;
        let bytes = self
            .arena
            .get_mut(info.offset..info.offset + info.size)
            .ok_or(Error::NoSuchTensor(i))?;
        Ok(TensorMut { info, bytes })
    }

    /// Read-only view of graph output `i` (valid after [`Self::invoke`]).
    pub fn output(&self, i: usize) -> Result<TensorView<'_>> {
        let info = self.model.output_info(i)?;
        let bytes = self
            .arena
            .get(info.offset..info.offset + info.size)
            .ok_or(Error::NoSuchTensor(i))?;
        Ok(TensorView { info, bytes })
    }

    /// Runs every op once.
    pub fn invoke(&mut self) -> Result<()> {
        self.invoke_with_hook(|_| {})
    }

    /// Runs every op once, calling `hook` before and after each op (for
    /// per-operator profiling with a cycle counter).
    pub fn invoke_with_hook<F: FnMut(OpEvent<'_>)>(&mut self, mut hook: F) -> Result<()> {
        for o in 0..self.model.num_ops() as u32 {
            let op = self.model.op(o)?;
            let ev = OpEvent {
                index: o,
                opcode: op.opcode,
                name: op.name,
                done: false,
            };
            hook(ev);
            let io = split_io(self.model, &op, self.arena)?;
            ops::eval(self.model, &op, io)?;
            hook(OpEvent { done: true, ..ev });
        }
        Ok(())
    }
}

/// The memory one op touches: its input bytes (arena or blob) and its
/// output bytes, carved from the arena without overlap.
pub(crate) struct OpIo<'b> {
    pub ins: [&'b [u8]; MAX_OP_INPUTS],
    pub out: &'b mut [u8],
}

fn split_io<'b>(model: &'b Model<'b>, op: &OpInfo<'b>, arena: &'b mut [u8]) -> Result<OpIo<'b>> {
    let bad = |reason| Error::BadOp {
        op: op.index,
        reason,
    };
    let out_t = model.tensor(op.output)?;
    let (o0, o1) = (out_t.offset, out_t.offset + out_t.size);
    if o1 > arena.len() {
        return Err(bad("output outside the arena"));
    }
    let (left, rest) = arena.split_at_mut(o0);
    let (out, right) = rest.split_at_mut(o1 - o0);
    let left: &'b [u8] = left;
    let right: &'b [u8] = right;
    let mut ins: [&'b [u8]; MAX_OP_INPUTS] = [&[]; MAX_OP_INPUTS];
    for (i, slot) in ins.iter_mut().enumerate().take(op.n_inputs) {
        let Some(t) = op.input(i) else { continue };
        let info = model.tensor(t)?;
        *slot = match info.storage {
            Storage::Const => model
                .const_bytes(&info)
                .ok_or(bad("constant out of range"))?,
            Storage::Arena => {
                let (s, e) = (info.offset, info.offset + info.size);
                let part = if e <= o0 {
                    left.get(s..e)
                } else if s >= o1 {
                    right.get(s - o1..e - o1)
                } else {
                    None
                };
                if let Some(p) = part {
                    p
                } else if info.size == 0 {
                    &[]
                } else {
                    return Err(bad("input overlaps the output or lies outside the arena"));
                }
            }
        };
    }
    Ok(OpIo { ins, out })
}
