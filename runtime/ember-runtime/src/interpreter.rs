//! Runs a validated model in a caller-provided arena.

use crate::error::{Error, Result};
use crate::format::{DType, Storage, ALIGN, MAX_OP_INPUTS, SCRATCH_INPUT};
use crate::kernel_set::{AllKernels, KernelSet};
use crate::model::{Model, OpInfo, TensorInfo, TensorView};
use crate::ops::{self, OpIo};
use crate::OpCode;

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

/// Binds a model to an arena and runs it on the kernels of `S` (see
/// [`KernelSet`]; [`Interpreter::new`] takes every kernel).
pub struct Interpreter<'m, 'a, S: KernelSet = AllKernels> {
    model: &'m Model<'m>,
    arena: &'a mut [u8],
    kernels: core::marker::PhantomData<S>,
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
    /// [`crate::Aligned`]) and at least [`Model::arena_bytes`] long, after
    /// checking the model's arena plan in it ([`Model::check_arena_plan`]).
    /// Every kernel of the runtime is linked.
    pub fn new(model: &'m Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        Self::with_kernels(model, arena)
    }
}

impl<'m, 'a, S: KernelSet> Interpreter<'m, 'a, S> {
    /// [`Interpreter::new`] on the kernels of `S` only: the model must run
    /// on nothing else ([`Error::KernelNotBuilt`] names the first op that
    /// does not), and the kernels `S` leaves out are not linked.
    pub fn with_kernels(model: &'m Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        for o in 0..model.num_ops() as u32 {
            let kernel = model.op_kernel(o)?;
            if !S::KERNELS.contains(kernel) {
                return Err(Error::KernelNotBuilt { op: o, kernel });
            }
        }
        if arena.len() < model.arena_bytes() {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_bytes(),
                got: arena.len(),
            });
        }
        if !(arena.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(Error::MisalignedArena);
        }
        model.check_arena_plan(arena)?;
        let mut me = Interpreter {
            model,
            arena,
            kernels: core::marker::PhantomData,
        };
        me.reset_state()?;
        Ok(me)
    }

    /// Sets every state tensor (see [`Model::num_state`]) to zero, or to
    /// its zero point when it is quantized: the model starts over, as if
    /// no invoke had run. [`Interpreter::new`] does it too.
    ///
    /// The state lives in the arena, which this interpreter borrows
    /// mutably for its whole life: a second interpreter cannot be bound
    /// to the same state while this one exists.
    ///
    /// ```compile_fail
    /// # use ember_runtime::{Interpreter, Model};
    /// # fn f(model: &Model, arena: &mut [u8]) {
    /// let a = Interpreter::new(model, arena).unwrap();
    /// let b = Interpreter::new(model, arena).unwrap(); // refused: `arena` is borrowed by `a`
    /// drop((a, b));
    /// # }
    /// ```
    pub fn reset_state(&mut self) -> Result<()> {
        for i in 0..self.model.num_state() {
            let (state, _) = self.model.state_info(i)?;
            let fill = match (state.dtype, state.quant) {
                // The zero point's two's-complement byte is the stored value.
                (DType::I8 | DType::U8, Some(q)) => q.zero_point as u8,
                _ => 0,
            };
            self.arena
                .get_mut(state.offset..state.offset + state.size)
                .ok_or(Error::BadTensor {
                    tensor: state.index,
                    reason: "state outside the arena",
                })?
                .fill(fill);
        }
        Ok(())
    }

    /// Read-only view of state tensor `i` (see [`Model::state_info`]): what
    /// the next invoke starts from. With [`Self::state_mut`], a firmware
    /// can keep the state across interpreters (e.g. in retention RAM
    /// through a deep sleep).
    pub fn state(&self, i: usize) -> Result<TensorView<'_>> {
        let (info, _) = self.model.state_info(i)?;
        let bytes = self
            .arena
            .get(info.offset..info.offset + info.size)
            .ok_or(Error::NoSuchTensor(i))?;
        Ok(TensorView { info, bytes })
    }

    /// Writable view of state tensor `i`, to restore a state saved from
    /// [`Self::state`].
    pub fn state_mut(&mut self, i: usize) -> Result<TensorMut<'_>> {
        let (info, _) = self.model.state_info(i)?;
        let bytes = self
            .arena
            .get_mut(info.offset..info.offset + info.size)
            .ok_or(Error::NoSuchTensor(i))?;
        Ok(TensorMut { info, bytes })
    }

    /// Copies each next state into its state tensor (end of invoke).
    fn save_state(&mut self) -> Result<()> {
        for i in 0..self.model.num_state() {
            let (state, next) = self.model.state_info(i)?;
            let src = next.offset + self.model.state_source_offset(i)?;
            let fits = |t: &TensorInfo<'_>| t.offset + t.size <= self.arena.len();
            if src + state.size > next.offset + next.size || !fits(&state) || !fits(&next) {
                return Err(Error::BadTensor {
                    tensor: state.index,
                    reason: "next state smaller than the state, or outside the arena",
                });
            }
            self.arena.copy_within(src..src + state.size, state.offset);
        }
        Ok(())
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

    /// Runs every op once, then keeps the model's state (if it has any)
    /// for the next invoke.
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
            ops::eval::<S>(self.model, &op, io)?;
            hook(OpEvent { done: true, ..ev });
        }
        self.save_state()
    }
}

/// Read-only pieces of the arena left after carving out the writable
/// ranges, each with its arena offset.
struct Pieces<'b> {
    parts: [(usize, &'b [u8]); 3],
}

impl<'b> Pieces<'b> {
    /// Arena bytes `s..e` if they lie inside one read-only piece.
    fn get(&self, s: usize, e: usize) -> Option<&'b [u8]> {
        self.parts.iter().find_map(|&(base, p)| {
            if s >= base && e <= base + p.len() {
                p.get(s - base..e - base)
            } else {
                None
            }
        })
    }
}

fn split_io<'b>(model: &'b Model<'b>, op: &OpInfo<'b>, arena: &'b mut [u8]) -> Result<OpIo<'b>> {
    let bad = |reason| Error::BadOp {
        op: op.index,
        reason,
    };
    let out_t = model.tensor(op.output)?;
    let (o0, o1) = (out_t.offset, out_t.offset + out_t.size);
    // The scratch range (empty at the output's end when there is none).
    let (s0, s1) = match op.input(SCRATCH_INPUT) {
        Some(t) if ops::has_scratch(op) => {
            let info = model.tensor(t)?;
            if info.storage != Storage::Arena {
                return Err(bad("scratch is not an arena tensor"));
            }
            (info.offset, info.offset + info.size)
        }
        _ => (o1, o1),
    };
    // An empty scratch carves nothing; place it at the output's end so the
    // two ranges below are always ordered and disjoint.
    let (s0, s1) = if s0 == s1 { (o1, o1) } else { (s0, s1) };
    if o1 > arena.len() || s1 > arena.len() {
        return Err(bad("output or scratch outside the arena"));
    }
    if s0 < o1 && o0 < s1 {
        return Err(bad("scratch overlaps the output"));
    }
    // Carve [lo0, lo1) and [hi0, hi1) (the two writable ranges, in arena
    // order) out of the arena; what remains is three read-only pieces.
    let out_first = (o0, o1) <= (s0, s1);
    let ((lo0, lo1), (hi0, hi1)) = if out_first {
        ((o0, o1), (s0, s1))
    } else {
        ((s0, s1), (o0, o1))
    };
    let (a, rest) = arena.split_at_mut(lo0);
    let (lo, rest) = rest.split_at_mut(lo1 - lo0);
    let (b, rest) = rest.split_at_mut(hi0 - lo1);
    let (hi, c) = rest.split_at_mut(hi1 - hi0);
    let pieces = Pieces {
        parts: [(0, a), (lo1, b), (hi1, c)],
    };
    let (out, scratch) = if out_first { (lo, hi) } else { (hi, lo) };
    let mut ins: [&'b [u8]; MAX_OP_INPUTS] = [&[]; MAX_OP_INPUTS];
    for (i, slot) in ins.iter_mut().enumerate().take(op.n_inputs) {
        let Some(t) = op.input(i) else { continue };
        if i == SCRATCH_INPUT && ops::has_scratch(op) {
            continue;
        }
        let info = model.tensor(t)?;
        *slot = match info.storage {
            Storage::Const => model
                .const_bytes(&info)
                .ok_or(bad("constant out of range"))?,
            Storage::Arena => {
                if info.size == 0 {
                    &[]
                } else {
                    pieces.get(info.offset, info.offset + info.size).ok_or(bad(
                        "input overlaps the output or scratch, or lies outside the arena",
                    ))?
                }
            }
        };
    }
    Ok(OpIo { ins, out, scratch })
}
