//! Zero-copy view of a compiled model blob, validated in full at load time.

use crate::error::{Error, Result};
use crate::format::*;
use crate::reader::{f32_at, i32_at, range, u16_at, u32_at};
use crate::OpCode;

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
    /// Steps `(from, to)` during which an arena tensor that owns its bytes
    /// holds them (see [`crate::format`]); `None` for every other tensor
    /// and for one that nothing uses.
    pub live: Option<(u32, u32)>,
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

    /// Number of param words.
    pub fn n_params(&self) -> usize {
        self.params.len() / 4
    }

    /// The param words, little-endian (decoded by the op's `Params`).
    pub(crate) fn param_bytes(&self) -> &[u8] {
        self.params
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
    n_state: usize,
    state_off: usize,
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
    /// Checks the header (length, magic, version, checksum, alignment,
    /// reserved fields) and every section's bounds, and returns a view
    /// whose records are not validated yet: [`Self::load_with`] does that.
    pub(crate) fn parse(blob: &'a [u8]) -> Result<Model<'a>> {
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
        if hdr(blob, 16)? != 0
            || hdr(blob, 92)? != 0
            || hdr(blob, 104)? != 0
            || hdr(blob, 108)? != 0
        {
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
        let (n_state, state_off) = section(96, STATE_RECORD_BYTES, "state pairs")?;
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
        Ok(Model {
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
            n_state,
            state_off,
            operands,
            params,
            data,
            names,
        })
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

    pub(crate) fn input_index(&self, i: usize) -> Result<u32> {
        if i >= self.n_inputs {
            return Err(Error::NoSuchTensor(i));
        }
        u32_at(self.blob, self.inputs_off + 4 * i).ok_or(Error::NoSuchTensor(i))
    }

    pub(crate) fn output_index(&self, i: usize) -> Result<u32> {
        if i >= self.n_outputs {
            return Err(Error::NoSuchTensor(i));
        }
        u32_at(self.blob, self.outputs_off + 4 * i).ok_or(Error::NoSuchTensor(i))
    }

    /// Number of state pairs (tensors kept from one invoke to the next;
    /// see [`crate::format`]).
    pub fn num_state(&self) -> usize {
        self.n_state
    }

    /// State pair `i` as tensor indices: (state, next state).
    pub(crate) fn state_index(&self, i: usize) -> Result<(u32, u32)> {
        if i >= self.n_state {
            return Err(Error::NoSuchTensor(i));
        }
        let rec = self.state_off + STATE_RECORD_BYTES * i;
        match (u32_at(self.blob, rec), u32_at(self.blob, rec + 4)) {
            (Some(s), Some(n)) => Ok((s, n)),
            _ => Err(Error::NoSuchTensor(i)),
        }
    }

    /// State pair `i`: the state tensor the ops read, and the tensor whose
    /// bytes from [`Self::state_source_offset`] are copied into it when an
    /// invoke ends.
    pub fn state_info(&self, i: usize) -> Result<(TensorInfo<'a>, TensorInfo<'a>)> {
        let (s, n) = self.state_index(i)?;
        Ok((self.tensor(s)?, self.tensor(n)?))
    }

    /// The byte offset in state pair `i`'s next state of what is copied
    /// into the state (see [`crate::format`]).
    pub fn state_source_offset(&self, i: usize) -> Result<usize> {
        if i >= self.n_state {
            return Err(Error::NoSuchTensor(i));
        }
        u32_at(self.blob, self.state_off + STATE_RECORD_BYTES * i + 8)
            .map(|v| v as usize)
            .ok_or(Error::NoSuchTensor(i))
    }

    /// Whether tensor `t` is the state tensor of a state pair.
    pub(crate) fn is_state(&self, t: u32) -> Result<bool> {
        for i in 0..self.n_state {
            if self.state_index(i)?.0 == t {
                return Ok(true);
            }
        }
        Ok(false)
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
    ///
    /// Every op asks for its tensors on every invoke, so this is the fast
    /// path: [`Self::load`] checked every record already (a `Model` only
    /// comes from it, and the blob it borrows cannot change), so the
    /// fields are decoded without checking them again. Lookups stay
    /// fallible; nothing here can panic.
    pub fn tensor(&self, t: u32) -> Result<TensorInfo<'a>> {
        let bad = |reason| Error::BadTensor { tensor: t, reason };
        if t as usize >= self.n_tensors {
            return Err(bad("index out of range"));
        }
        let base = self.tensors_off + t as usize * TENSOR_RECORD_BYTES;
        let rec: &[u8; TENSOR_RECORD_BYTES] = self
            .blob
            .get(base..base + TENSOR_RECORD_BYTES)
            .and_then(|r| r.try_into().ok())
            .ok_or(bad("record out of range"))?;
        // Constant offsets into a fixed-size array: no bounds to fail.
        let word = |o: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&rec[o..o + 4]);
            u32::from_le_bytes(w)
        };
        let dtype = DType::from_u8(rec[0]).ok_or(bad("unknown dtype"))?;
        let storage = Storage::from_u8(rec[1]).ok_or(bad("unknown storage"))?;
        let rank = (rec[2] as usize).min(MAX_RANK);
        let mut dims = [0usize; MAX_RANK];
        for (i, d) in dims.iter_mut().enumerate().take(rank) {
            *d = word(4 + 4 * i) as usize;
        }
        let scale = f32::from_bits(word(36));
        let quant = (scale != 0.0).then_some(Quant {
            scale,
            zero_point: word(40) as i32,
        });
        let alias = word(52);
        let (from, to) = (word(56), word(60));
        let info = TensorInfo {
            index: t,
            dtype,
            storage,
            rank,
            dims_raw: dims,
            offset: word(28) as usize,
            size: word(32) as usize,
            quant,
            name: self
                .string(word(44) as usize, word(48) as usize)
                .unwrap_or(""),
            alias_of: (alias != NO_TENSOR).then_some(alias),
            live: (storage == Storage::Arena
                && alias == NO_TENSOR
                && !(from == NOT_LIVE && to == NOT_LIVE))
                .then_some((from, to)),
        };
        // Every test build checks the fast decode against the checked one.
        debug_assert_eq!(Ok(info), self.tensor_checked(t));
        Ok(info)
    }

    /// The element type of tensor `t`, read without decoding the rest of
    /// its record (the kernel choice runs before every op).
    pub(crate) fn tensor_dtype(&self, t: u32) -> Result<DType> {
        let bad = |reason| Error::BadTensor { tensor: t, reason };
        if t as usize >= self.n_tensors {
            return Err(bad("index out of range"));
        }
        let base = self.tensors_off + t as usize * TENSOR_RECORD_BYTES;
        let byte = *self.blob.get(base).ok_or(bad("record out of range"))?;
        DType::from_u8(byte).ok_or(bad("unknown dtype"))
    }

    /// Description of op `o`.
    pub fn op(&self, o: u32) -> Result<OpInfo<'a>> {
        self.op_checked(o)
    }

    fn string(&self, off: usize, len: usize) -> Option<&'a str> {
        self.names.get(range(off, len, self.names.len())?)
    }

    pub(crate) fn tensor_checked(&self, t: u32) -> Result<TensorInfo<'a>> {
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
        let rank = rec[2] as usize;
        if rank > MAX_RANK {
            return Err(bad("rank above 6"));
        }
        if rec[3] != 0 {
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
                DType::U16 => (0, u16::MAX as i32),
                DType::I32 => (i32::MIN, i32::MAX),
                d if d.is_float() => return Err(bad("float tensor with quantization parameters")),
                _ => return Err(bad("quantization parameters on an edge type")),
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
        let from = u32_at(rec, 56).ok_or(bad("record out of range"))?;
        let to = u32_at(rec, 60).ok_or(bad("record out of range"))?;
        let live = if storage != Storage::Arena || alias_of.is_some() {
            if from != 0 || to != 0 {
                return Err(bad("lifetime on a tensor that does not own arena bytes"));
            }
            None
        } else if from == NOT_LIVE && to == NOT_LIVE {
            None
        } else if from > to || to as usize > self.n_ops + 1 {
            return Err(bad("recorded lifetime out of range"));
        } else {
            Some((from, to))
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
            live,
        })
    }

    pub(crate) fn op_checked(&self, o: u32) -> Result<OpInfo<'a>> {
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
