//! Zero-copy view of a compiled model blob, validated in full at load time.

use crate::error::{Error, Result};
use crate::format::*;
use crate::kernel_set::{AllKernels, Kernel, KernelSet, Kernels};
use crate::ops;
use crate::reader::{f32_at, i32_at, range, u16_at, u32_at};

/// Quantization parameters of a tensor (`real = (q - zero_point) * scale`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quant {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
}

/// Decoded description of one tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorInfo<'a> {
    /// Index in the tensor table.
    pub index: u32,
    /// Element type.
    pub dtype: DType,
    /// Where its bytes live.
    pub storage: Storage,
    /// Number of dimensions.
    pub rank: usize,
    /// Dimensions; entries past `rank` are 0.
    pub dims_raw: [usize; MAX_RANK],
    /// Byte offset (arena offset or offset into the constant data section).
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Quantization, if the tensor is quantized.
    pub quant: Option<Quant>,
    /// Name (from the ONNX graph).
    pub name: &'a str,
    /// The tensor whose bytes this one views (a free reshape), if any.
    pub alias_of: Option<u32>,
}

impl TensorInfo<'_> {
    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.dims_raw[..self.rank]
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// Dimension `i` counted from the end (`1` if the rank is smaller).
    pub fn dim_from_end(&self, i: usize) -> usize {
        if i < self.rank {
            self.dims_raw[self.rank - 1 - i]
        } else {
            1
        }
    }
}

/// Decoded description of one op.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo<'a> {
    /// Index in the op table (execution order).
    pub index: u32,
    /// Operator.
    pub opcode: OpCode,
    /// Kernel variant (0 = portable reference).
    pub variant: u16,
    /// Number of inputs.
    pub n_inputs: usize,
    inputs: [u32; MAX_OP_INPUTS],
    /// Output tensor index.
    pub output: u32,
    params: &'a [u8],
    /// Name (from the ONNX graph).
    pub name: &'a str,
}

impl OpInfo<'_> {
    /// Input tensor `i`, `None` if absent (optional input) or out of range.
    pub fn input(&self, i: usize) -> Option<u32> {
        if i < self.n_inputs && self.inputs[i] != NO_TENSOR {
            Some(self.inputs[i])
        } else {
            None
        }
    }

    /// Whether input slot [`SCRATCH_INPUT`] is the op's scratch buffer:
    /// always for optimized variants, and for the opcodes whose reference
    /// kernel needs one.
    pub fn has_scratch(&self) -> bool {
        self.variant != variant::REFERENCE || self.opcode.has_reference_scratch()
    }

    /// Number of param words.
    pub fn n_params(&self) -> usize {
        self.params.len() / 4
    }

    /// Param word `i` as an integer.
    pub fn param(&self, i: usize) -> Option<i32> {
        i32_at(self.params, i.checked_mul(4)?)
    }

    /// Param word `i` as an `f32` bit pattern.
    pub fn param_f32(&self, i: usize) -> Option<f32> {
        f32_at(self.params, i.checked_mul(4)?)
    }
}

/// A loaded, fully validated model. Borrows the blob; copies nothing.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    blob: &'a [u8],
    arena_bytes: usize,
    rounding: Rounding,
    n_tensors: usize,
    tensors_off: usize,
    n_ops: usize,
    ops_off: usize,
    n_inputs: usize,
    inputs_off: usize,
    n_outputs: usize,
    outputs_off: usize,
    operands: (usize, usize),
    params: (usize, usize),
    data: (usize, usize),
    /// The string pool, checked to be UTF-8 once at load: a name is a
    /// slice of it, which only needs its bounds and char boundaries checked.
    names: &'a str,
}

fn hdr(blob: &[u8], off: usize) -> Result<usize> {
    u32_at(blob, off)
        .map(|v| v as usize)
        .ok_or(Error::Truncated {
            needed: HEADER_BYTES,
            got: blob.len(),
        })
}

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
        if blob.len() < HEADER_BYTES {
            return Err(Error::Truncated {
                needed: HEADER_BYTES,
                got: blob.len(),
            });
        }
        if blob[0..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = hdr(blob, 4)? as u32;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let total = hdr(blob, 8)?;
        if total < HEADER_BYTES {
            return Err(Error::BadHeader("declared length smaller than the header"));
        }
        if blob.len() < total {
            return Err(Error::Truncated {
                needed: total,
                got: blob.len(),
            });
        }
        // Trailing bytes beyond `total` are ignored (flash pages are padded).
        let blob = &blob[..total];
        let stored = hdr(blob, 12)? as u32;
        let computed = crc32(&blob[16..]);
        if stored != computed {
            return Err(Error::ChecksumMismatch { stored, computed });
        }
        if !(blob.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(Error::MisalignedBlob);
        }
        if hdr(blob, 16)? != 0 || hdr(blob, 92)? != 0 {
            return Err(Error::BadHeader("reserved header field is not zero"));
        }
        let rounding = Rounding::from_u32(hdr(blob, 88)? as u32)
            .ok_or(Error::BadHeader("unknown requantization semantics"))?;
        let section = |off: usize, elem: usize, what: &'static str| -> Result<(usize, usize)> {
            let count = hdr(blob, off)?;
            let start = hdr(blob, off + 4)?;
            let bytes = count.checked_mul(elem).ok_or(Error::BadSection(what))?;
            if start % ALIGN != 0 || start < HEADER_BYTES || range(start, bytes, total).is_none() {
                return Err(Error::BadSection(what));
            }
            Ok((count, start))
        };
        let (n_tensors, tensors_off) = section(24, TENSOR_RECORD_BYTES, "tensor table")?;
        let (n_ops, ops_off) = section(32, OP_RECORD_BYTES, "op table")?;
        let (n_inputs, inputs_off) = section(40, 4, "graph inputs")?;
        let (n_outputs, outputs_off) = section(48, 4, "graph outputs")?;
        let operands = section(56, 4, "operand pool")?;
        let params = section(64, 4, "param pool")?;
        let data = section(72, 1, "constant data")?;
        let strings = section(80, 1, "string pool")?;
        let names = blob
            .get(strings.1..strings.1 + strings.0)
            .and_then(|b| core::str::from_utf8(b).ok())
            .ok_or(Error::BadSection("string pool is not UTF-8"))?;
        if n_tensors >= NO_TENSOR as usize || n_ops > u32::MAX as usize / 2 {
            return Err(Error::BadSection("too many records"));
        }
        let model = Model {
            blob,
            arena_bytes: hdr(blob, 20)?,
            rounding,
            n_tensors,
            tensors_off,
            n_ops,
            ops_off,
            n_inputs,
            inputs_off,
            n_outputs,
            outputs_off,
            operands,
            params,
            data,
            names,
        };
        model.validate::<S>()?;
        Ok(model)
    }

    fn validate<S: KernelSet>(&self) -> Result<()> {
        for t in 0..self.n_tensors {
            self.tensor_checked(t as u32)?;
        }
        for t in 0..self.n_tensors {
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
        if self.n_inputs == 0 || self.n_outputs == 0 {
            return Err(Error::BadSection(
                "a model needs at least one input and output",
            ));
        }
        for i in 0..self.n_inputs {
            let t = self.input_info(i)?;
            if t.storage != Storage::Arena || t.alias_of.is_some() {
                return Err(Error::BadTensor {
                    tensor: t.index,
                    reason: "graph input must be a plain arena tensor",
                });
            }
        }
        for i in 0..self.n_outputs {
            let t = self.output_info(i)?;
            if t.storage != Storage::Arena {
                return Err(Error::BadTensor {
                    tensor: t.index,
                    reason: "graph output must be an arena tensor",
                });
            }
        }
        for o in 0..self.n_ops {
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
            ops::validate::<S>(self, &op)?;
        }
        self.validate_plan()
    }

    /// Checks that every arena tensor is written by at most one op (and
    /// graph inputs by none), that no op reads a tensor before it is
    /// written, and that tensors alive at the same time do not share bytes.
    fn validate_plan(&self) -> Result<()> {
        let n_ops = self.n_ops as i64;
        // Lifetime [first, last] of each root tensor, in op indices; graph
        // inputs are born at -1, graph outputs live until n_ops.
        let lifetime = |root: u32| -> Result<Option<(i64, i64)>> {
            let mut first: Option<i64> = None;
            let mut last: i64 = i64::MIN;
            let mut scratch = false;
            for i in 0..self.n_inputs {
                if self.root(self.input_index(i)?)? == root {
                    first = Some(-1);
                }
            }
            for o in 0..self.n_ops {
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
                            if i == SCRATCH_INPUT && op.has_scratch() {
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
            for i in 0..self.n_outputs {
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
        for a in 0..self.n_tensors as u32 {
            let ta = self.tensor_checked(a)?;
            if ta.storage != Storage::Arena || ta.alias_of.is_some() {
                continue;
            }
            let Some((fa, la)) = lifetime(a)? else {
                continue;
            };
            for b in (a + 1)..self.n_tensors as u32 {
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

    /// Arena bytes the model needs.
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// Requantization semantics the model was compiled with.
    pub fn rounding(&self) -> Rounding {
        self.rounding
    }

    /// Size of the blob in bytes.
    pub fn blob_bytes(&self) -> usize {
        self.blob.len()
    }

    /// Number of tensors.
    pub fn num_tensors(&self) -> usize {
        self.n_tensors
    }

    /// Number of ops.
    pub fn num_ops(&self) -> usize {
        self.n_ops
    }

    /// Number of graph inputs.
    pub fn num_inputs(&self) -> usize {
        self.n_inputs
    }

    /// Number of graph outputs.
    pub fn num_outputs(&self) -> usize {
        self.n_outputs
    }

    fn input_index(&self, i: usize) -> Result<u32> {
        if i >= self.n_inputs {
            return Err(Error::NoSuchTensor(i));
        }
        u32_at(self.blob, self.inputs_off + 4 * i).ok_or(Error::NoSuchTensor(i))
    }

    fn output_index(&self, i: usize) -> Result<u32> {
        if i >= self.n_outputs {
            return Err(Error::NoSuchTensor(i));
        }
        u32_at(self.blob, self.outputs_off + 4 * i).ok_or(Error::NoSuchTensor(i))
    }

    /// Description of graph input `i`.
    pub fn input_info(&self, i: usize) -> Result<TensorInfo<'a>> {
        self.tensor_checked(self.input_index(i)?)
    }

    /// Description of graph output `i`.
    pub fn output_info(&self, i: usize) -> Result<TensorInfo<'a>> {
        self.tensor_checked(self.output_index(i)?)
    }

    /// Description of tensor `t`.
    pub fn tensor(&self, t: u32) -> Result<TensorInfo<'a>> {
        self.tensor_checked(t)
    }

    /// Description of op `o`.
    pub fn op(&self, o: u32) -> Result<OpInfo<'a>> {
        self.op_checked(o)
    }

    fn string(&self, off: usize, len: usize) -> Option<&'a str> {
        self.names.get(range(off, len, self.names.len())?)
    }

    fn tensor_checked(&self, t: u32) -> Result<TensorInfo<'a>> {
        let bad = |reason| Error::BadTensor { tensor: t, reason };
        if t as usize >= self.n_tensors {
            return Err(bad("index out of range"));
        }
        let base = self.tensors_off + t as usize * TENSOR_RECORD_BYTES;
        let rec = self
            .blob
            .get(base..base + TENSOR_RECORD_BYTES)
            .ok_or(bad("record out of range"))?;
        let dtype = DType::from_u8(rec[0]).ok_or(bad("unknown dtype"))?;
        let storage = Storage::from_u8(rec[1]).ok_or(bad("unknown storage"))?;
        if dtype == DType::I16 && storage != Storage::Const {
            // Only kernel-packed constants are int16; no op reads or
            // writes int16 activations.
            return Err(bad("int16 tensors must be constants"));
        }
        let rank = rec[2] as usize;
        if rank > MAX_RANK {
            return Err(bad("rank above 6"));
        }
        if rec[3] != 0 || rec[56..64].iter().any(|&b| b != 0) {
            return Err(bad("reserved bytes are not zero"));
        }
        let mut dims = [0usize; MAX_RANK];
        let mut numel: usize = 1;
        for (i, d) in dims.iter_mut().enumerate() {
            let v = u32_at(rec, 4 + 4 * i).ok_or(bad("record out of range"))? as usize;
            if i < rank {
                numel = numel.checked_mul(v).ok_or(bad("element count overflows"))?;
                *d = v;
            } else if v != 0 {
                return Err(bad("dimension past the rank is not zero"));
            }
        }
        let offset = u32_at(rec, 28).ok_or(bad("record out of range"))? as usize;
        let size = u32_at(rec, 32).ok_or(bad("record out of range"))? as usize;
        if numel.checked_mul(dtype.size()) != Some(size) {
            return Err(bad("byte size does not match shape and dtype"));
        }
        match storage {
            Storage::Arena => {
                if !offset.is_multiple_of(ALIGN) || range(offset, size, self.arena_bytes).is_none()
                {
                    return Err(bad("arena range outside the declared arena or misaligned"));
                }
            }
            Storage::Const => {
                if !offset.is_multiple_of(dtype.size())
                    || range(offset, size, self.data.0).is_none()
                {
                    return Err(bad("constant data outside the data section or misaligned"));
                }
            }
        }
        let scale = f32_at(rec, 36).ok_or(bad("record out of range"))?;
        let zero_point = i32_at(rec, 40).ok_or(bad("record out of range"))?;
        let quant = if scale == 0.0 {
            if zero_point != 0 {
                return Err(bad("zero point without a scale"));
            }
            None
        } else {
            if !scale.is_finite() || scale < 0.0 {
                return Err(bad("quantization scale is not a positive finite number"));
            }
            let (lo, hi) = match dtype {
                DType::I8 => (-128, 127),
                DType::U8 => (0, 255),
                DType::I16 => (i16::MIN as i32, i16::MAX as i32),
                DType::I32 => (i32::MIN, i32::MAX),
                DType::F32 => return Err(bad("float tensor with quantization parameters")),
            };
            if zero_point < lo || zero_point > hi {
                return Err(bad("zero point outside the dtype's range"));
            }
            Some(Quant { scale, zero_point })
        };
        let name_off = u32_at(rec, 44).ok_or(bad("record out of range"))? as usize;
        let name_len = u32_at(rec, 48).ok_or(bad("record out of range"))? as usize;
        let name = self.string(name_off, name_len).ok_or(bad(
            "name outside the string pool or not on character boundaries",
        ))?;
        let alias = u32_at(rec, 52).ok_or(bad("record out of range"))?;
        let alias_of = if alias == NO_TENSOR {
            None
        } else if (alias as usize) < self.n_tensors {
            Some(alias)
        } else {
            return Err(bad("alias target out of range"));
        };
        Ok(TensorInfo {
            index: t,
            dtype,
            storage,
            rank,
            dims_raw: dims,
            offset,
            size,
            quant,
            name,
            alias_of,
        })
    }

    fn op_checked(&self, o: u32) -> Result<OpInfo<'a>> {
        let bad = |reason| Error::BadOp { op: o, reason };
        if o as usize >= self.n_ops {
            return Err(bad("index out of range"));
        }
        let base = self.ops_off + o as usize * OP_RECORD_BYTES;
        let rec = self
            .blob
            .get(base..base + OP_RECORD_BYTES)
            .ok_or(bad("record out of range"))?;
        let code = u16_at(rec, 0).ok_or(bad("record out of range"))?;
        let opcode = OpCode::from_u16(code).ok_or(Error::UnknownOpCode { op: o, code })?;
        let variant = u16_at(rec, 2).ok_or(bad("record out of range"))?;
        if crate::format::kernel_name(opcode, variant).is_none() {
            return Err(Error::UnknownKernelVariant { op: o, variant });
        }
        let n_in = u16_at(rec, 4).ok_or(bad("record out of range"))? as usize;
        let n_out = u16_at(rec, 6).ok_or(bad("record out of range"))? as usize;
        if n_in > MAX_OP_INPUTS {
            return Err(bad("more than 8 inputs"));
        }
        if n_out != 1 {
            return Err(bad("ops have exactly one output"));
        }
        let first = u32_at(rec, 8).ok_or(bad("record out of range"))? as usize;
        let operand_range =
            range(first, n_in + n_out, self.operands.0).ok_or(bad("operands outside the pool"))?;
        let mut inputs = [NO_TENSOR; MAX_OP_INPUTS];
        for (i, slot) in inputs.iter_mut().take(n_in).enumerate() {
            *slot = u32_at(self.blob, self.operands.1 + 4 * (operand_range.start + i))
                .ok_or(bad("operands outside the pool"))?;
        }
        let output = u32_at(
            self.blob,
            self.operands.1 + 4 * (operand_range.start + n_in),
        )
        .ok_or(bad("operands outside the pool"))?;
        let p_first = u32_at(rec, 12).ok_or(bad("record out of range"))? as usize;
        let p_len = u32_at(rec, 16).ok_or(bad("record out of range"))? as usize;
        let pr = range(p_first, p_len, self.params.0).ok_or(bad("params outside the pool"))?;
        let params = self
            .blob
            .get(self.params.1 + 4 * pr.start..self.params.1 + 4 * pr.end)
            .ok_or(bad("params outside the pool"))?;
        let name_off = u32_at(rec, 20).ok_or(bad("record out of range"))? as usize;
        let name_len = u32_at(rec, 24).ok_or(bad("record out of range"))? as usize;
        if u32_at(rec, 28) != Some(0) {
            return Err(bad("reserved field is not zero"));
        }
        let name = self.string(name_off, name_len).ok_or(bad(
            "name outside the string pool or not on character boundaries",
        ))?;
        Ok(OpInfo {
            index: o,
            opcode,
            variant,
            n_inputs: n_in,
            inputs,
            output,
            params,
            name,
        })
    }

    /// Bytes of a constant tensor (in the blob).
    pub(crate) fn const_bytes(&self, t: &TensorInfo<'_>) -> Option<&'a [u8]> {
        if t.storage != Storage::Const {
            return None;
        }
        let start = self.data.1.checked_add(t.offset)?;
        self.blob.get(start..start.checked_add(t.size)?)
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
        for o in 0..self.n_ops as u32 {
            set = set.with(self.op_kernel(o)?);
        }
        Ok(set)
    }

    /// The kernel op `o` runs on.
    pub fn op_kernel(&self, o: u32) -> Result<Kernel> {
        ops::kernel_of(self, &self.op_checked(o)?)
    }

    /// Total multiply-accumulates of one inference.
    pub fn total_macs(&self) -> u64 {
        (0..self.n_ops as u32).map(|o| self.op_macs(o)).sum()
    }
}

/// Read-only view of a tensor's data.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    /// Description.
    pub info: TensorInfo<'a>,
    /// Raw little-endian bytes.
    pub bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// The data as `i8` (error if the dtype differs).
    pub fn as_i8(&self) -> Result<&'a [i8]> {
        self.typed(DType::I8)
    }

    /// The data as `u8` (error if the dtype differs).
    pub fn as_u8(&self) -> Result<&'a [u8]> {
        self.typed(DType::U8)
    }

    /// The data as `i32` (error if the dtype differs).
    pub fn as_i32(&self) -> Result<&'a [i32]> {
        self.typed(DType::I32)
    }

    /// The data as `f32` (error if the dtype differs).
    pub fn as_f32(&self) -> Result<&'a [f32]> {
        self.typed(DType::F32)
    }

    fn typed<T: bytemuck::Pod>(&self, want: DType) -> Result<&'a [T]> {
        if self.info.dtype != want {
            return Err(Error::WrongTensorData {
                expected_bytes: self.info.size,
                got_bytes: 0,
            });
        }
        bytemuck::try_cast_slice(self.bytes).map_err(|_| Error::MisalignedArena)
    }
}
