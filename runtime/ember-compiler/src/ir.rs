//! Ember's own graph: the lowered ops in execution order over physical
//! tensors, before memory planning and serialization.

use ember_runtime::format::OpCode;
use ember_runtime::ops::Params;
use ember_runtime::DType;

/// Index of a tensor in [`Graph::tensors`].
pub type TId = usize;

/// A tensor of the lowered graph.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Name (from the ONNX value it implements).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Physical dims (NHWC for 4-D activations).
    pub dims: Vec<usize>,
    /// Quantization (scale, zero point).
    pub quant: Option<(f32, i32)>,
    /// Constant bytes (little-endian), or `None` for an arena tensor.
    pub data: Option<Vec<u8>>,
    /// This tensor views the bytes of another (a free reshape).
    pub alias_of: Option<TId>,
}

impl Tensor {
    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.dims.iter().product::<usize>() * self.dtype.size()
    }
}

/// An op of the lowered graph.
#[derive(Clone, Debug)]
pub struct Op {
    /// Operator.
    pub opcode: OpCode,
    /// Inputs (`None` = absent optional input).
    pub inputs: Vec<Option<TId>>,
    /// Output.
    pub output: TId,
    /// Params, as words: written by the op's `Params::encode` (see
    /// `ember_runtime::ops`), read back with `Params::from_words`.
    pub params: Vec<i32>,
    /// Name (the ONNX node it came from).
    pub name: String,
    /// Kernel variant (`ember_runtime::format::REFERENCE_VARIANT`, or one
    /// of the `VARIANT_*` of its operator in `ember_runtime::ops`); chosen by
    /// [`crate::select`] after lowering.
    pub variant: u16,
}

impl Op {
    /// Replaces the op's params.
    pub fn set_params<P: Params>(&mut self, params: &P) {
        self.params.clear();
        params.encode(&mut self.params);
    }
}

/// The lowered graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// All tensors.
    pub tensors: Vec<Tensor>,
    /// Ops in execution order.
    pub ops: Vec<Op>,
    /// Graph inputs.
    pub inputs: Vec<TId>,
    /// Graph outputs.
    pub outputs: Vec<TId>,
    /// State pairs: each state is read by the ops and kept between
    /// invokes (see [`crate::state`], [`crate::stream`]).
    pub state: Vec<StatePair>,
}

/// A state tensor and where its next value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatePair {
    /// The state the ops read.
    pub state: TId,
    /// The tensor copied into it when an invoke ends.
    pub next: TId,
    /// Byte offset in `next` of the copied bytes (0: `next` has the
    /// state's shape).
    pub from_byte: usize,
}

impl Graph {
    /// Adds an arena tensor.
    pub fn activation(
        &mut self,
        name: &str,
        dtype: DType,
        dims: Vec<usize>,
        quant: Option<(f32, i32)>,
    ) -> TId {
        self.tensors.push(Tensor {
            name: name.to_string(),
            dtype,
            dims,
            quant,
            data: None,
            alias_of: None,
        });
        self.tensors.len() - 1
    }

    /// Adds a constant tensor.
    pub fn constant(
        &mut self,
        name: &str,
        dtype: DType,
        dims: Vec<usize>,
        quant: Option<(f32, i32)>,
        data: Vec<u8>,
    ) -> TId {
        debug_assert_eq!(data.len(), dims.iter().product::<usize>() * dtype.size());
        self.tensors.push(Tensor {
            name: name.to_string(),
            dtype,
            dims,
            quant,
            data: Some(data),
            alias_of: None,
        });
        self.tensors.len() - 1
    }

    /// Adds an f32 constant.
    pub fn const_f32(&mut self, name: &str, dims: Vec<usize>, v: &[f32]) -> TId {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(name, DType::F32, dims, None, data)
    }

    /// Adds an i32 constant.
    pub fn const_i32(&mut self, name: &str, dims: Vec<usize>, v: &[i32]) -> TId {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(name, DType::I32, dims, None, data)
    }

    /// Adds an i16 constant.
    pub fn const_i16(&mut self, name: &str, dims: Vec<usize>, v: &[i16]) -> TId {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(name, DType::I16, dims, None, data)
    }

    /// Adds an i8 constant.
    pub fn const_i8(
        &mut self,
        name: &str,
        dims: Vec<usize>,
        q: Option<(f32, i32)>,
        v: &[i8],
    ) -> TId {
        let data = v.iter().map(|&x| x as u8).collect();
        self.constant(name, DType::I8, dims, q, data)
    }

    /// Adds a view of `src` with other dims (no data movement).
    pub fn alias(&mut self, src: TId, name: &str, dims: Vec<usize>) -> TId {
        let root = self.tensors[src].alias_of.unwrap_or(src);
        let t = self.tensors[src].clone();
        self.tensors.push(Tensor {
            name: name.to_string(),
            dims,
            alias_of: if t.data.is_some() { None } else { Some(root) },
            ..t
        });
        self.tensors.len() - 1
    }

    /// Sets the quantization of `t` and of every tensor sharing its bytes
    /// (its root and the root's other views), so that a graph input seen
    /// through a reshape still reports its quantization.
    pub fn set_quant(&mut self, t: TId, q: Option<(f32, i32)>) {
        let root = self.tensors[t].alias_of.unwrap_or(t);
        if self.tensors[root].data.is_some() {
            self.tensors[t].quant = q;
            return;
        }
        for (i, x) in self.tensors.iter_mut().enumerate() {
            if i == root || x.alias_of == Some(root) {
                x.quant = q;
            }
        }
    }

    /// Drops tensors nothing refers to (constants left behind by fusion or
    /// replaced by kernel selection) and renumbers the rest, so the blob
    /// stores only what runs.
    pub fn prune(&mut self) {
        let n = self.tensors.len();
        let mut used = vec![false; n];
        for op in &self.ops {
            used[op.output] = true;
            for t in op.inputs.iter().flatten() {
                used[*t] = true;
            }
        }
        for &t in self.inputs.iter().chain(&self.outputs) {
            used[t] = true;
        }
        for p in &self.state {
            used[p.state] = true;
            used[p.next] = true;
        }
        for t in 0..n {
            if used[t] {
                if let Some(r) = self.tensors[t].alias_of {
                    used[r] = true;
                }
            }
        }
        let mut map = vec![usize::MAX; n];
        let mut kept = Vec::with_capacity(n);
        for (t, tensor) in std::mem::take(&mut self.tensors).into_iter().enumerate() {
            if used[t] {
                map[t] = kept.len();
                kept.push(tensor);
            }
        }
        for t in &mut kept {
            t.alias_of = t.alias_of.map(|r| map[r]);
        }
        self.tensors = kept;
        for op in &mut self.ops {
            op.output = map[op.output];
            for t in op.inputs.iter_mut().flatten() {
                *t = map[*t];
            }
        }
        for t in self.inputs.iter_mut().chain(self.outputs.iter_mut()) {
            *t = map[*t];
        }
        for p in &mut self.state {
            (p.state, p.next) = (map[p.state], map[p.next]);
        }
    }

    /// Appends an op; its params are written by the `Params` type the
    /// runtime reads them back with.
    pub fn push<P: Params>(
        &mut self,
        opcode: OpCode,
        inputs: Vec<Option<TId>>,
        output: TId,
        params: &P,
        name: &str,
    ) {
        let mut words = Vec::new();
        params.encode(&mut words);
        self.ops.push(Op {
            opcode,
            inputs,
            output,
            params: words,
            name: name.to_string(),
            variant: 0,
        });
    }
}
