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
    /// outputs, and the arena plan (no two tensors that are alive at the same
    /// time share bytes). Nothing is executed.
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

    /// Checks that every arena tensor is written by at most one op (and
    /// graph inputs by none), that no op reads a tensor before it is
    /// written, and that tensors alive at the same time do not share bytes.
    fn validate_plan(&self) -> Result<()> {
        let n_ops = self.num_ops() as i64;
        // Lifetime [first, last] of each root tensor, in op indices; graph
        // inputs are born at -1, graph outputs live until n_ops.
        let lifetime = |root: u32| -> Result<Option<(i64, i64)>> {
            let mut first: Option<i64> = None;
            let mut last: i64 = i64::MIN;
            let mut scratch = false;
            for i in 0..self.num_inputs() {
                if self.root(self.input_index(i)?)? == root {
                    first = Some(-1);
                }
            }
            for o in 0..self.num_ops() {
                let op = self.op_checked(o as u32)?;
                if self.root(op.output)? == root {
                    if first.is_some() {
                        return Err(Error::BadOp {
                            op: op.index,
                            reason: "tensor written twice (by two ops, or by an op and the caller)",
                        });
                    }
                    first = Some(o as i64);
                    last = last.max(o as i64);
                }
                for i in 0..op.n_inputs {
                    if let Some(t) = op.input(i) {
                        if self.tensor_checked(t)?.storage == Storage::Arena
                            && self.root(t)? == root
                        {
                            if i == SCRATCH_INPUT && ops::has_scratch(&op) {
                                // An op's scratch lives during that op only
                                // and belongs to it alone.
                                if first.is_some() {
                                    return Err(Error::BadOp {
                                        op: op.index,
                                        reason: "scratch tensor is also used elsewhere",
                                    });
                                }
                                first = Some(o as i64);
                                last = o as i64;
                                scratch = true;
                                continue;
                            }
                            if scratch {
                                return Err(Error::BadOp {
                                    op: op.index,
                                    reason: "reads another op's scratch tensor",
                                });
                            }
                            match first {
                                Some(f) if f < o as i64 => last = last.max(o as i64),
                                _ => {
                                    return Err(Error::BadOp {
                                        op: op.index,
                                        reason: "reads an arena tensor before it is written",
                                    })
                                }
                            }
                        }
                    }
                }
            }
            for i in 0..self.num_outputs() {
                if self.root(self.output_index(i)?)? == root {
                    if first.is_none() {
                        return Err(Error::BadTensor {
                            tensor: root,
                            reason: "graph output is never written",
                        });
                    }
                    last = n_ops;
                }
            }
            Ok(first.map(|f| (f, last.max(f))))
        };
        for a in 0..self.num_tensors() as u32 {
            let ta = self.tensor_checked(a)?;
            if ta.storage != Storage::Arena || ta.alias_of.is_some() {
                continue;
            }
            let Some((fa, la)) = lifetime(a)? else {
                continue;
            };
            for b in (a + 1)..self.num_tensors() as u32 {
                let tb = self.tensor_checked(b)?;
                if tb.storage != Storage::Arena || tb.alias_of.is_some() {
                    continue;
                }
                let overlap_mem =
                    ta.offset < tb.offset + tb.size && tb.offset < ta.offset + ta.size;
                if !overlap_mem || ta.size == 0 || tb.size == 0 {
                    continue;
                }
                if let Some((fb, lb)) = lifetime(b)? {
                    if fa <= lb && fb <= la {
                        return Err(Error::BadTensor {
                            tensor: b,
                            reason: "shares arena bytes with a tensor alive at the same time",
                        });
                    }
                }
            }
        }
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
