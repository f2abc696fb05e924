//! Ember model compiler: ONNX → compiled model blob.
//!
//! Everything that can be decided before the device runs is decided here:
//! shapes, layout (NHWC), operator fusion (QDQ patterns → integer ops,
//! activations into their producer, BatchNormalization into convolutions),
//! requantization constants, weight layout and the arena plan.
//! [`supported_ops`] lists the ONNX operators it accepts.
//!
//! ```no_run
//! let out = ember_compiler::compile_file("kws_int8_qdq.onnx", &Default::default())?;
//! std::fs::write("kws.ember", &out.blob)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
mod fuse;
pub mod ir;
mod lower;
pub mod plan;
pub mod quantize;
pub mod select;
pub mod sign;
pub mod state;
pub mod stream;
pub mod tensor;
mod write;

use std::collections::HashMap;

use ember_runtime::Rounding;
pub use error::{CompileError, Result};
pub use lower::op_table::{supported_ops, OpSupport};
use tract_onnx::prelude::Framework;

/// Compiler options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Requantization semantics; `None` picks from the model's producer:
    /// onnxruntime's quantizer → [`Rounding::OnnxFloat`], anything else
    /// (TFLite-converted models) → [`Rounding::TfliteFixedPoint`].
    pub rounding: Option<Rounding>,
    /// Fixed shapes for graph inputs with symbolic dimensions.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// The core the blob is for: picks the kernel variants.
    pub target: select::Target,
    /// Leave out the int16 copies of convolution filters some targets'
    /// kernels read (Cortex-M DSP, Cortex-A NEON): a smaller blob (those
    /// filters take a third of the flash), slower convolutions.
    pub no_packed_weights: bool,
    /// The most memory the compiler may use for the model's data: the ONNX
    /// file, constants it folds (checked before each is allocated) and the
    /// constants of the result. `None`: [`DEFAULT_MAX_MEMORY`].
    pub max_memory: Option<usize>,
    /// Called as the compiler goes (a progress bar's feed); `None`: silent.
    pub progress: Option<Progress>,
    /// State pairs to keep between invokes (see [`state`]).
    pub state: state::StateSpec,
    /// Turn a model that slides a window over time into one that takes a
    /// frame per invoke (see [`stream`]).
    pub stream: Option<stream::StreamAxis>,
}

/// A progress callback: `(stage, done, total)` — the ONNX nodes lowered
/// (`"lowering"`), then the passes after (`"finishing"`: kernel selection,
/// planning, writing, checking).
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<ProgressFn>);

/// What a [`Progress`] calls: `(stage, done, total)`.
pub type ProgressFn = dyn Fn(&str, u64, u64) + Send + Sync;

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// The compiler's memory budget when [`Options::max_memory`] is not set.
pub const DEFAULT_MAX_MEMORY: usize = 2 << 30;

impl Options {
    fn budget(&self) -> u64 {
        self.max_memory.unwrap_or(DEFAULT_MAX_MEMORY) as u64
    }

    /// Tells the progress callback, if any, where the compiler is.
    fn report(&self, stage: &str, done: u64, total: u64) {
        if let Some(p) = &self.progress {
            (p.0)(stage, done, total);
        }
    }
}

/// `Err` when `what` needs more than the budget of `opts`.
fn check_budget(opts: &Options, what: &str, bytes: u64) -> Result<()> {
    if bytes > opts.budget() {
        return Err(CompileError::Unsupported {
            op_type: "model".into(),
            node: what.into(),
            what: format!(
                "{what} needs {bytes} bytes, over the memory budget of {} bytes (max_memory, --max-memory)",
                opts.budget()
            ),
        });
    }
    Ok(())
}

/// A compiled model.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The blob, ready to be written to a file or flashed.
    pub blob: Vec<u8>,
    /// Arena bytes it needs.
    pub arena_bytes: usize,
    /// Semantics used.
    pub rounding: Rounding,
    /// What streaming conversion did (with [`Options::stream`]).
    pub stream: Option<stream::StreamReport>,
}

/// Reads and compiles an ONNX file.
pub fn compile_file(path: impl AsRef<std::path::Path>, opts: &Options) -> Result<Compiled> {
    let path = path.as_ref();
    let io = |source| CompileError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    check_budget(opts, "reading the ONNX file", len)?;
    let bytes = std::fs::read(path).map_err(|source| CompileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    compile(&bytes, opts)
}

/// The opset assumed for a model that does not declare the default domain.
const DEFAULT_OPSET: i64 = 13;
/// The newest default-domain opset Ember accepts (the newest its
/// conformance data uses); operators' meanings may change in a later one,
/// so a model declaring it is refused.
const MAX_OPSET: i64 = 28;

/// Compiles an ONNX model held in memory.
pub fn compile(onnx: &[u8], opts: &Options) -> Result<Compiled> {
    lower::shape::set_fold_budget(opts.budget());
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &onnx[..])
        .map_err(|e| CompileError::Malformed(format!("not a readable ONNX protobuf: {e}")))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| CompileError::Malformed("the model has no graph".into()))?;
    if let Some(op) = proto.opset_import.iter().find(|o| {
        (o.domain.is_empty() || o.domain == "ai.onnx") && !(7..=MAX_OPSET).contains(&o.version)
    }) {
        return Err(CompileError::Malformed(format!(
            "opset {} is not one Ember knows (it reads opsets 7 to {MAX_OPSET})",
            op.version
        )));
    }
    let rounding = opts.rounding.unwrap_or_else(|| {
        let p = proto.producer_name.to_ascii_lowercase();
        if p.contains("onnx.quantize") || p.contains("onnxruntime") {
            Rounding::OnnxFloat
        } else {
            Rounding::TfliteFixedPoint
        }
    });
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    if outputs.is_empty() {
        return Err(CompileError::Malformed("the graph has no outputs".into()));
    }
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(DEFAULT_OPSET, |o| o.version);
    let mut g = lower::Lowerer::new(graph, rounding, opset, &opts.input_shapes)?
        .run(&outputs, &|d, n| opts.report("lowering", d, n))?;
    state::bind(&mut g, &opts.state)?;
    let stream = opts
        .stream
        .map(|axis| stream::convert(&mut g, axis))
        .transpose()?;
    if let Some(t) = g
        .tensors
        .iter()
        .find(|t| t.dims.len() > ember_runtime::format::MAX_RANK)
    {
        return Err(CompileError::Unsupported {
            op_type: "tensor".into(),
            node: t.name.clone(),
            what: format!(
                "rank {} (Ember supports at most {} dimensions)",
                t.dims.len(),
                ember_runtime::format::MAX_RANK
            ),
        });
    }
    let constants: u64 = g
        .tensors
        .iter()
        .filter_map(|t| t.data.as_ref())
        .map(|d| d.len() as u64)
        .sum();
    check_budget(opts, "the model's constants", constants)?;
    // The blob stores dims, sizes and offsets in 32 bits: refuse what does
    // not fit instead of writing it truncated.
    for t in &g.tensors {
        let bytes = t
            .dims
            .iter()
            .try_fold(t.dtype.size() as u64, |a, &d| a.checked_mul(d as u64));
        if bytes.is_none_or(|b| b > u32::MAX as u64) {
            return Err(CompileError::Unsupported {
                op_type: "tensor".into(),
                node: t.name.clone(),
                what: format!(
                    "shape {:?} of {} takes {} (Ember's tensors hold at most 4 GiB)",
                    t.dims,
                    t.dtype.name(),
                    bytes.map_or("more than 2^64 bytes".into(), |b| format!("{b} bytes"))
                ),
            });
        }
    }
    opts.report("finishing", 0, 4);
    select::select(&mut g, opts.target, rounding, !opts.no_packed_weights);
    // After selection, which re-encodes no params: the table rides behind them.
    fuse::tables_into_convolutions(&mut g);
    g.prune();
    opts.report("finishing", 1, 4);
    let p = plan::plan(&g);
    opts.report("finishing", 2, 4);
    let blob = write::write(&g, &p, rounding);
    opts.report("finishing", 3, 4);
    // The runtime's validator is the judge of what we wrote.
    let aligned = AlignedBlob::new(&blob);
    let model = ember_runtime::Model::load(aligned.bytes())
        .map_err(|e| CompileError::Internal(e.to_string()))?;
    model
        .check_arena_plan(&mut vec![0; model.arena_plan_scratch_bytes()])
        .map_err(|e| CompileError::Internal(e.to_string()))?;
    opts.report("finishing", 4, 4);
    Ok(Compiled {
        blob,
        arena_bytes: p.arena_bytes,
        rounding,
        stream,
    })
}

/// A 16-byte aligned copy of a blob (the runtime reads constants in place
/// and needs the alignment the compiler planned for).
#[derive(Clone, Debug)]
pub struct AlignedBlob {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBlob {
    /// Copies `bytes` into aligned storage.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        let dst: &mut [u8] = bytemuck_bytes_mut(&mut words);
        dst[..bytes.len()].copy_from_slice(bytes);
        AlignedBlob {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck_bytes(&self.words)[..self.len]
    }
}

/// An aligned, zeroed arena of `len` bytes, or `None` if the memory is not
/// there (instead of aborting the process).
pub fn try_aligned_arena(len: usize) -> Option<AlignedBlob> {
    let n = len.div_ceil(16).max(1);
    let mut words = Vec::new();
    words.try_reserve_exact(n).ok()?;
    words.resize(n, 0u128);
    Some(AlignedBlob { words, len })
}

/// An aligned, zeroed arena of at least `len` bytes.
pub fn aligned_arena(len: usize) -> AlignedBlob {
    AlignedBlob {
        words: vec![0u128; len.div_ceil(16).max(1)],
        len,
    }
}

impl AlignedBlob {
    /// The bytes, mutably.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut bytemuck_bytes_mut(&mut self.words)[..len]
    }
}

fn bytemuck_bytes(w: &[u128]) -> &[u8] {
    bytemuck::cast_slice(w)
}

fn bytemuck_bytes_mut(w: &mut [u128]) -> &mut [u8] {
    bytemuck::cast_slice_mut(w)
}
