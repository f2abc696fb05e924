//! Loading a model: the blob's header and sections ([`Model::parse`]),
//! then every tensor, every op against its operator's rules
//! ([`crate::ops`]) and the arena plan; and what the ops say of the model
//! (kernels, work).

use crate::error::{Error, Result};
use crate::format::*;
use crate::kernel_set::{AllKernels, Kernel, KernelSet, Kernels};
use crate::model::Model;
use crate::ops;

impl<'a> Model<'a> {
    /// Validates `blob` completely and returns a view of it.
    ///
    /// Checks, in order: length, magic, version, checksum, alignment,
    /// every section's bounds, every tensor record, every op record and its
    /// parameters against what its kernel accepts, the graph inputs and
    /// outputs, and every tensor's recorded lifetime (each arena tensor
    /// written once, before any read). Nothing is executed. All of it takes
    /// time linear in the blob's size.
    ///
    /// That no two tensors alive at the same time share bytes is checked
    /// when an [`crate::Interpreter`] binds the model to an arena (see
    /// [`Self::check_arena_plan`]), which gives the check its scratch.
    ///
    /// Every kernel of the runtime is linked; a firmware for one model
    /// uses [`Self::load_with`] to keep only the kernels it runs.
    pub fn load(blob: &'a [u8]) -> Result<Model<'a>> {
        Self::load_with::<AllKernels>(blob)
    }

    /// [`Self::load`] for a build that contains the kernels of `S` only: a
    /// model with an op on any other kernel is refused with
    /// [`Error::KernelNotBuilt`], and the validation code of the operators
    /// `S` leaves out is not linked.
    pub fn load_with<S: KernelSet>(blob: &'a [u8]) -> Result<Model<'a>> {
        let model = Model::parse(blob)?;
        model.validate::<S>()?;
        Ok(model)
    }

    fn validate<S: KernelSet>(&self) -> Result<()> {
        for t in 0..self.num_tensors() {
            self.tensor_checked(t as u32)?;
        }
        for t in 0..self.num_tensors() {
            let info = self.tensor_checked(t as u32)?;
            if let Some(a) = info.alias_of {
                let target = self.tensor_checked(a)?;
                let bad = |reason| Error::BadTensor {
                    tensor: t as u32,
                    reason,
                };
                if target.alias_of.is_some() || a as usize == t {
                    return Err(bad("alias chains are not allowed"));
                }
                if target.storage != info.storage
                    || target.offset != info.offset
                    || target.size != info.size
                    || target.dtype != info.dtype
                {
                    return Err(bad("alias does not cover the same bytes as its target"));
                }
            }
        }
        if self.num_inputs() == 0 || self.num_outputs() == 0 {
            return Err(Error::BadSection(
                "a model needs at least one input and output",
            ));
        }
        for i in 0..self.num_inputs() {
            let t = self.input_info(i)?;
            if t.storage != Storage::Arena || t.alias_of.is_some() {
                return Err(Error::BadTensor {
                    tensor: t.index,
                    reason: "graph input must be a plain arena tensor",
                });
            }
        }
        for i in 0..self.num_outputs() {
            let t = self.output_info(i)?;
            if t.storage != Storage::Arena {
                return Err(Error::BadTensor {
                    tensor: t.index,
                    reason: "graph output must be an arena tensor",
                });
            }
        }
        self.validate_state()?;
        for o in 0..self.num_ops() {
            let op = self.op_checked(o as u32)?;
            for i in 0..op.n_inputs {
                if let Some(t) = op.input(i) {
                    self.tensor_checked(t).map_err(|_| Error::BadOp {
                        op: op.index,
                        reason: "input tensor index out of range",
                    })?;
                }
            }
            let out = self.tensor_checked(op.output).map_err(|_| Error::BadOp {
                op: op.index,
                reason: "output tensor index out of range",
            })?;
            if out.storage != Storage::Arena || out.alias_of.is_some() {
                return Err(Error::BadOp {
                    op: op.index,
                    reason: "output must be a plain arena tensor",
                });
            }
            if op.opcode.variant_name(op.variant).is_none() {
                return Err(Error::UnknownKernelVariant {
                    op: op.index,
                    variant: op.variant,
                });
            }
            ops::validate::<S>(self, &op)?;
        }
        self.validate_plan()
    }

    /// Checks the state pairs: each state tensor a plain arena tensor that
    /// is no graph input and in one pair only, each next state an arena
    /// tensor with the state's dtype and quantization and other bytes, of
    /// the state's shape or (from a non-zero offset) holding the state's
    /// size inside it. (That no op writes a state tensor, that it holds its
    /// bytes for the whole invoke and that the next state lives until the
    /// invoke ends are checked with the lifetimes.)
    fn validate_state(&self) -> Result<()> {
        if self.num_state() > MAX_GRAPH_IO {
            return Err(Error::BadSection("more than 256 state pairs"));
        }
        for i in 0..self.num_state() {
            let (s, n) = self.state_index(i)?;
            let bad = |reason| Error::BadTensor { tensor: s, reason };
            let state = self.tensor_checked(s)?;
            let next = self.tensor_checked(n)?;
            if state.storage != Storage::Arena || state.alias_of.is_some() {
                return Err(bad("state must be a plain arena tensor"));
            }
            if self.is_graph_input(s)? {
                return Err(bad("state is also a graph input"));
            }
            for j in 0..i {
                if self.state_index(j)?.0 == s {
                    return Err(bad("state listed in two state pairs"));
                }
            }
            if self.root(n)? == s {
                return Err(bad("next state is the state itself"));
            }
            let from = self.state_source_offset(i)?;
            let same_shape = from == 0 && next.size == state.size && next.dims() == state.dims();
            let inside = from.checked_add(state.size).is_some_and(|e| e <= next.size)
                && from.is_multiple_of(state.dtype.size().max(1));
            if next.storage != Storage::Arena
                || next.dtype != state.dtype
                || next.quant != state.quant
                || !(same_shape || (from > 0 && inside))
            {
                return Err(bad(
                    "next state differs from the state in dtype, shape or quantization",
                ));
            }
        }
        Ok(())
    }

    /// Checks every recorded lifetime against the ops, in time linear in
    /// the number of ops, operands and tensors: a tensor's lifetime starts
    /// at the step that writes it (the caller's for a graph input, its op's
    /// for an op output or scratch) and ends at its last use (the caller's
    /// for a graph output). So every arena tensor is written once, never
    /// read before it is written, and an op's scratch belongs to that op
    /// alone. Whether tensors alive together share bytes is left to
    /// [`Self::check_arena_plan`], which needs scratch memory.
    fn validate_plan(&self) -> Result<()> {
        let n_ins = self.num_inputs();
        let n_outs = self.num_outputs();
        if n_ins > MAX_GRAPH_IO || n_outs > MAX_GRAPH_IO {
            return Err(Error::BadSection("more than 256 graph inputs or outputs"));
        }
        let end = self.num_ops() as u32 + 1;
        let live = |t: u32| -> Result<Option<(u32, u32)>> {
            let root = self.root(t)?;
            let info = self.tensor_checked(root)?;
            Ok(if info.storage == Storage::Arena {
                Some(info.live.unwrap_or((NOT_LIVE, NOT_LIVE)))
            } else {
                None
            })
        };
        for i in 0..n_ins {
            let t = self.input_index(i)?;
            for j in 0..i {
                if self.input_index(j)? == t {
                    return Err(Error::BadTensor {
                        tensor: t,
                        reason: "listed twice as a graph input",
                    });
                }
            }
            if live(t)?.is_some_and(|(from, _)| from != 0) {
                return Err(Error::BadTensor {
                    tensor: t,
                    reason: "graph input's recorded lifetime does not start at step 0",
                });
            }
        }
        for i in 0..self.num_state() {
            let (t, next) = self.state_index(i)?;
            if live(t)? != Some((0, end)) {
                return Err(Error::BadTensor {
                    tensor: t,
                    reason: "state's recorded lifetime is not the whole invoke",
                });
            }
            if live(next)?.is_none_or(|(from, to)| from == NOT_LIVE || to != end) {
                return Err(Error::BadTensor {
                    tensor: next,
                    reason: "next state is never written, or its recorded lifetime ends before the invoke does",
                });
            }
        }
        for i in 0..n_outs {
            let t = self.output_index(i)?;
            if live(t)?.is_none_or(|(from, to)| from == NOT_LIVE || to != end) {
                return Err(Error::BadTensor {
                    tensor: t,
                    reason: "graph output is never written, or its recorded lifetime ends early",
                });
            }
        }
        for o in 0..self.num_ops() {
            let op = self.op_checked(o as u32)?;
            let step = o as u32 + 1;
            let bad = |reason| Error::BadOp {
                op: op.index,
                reason,
            };
            let out = self.root(op.output)?;
            if live(out)?.is_none_or(|(from, _)| from != step) {
                return Err(bad(
                    "tensor written twice (by two ops, or by an op and the caller), \
                     or its recorded lifetime does not start at its writer",
                ));
            }
            for i in 0..op.n_inputs {
                let Some(t) = op.input(i) else { continue };
                let Some((from, to)) = live(t)? else { continue };
                if i == SCRATCH_INPUT && ops::has_scratch(&op) {
                    if (from, to) != (step, step) || self.root(t)? == out {
                        return Err(bad(
                            "scratch tensor is also used elsewhere, or its recorded \
                             lifetime is not this op alone",
                        ));
                    }
                } else if from == NOT_LIVE || from >= step {
                    return Err(bad("reads an arena tensor before it is written"));
                } else if to < step {
                    return Err(bad("reads a tensor after its recorded lifetime ends"));
                }
            }
        }
        // The other direction: each lifetime's ends are a real write and a
        // real last use (so the sweep frees every tensor at the right step).
        for t in 0..self.num_tensors() as u32 {
            let Some((from, to)) = self.tensor_checked(t)?.live else {
                continue;
            };
            let bad = |reason| Error::BadTensor { tensor: t, reason };
            let written = if from == 0 {
                self.is_graph_input(t)? || self.is_state(t)?
            } else {
                self.op_writes(from - 1, t)?
            };
            if !written {
                return Err(bad(
                    "recorded lifetime does not start where the tensor is written",
                ));
            }
            let used_last = if to == end {
                self.is_graph_output_root(t)? || self.is_state(t)? || self.is_next_state_root(t)?
            } else if to == 0 {
                true
            } else {
                self.op_uses(to - 1, t)?
            };
            if !used_last {
                return Err(bad(
                    "recorded lifetime does not end at the tensor's last use",
                ));
            }
        }
        Ok(())
    }

    fn is_graph_input(&self, t: u32) -> Result<bool> {
        for i in 0..self.num_inputs() {
            if self.input_index(i)? == t {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn is_next_state_root(&self, root: u32) -> Result<bool> {
        for i in 0..self.num_state() {
            if self.root(self.state_index(i)?.1)? == root {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn is_graph_output_root(&self, root: u32) -> Result<bool> {
        for i in 0..self.num_outputs() {
            if self.root(self.output_index(i)?)? == root {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether op `o` writes the bytes of `root` (as its output or scratch).
    fn op_writes(&self, o: u32, root: u32) -> Result<bool> {
        let op = self.op_checked(o)?;
        let scratch = match op.input(SCRATCH_INPUT) {
            Some(s) if ops::has_scratch(&op) => self.root(s)? == root,
            _ => false,
        };
        Ok(scratch || self.root(op.output)? == root)
    }

    /// Whether op `o` reads or writes the bytes of `root`.
    fn op_uses(&self, o: u32, root: u32) -> Result<bool> {
        let op = self.op_checked(o)?;
        for i in 0..op.n_inputs {
            if let Some(t) = op.input(i) {
                if self.root(t)? == root {
                    return Ok(true);
                }
            }
        }
        Ok(self.root(op.output)? == root)
    }

    /// Bytes of scratch [`Self::check_arena_plan`] needs: one bit per
    /// 16-byte granule of the arena, never more than the arena itself.
    pub fn arena_plan_scratch_bytes(&self) -> usize {
        self.arena_bytes().div_ceil(ALIGN).div_ceil(8)
    }

    /// Checks that no two arena tensors alive at the same step share a
    /// byte, with one sweep over the steps that marks the 16-byte granules
    /// in use in `scratch` (at least [`Self::arena_plan_scratch_bytes`]
    /// long; its contents are overwritten). The time is linear in the
    /// number of ops plus the granules the tensors cover, which is less
    /// than the bytes one inference writes. [`crate::Interpreter::new`] runs
    /// it on the arena it is given, before anything else uses the arena.
    ///
    /// Granules are exact: tensors start on 16-byte boundaries, so two
    /// non-empty tensors share a granule only if both hold its first byte.
    pub fn check_arena_plan(&self, scratch: &mut [u8]) -> Result<()> {
        let need = self.arena_plan_scratch_bytes();
        let Some(map) = scratch.get_mut(..need) else {
            return Err(Error::ArenaTooSmall {
                needed: need,
                got: scratch.len(),
            });
        };
        map.fill(0);
        // Step 0: the graph inputs and the state are born (the state never
        // dies: its bytes are kept between invokes).
        for i in 0..self.num_inputs() {
            self.occupy(map, self.input_index(i)?, 0)?;
        }
        for i in 0..self.num_state() {
            self.occupy(map, self.state_index(i)?.0, 0)?;
        }
        for o in 0..self.num_ops() as u32 {
            let step = o + 1;
            // Free what died at the previous step: tensors whose last use
            // was there (the loader checked that it names them).
            if o == 0 {
                for i in 0..self.num_inputs() {
                    self.release(map, self.input_index(i)?, 0)?;
                }
            } else {
                let prev = self.op_checked(o - 1)?;
                for i in 0..prev.n_inputs {
                    if let Some(t) = prev.input(i) {
                        self.release(map, t, o)?;
                    }
                }
                self.release(map, prev.output, o)?;
            }
            let op = self.op_checked(o)?;
            if let Some(s) = op.input(SCRATCH_INPUT).filter(|_| ops::has_scratch(&op)) {
                self.occupy(map, s, step)?;
            }
            self.occupy(map, op.output, step)?;
        }
        Ok(())
    }

    /// Marks the granules of `t`'s bytes in use if they are born at
    /// `step`; refuses if any of them already is.
    fn occupy(&self, map: &mut [u8], t: u32, step: u32) -> Result<()> {
        let info = self.tensor_checked(self.root(t)?)?;
        if info.size == 0 || info.live.is_none_or(|(from, _)| from != step) {
            return Ok(());
        }
        let (first, last) = granules(info.offset, info.size);
        if any_set(map, first, last) {
            return Err(Error::BadTensor {
                tensor: t,
                reason: "shares arena bytes with a tensor alive at the same time",
            });
        }
        set_bits(map, first, last, true);
        Ok(())
    }

    /// Frees the granules of `t`'s bytes if their last use was at `step`
    /// (freeing twice is harmless).
    fn release(&self, map: &mut [u8], t: u32, step: u32) -> Result<()> {
        let info = self.tensor_checked(self.root(t)?)?;
        if info.size == 0 || info.live.is_none_or(|(_, to)| to != step) {
            return Ok(());
        }
        let (first, last) = granules(info.offset, info.size);
        set_bits(map, first, last, false);
        Ok(())
    }

    fn root(&self, t: u32) -> Result<u32> {
        Ok(self.tensor_checked(t)?.alias_of.unwrap_or(t))
    }

    /// Multiply-accumulates of op `o` (for profiling and `ember inspect`).
    pub fn op_macs(&self, o: u32) -> u64 {
        self.op_checked(o)
            .map(|op| ops::macs(self, &op))
            .unwrap_or(0)
    }

    /// The kernels this model's ops run on (what a [`KernelSet`] for a
    /// firmware that runs only this model must contain).
    pub fn kernels(&self) -> Result<Kernels> {
        let mut set = Kernels::NONE;
        for o in 0..self.num_ops() as u32 {
            set = set.with(self.op_kernel(o)?);
            if let Some(k) = ops::fused_kernel(self, &self.op_checked(o)?)? {
                set = set.with(k);
            }
        }
        Ok(set)
    }

    /// The kernel op `o` runs on.
    pub fn op_kernel(&self, o: u32) -> Result<Kernel> {
        ops::kernel_of(self, &self.op_checked(o)?)
    }

    /// Total multiply-accumulates of one inference.
    pub fn total_macs(&self) -> u64 {
        (0..self.num_ops() as u32).map(|o| self.op_macs(o)).sum()
    }
}

/// First and last 16-byte granule of a non-empty arena range. The loader
/// checked that the range lies inside the arena, so both are below
/// `arena_bytes.div_ceil(ALIGN)` and index the bitmap in bounds.
fn granules(offset: usize, size: usize) -> (usize, usize) {
    (offset / ALIGN, (offset + size - 1) / ALIGN)
}

/// Whether any bit `first..=last` of `map` is set.
fn any_set(map: &[u8], first: usize, last: usize) -> bool {
    let (b0, b1) = (first / 8, last / 8);
    let lo = 0xffu8 << (first % 8);
    let hi = 0xffu8 >> (7 - last % 8);
    if b0 == b1 {
        return map[b0] & lo & hi != 0;
    }
    map[b0] & lo != 0 || map[b1] & hi != 0 || map[b0 + 1..b1].iter().any(|&b| b != 0)
}

/// Sets (or clears) bits `first..=last` of `map`.
fn set_bits(map: &mut [u8], first: usize, last: usize, on: bool) {
    let (b0, b1) = (first / 8, last / 8);
    let lo = 0xffu8 << (first % 8);
    let hi = 0xffu8 >> (7 - last % 8);
    let mut apply = |i: usize, mask: u8| {
        if on {
            map[i] |= mask;
        } else {
            map[i] &= !mask;
        }
    };
    if b0 == b1 {
        apply(b0, lo & hi);
        return;
    }
    apply(b0, lo);
    apply(b1, hi);
    map[b0 + 1..b1].fill(if on { 0xff } else { 0 });
}

#[cfg(test)]
mod tests {
    use super::{any_set, set_bits};

    /// The byte-at-a-time range operations agree with bit-by-bit ones on
    /// every range of a 5-byte map, over many fillings.
    #[test]
    fn bitmap_ranges_match_bit_by_bit() {
        let bit = |m: &[u8], i: usize| m[i / 8] >> (i % 8) & 1 == 1;
        let mut seed = 0x2545_f491_u32;
        for _ in 0..64 {
            let mut map = [0u8; 5];
            for b in map.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                // Sparse fillings, so that ranges often come out clear.
                *b = (seed & (seed >> 8) & (seed >> 16)) as u8;
            }
            for first in 0..40 {
                for last in first..40 {
                    let want = (first..=last).any(|i| bit(&map, i));
                    assert_eq!(any_set(&map, first, last), want, "{first}..={last}");
                    for on in [true, false] {
                        let mut got = map;
                        set_bits(&mut got, first, last, on);
                        for i in 0..40 {
                            let inside = (first..=last).contains(&i);
                            let expect = if inside { on } else { bit(&map, i) };
                            assert_eq!(bit(&got, i), expect, "{first}..={last} bit {i}");
                        }
                    }
                }
            }
        }
    }
}
