//! `ember._ember`: the native half of Ember's Python package.
//!
//! It deals in bytes, names and shapes only; the Python half
//! (`python/ember/__init__.py`) turns NumPy arrays into `(dtype, shape,
//! bytes)` and back, so the module needs nothing but the stable ABI
//! (abi3) and no NumPy headers. Every rule about what an input takes lives
//! in the CLI's library ([`ember_cli::host_array`]), so the Python package
//! and `ember run` accept and refuse the same arrays with the same words.

use std::collections::HashMap;
use std::sync::Mutex;

use ember_cli::host_array::HostArray;
use ember_compiler::select::Target;
use ember_compiler::{AlignedBlob, Options};
use ember_runtime::{Interpreter, Model, Rounding};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

create_exception!(
    _ember,
    Error,
    PyException,
    "A model Ember cannot compile, load or run: the message names the problem in one line."
);
create_exception!(
    _ember,
    ArgumentError,
    Error,
    "Arguments Ember refuses (an input's dtype or shape, an unknown target); the Python package raises it as ember.InvalidArgument, a ValueError too."
);

/// The CLI's one-line message of `e`.
fn line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// An `anyhow` error as an [`Error`] with the CLI's one-line message.
fn err(e: anyhow::Error) -> PyErr {
    Error::new_err(line(&e))
}

/// An `anyhow` error as an [`ArgumentError`].
fn arg_err(e: anyhow::Error) -> PyErr {
    ArgumentError::new_err(line(&e))
}

/// `(name, tensor dtype, NumPy dtype, shape)` of one graph input or
/// output: the tensor's Ember dtype (`i8`, `f16`, …) and the NumPy dtype it
/// is exchanged as.
type Spec = (String, String, String, Vec<usize>);

/// An array crossing to Python: `(NumPy dtype, shape, little-endian bytes)`.
type Packed<'py> = (String, Vec<usize>, Bound<'py, PyBytes>);

fn spec(t: ember_runtime::TensorInfo<'_>) -> Spec {
    (
        t.name.to_string(),
        t.dtype.name().to_string(),
        ember_cli::host_array::host_dtypes(t.dtype)[0].to_string(),
        t.dims().to_vec(),
    )
}

/// Compiles an ONNX model held in `onnx` and returns the blob. The GIL is
/// released while the compiler works.
#[pyfunction]
#[pyo3(signature = (onnx, target, shapes, rounding, packed_weights, max_memory, state, stream, stream_axis))]
#[allow(clippy::too_many_arguments)]
fn compile_blob(
    py: Python<'_>,
    onnx: Vec<u8>,
    target: &str,
    shapes: HashMap<String, Vec<usize>>,
    rounding: Option<&str>,
    packed_weights: bool,
    max_memory: usize,
    state: Vec<String>,
    stream: bool,
    stream_axis: Option<usize>,
) -> PyResult<Py<PyBytes>> {
    let target: Target = target
        .parse()
        .map_err(|e: String| arg_err(anyhow::anyhow!(e)))?;
    let rounding = match rounding {
        None => None,
        Some("tflite") => Some(Rounding::TfliteFixedPoint),
        Some("onnx") => Some(Rounding::OnnxFloat),
        Some(other) => {
            return Err(ArgumentError::new_err(format!(
                "unknown rounding '{other}' (expected tflite or onnx)"
            )))
        }
    };
    let mut opts = Options {
        target,
        rounding,
        input_shapes: shapes,
        no_packed_weights: !packed_weights,
        max_memory: Some(max_memory),
        progress: None,
        state: Default::default(),
        stream: stream.then_some(match stream_axis {
            Some(a) => ember_compiler::stream::StreamAxis::Axis(a),
            None => ember_compiler::stream::StreamAxis::Auto,
        }),
    };
    for s in &state {
        opts.state.add(s).map_err(|e| arg_err(anyhow::anyhow!(e)))?;
    }
    let blob = py
        .detach(|| ember_compiler::compile(&onnx, &opts))
        .map_err(|e| err(e.into()))?
        .blob;
    Ok(PyBytes::new(py, &blob).unbind())
}

/// A compiled model, checked through (its arena plan included), with the
/// arena it runs in.
#[pyclass(frozen, module = "ember._ember")]
struct NativeModel {
    blob: AlignedBlob,
    /// The arena and the state, kept between runs; the lock serialises
    /// runs from several Python threads.
    runner: Mutex<Runner>,
    /// The memory budget given when the model was made.
    max_memory: usize,
}

/// What a model keeps between runs.
struct Runner {
    arena: AlignedBlob,
    /// Each state tensor's bytes after the last run (empty: start over).
    state: Vec<Vec<u8>>,
}

impl Runner {
    /// An interpreter on the arena with the state the last run left.
    fn bind<'a>(&'a mut self, m: &'a Model<'a>) -> anyhow::Result<Interpreter<'a, 'a>> {
        let mut interp = Interpreter::new(m, self.arena.bytes_mut())?;
        for (i, saved) in self.state.iter().enumerate() {
            interp.state_mut(i)?.bytes.copy_from_slice(saved);
        }
        Ok(interp)
    }
}

/// Each state tensor's bytes, as `interp` leaves them.
fn saved_state(interp: &Interpreter<'_, '_>) -> anyhow::Result<Vec<Vec<u8>>> {
    (0..interp.model().num_state())
        .map(|i| Ok(interp.state(i)?.bytes.to_vec()))
        .collect()
}

impl NativeModel {
    /// The model in the blob (validated when the object was made; loading
    /// again is one linear pass).
    fn model(&self) -> anyhow::Result<Model<'_>> {
        Ok(Model::load(self.blob.bytes())?)
    }
}

impl NativeModel {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, Runner>> {
        self.runner
            .lock()
            .map_err(|_| Error::new_err("an earlier run panicked"))
    }
}

/// The arrays Python handed over, one per graph input, each of a dtype its
/// input takes (shapes are the caller's to check against the use).
fn host_inputs(
    m: &Model<'_>,
    inputs: &[(String, Vec<usize>, Vec<u8>)],
) -> PyResult<Vec<HostArray>> {
    if inputs.len() != m.num_inputs() {
        return Err(ArgumentError::new_err(format!(
            "the model has {} inputs, {} given",
            m.num_inputs(),
            inputs.len()
        )));
    }
    inputs
        .iter()
        .enumerate()
        .map(|(i, (dtype, shape, bytes))| {
            let info = m.input_info(i).map_err(|e| err(e.into()))?;
            ember_cli::host_array::check_dtype(&info, dtype)
                .and_then(|()| HostArray::from_le_bytes(dtype, shape, bytes))
                .map_err(|e| arg_err(e.context(format!("input {i} ('{}')", info.name))))
        })
        .collect()
}

/// Host arrays as `(dtype, shape, little-endian bytes)` for Python.
fn pack<'py>(py: Python<'py>, arrays: &[HostArray]) -> Vec<Packed<'py>> {
    arrays
        .iter()
        .map(|a| {
            (
                a.dtype_name().to_string(),
                a.shape().to_vec(),
                PyBytes::new(py, &a.to_le_bytes()),
            )
        })
        .collect()
}

#[pymethods]
impl NativeModel {
    /// Validates `blob` (every byte, and the arena plan) and allocates the
    /// model's arena within `max_memory` bytes.
    #[new]
    fn new(blob: &[u8], max_memory: usize) -> PyResult<Self> {
        let blob = AlignedBlob::new(blob);
        let m = Model::load(blob.bytes()).map_err(|e| err(e.into()))?;
        m.check_arena_plan(&mut vec![0; m.arena_plan_scratch_bytes()])
            .map_err(|e| err(e.into()))?;
        let n = m.arena_bytes();
        ember_cli::limits::check_against(
            "the model's arena",
            n as u64,
            max_memory as u64,
            "max_memory=",
        )
        .map_err(err)?;
        let arena = ember_compiler::try_aligned_arena(n)
            .ok_or_else(|| Error::new_err(format!("cannot allocate the model's {n}-byte arena")))?;
        Ok(NativeModel {
            blob,
            runner: Mutex::new(Runner {
                arena,
                state: vec![],
            }),
            max_memory,
        })
    }

    /// The blob's bytes.
    fn blob<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.blob.bytes())
    }

    /// [`Spec`] of each graph input, in order.
    fn inputs(&self) -> PyResult<Vec<Spec>> {
        let m = self.model().map_err(err)?;
        (0..m.num_inputs())
            .map(|i| Ok(spec(m.input_info(i).map_err(|e| err(e.into()))?)))
            .collect()
    }

    /// [`Spec`] of each graph output, in order.
    fn outputs(&self) -> PyResult<Vec<Spec>> {
        let m = self.model().map_err(err)?;
        (0..m.num_outputs())
            .map(|i| Ok(spec(m.output_info(i).map_err(|e| err(e.into()))?)))
            .collect()
    }

    /// Runs the model on `inputs`, one `(dtype, shape, little-endian bytes)`
    /// per graph input, and returns the outputs the same way. The GIL is
    /// released while the model runs.
    fn run<'py>(
        &self,
        py: Python<'py>,
        inputs: Vec<(String, Vec<usize>, Vec<u8>)>,
        allow_nonfinite: bool,
    ) -> PyResult<Vec<Packed<'py>>> {
        // The inputs' failures are the caller's arguments; the rest, the
        // model's.
        let outs = py.detach(|| -> PyResult<Vec<HostArray>> {
            let m = self.model().map_err(err)?;
            let arrays = host_inputs(&m, &inputs)?;
            let mut runner = self.lock()?;
            let runner = &mut *runner;
            let mut interp = runner.bind(&m).map_err(err)?;
            for (i, a) in arrays.iter().enumerate() {
                let info = m.input_info(i).map_err(|e| err(e.into()))?;
                interp
                    .input_mut(i)
                    .map_err(anyhow::Error::from)
                    .and_then(|mut dst| a.fill_input(&info, &mut dst, allow_nonfinite))
                    .map_err(|e| arg_err(e.context(format!("input {i} ('{}')", info.name))))?;
            }
            interp.invoke().map_err(|e| err(e.into()))?;
            let outs = (0..m.num_outputs())
                .map(|i| HostArray::from_output(&interp.output(i).map_err(|e| err(e.into()))?))
                .collect::<anyhow::Result<_>>()
                .map_err(err)?;
            let state = saved_state(&interp).map_err(err)?;
            runner.state = state;
            Ok(outs)
        })?;
        Ok(pack(py, &outs))
    }

    /// [`Spec`] of each state tensor, and the output that feeds it.
    fn state(&self) -> PyResult<Vec<(Spec, String)>> {
        let m = self.model().map_err(err)?;
        (0..m.num_state())
            .map(|i| {
                let (s, n) = m.state_info(i).map_err(|e| err(e.into()))?;
                Ok((spec(s), n.name.to_string()))
            })
            .collect()
    }

    /// Starts the state over (zero, or the zero point) for the next run.
    fn reset_state(&self) -> PyResult<()> {
        self.lock()?.state.clear();
        Ok(())
    }

    /// `ember run --stream`: each input a whole recording, fed a frame at
    /// a time from the current state; returns each output's frames stacked
    /// along a new first axis. The GIL is released meanwhile.
    #[pyo3(signature = (inputs, axis, allow_nonfinite))]
    fn run_stream<'py>(
        &self,
        py: Python<'py>,
        inputs: Vec<(String, Vec<usize>, Vec<u8>)>,
        axis: Option<usize>,
        allow_nonfinite: bool,
    ) -> PyResult<Vec<Packed<'py>>> {
        let outs = py.detach(|| -> PyResult<Vec<HostArray>> {
            let m = self.model().map_err(err)?;
            let recordings = host_inputs(&m, &inputs)?;
            let mut runner = self.lock()?;
            let runner = &mut *runner;
            let mut interp = runner.bind(&m).map_err(err)?;
            let opts = ember_cli::stream::StreamOptions {
                axis,
                allow_nonfinite,
                budget: (self.max_memory as u64, "max_memory="),
            };
            let outs =
                ember_cli::stream::run_stream(&mut interp, &recordings, &opts, &mut |_, _| {})
                    .map_err(arg_err)?;
            let state = saved_state(&interp).map_err(err)?;
            runner.state = state;
            Ok(outs.into_iter().map(|(_, a)| a).collect())
        })?;
        Ok(pack(py, &outs))
    }

    /// `ember inspect --json`'s text.
    fn inspect_json(&self) -> PyResult<String> {
        ember_cli::inspect::json(&self.model().map_err(err)?).map_err(err)
    }

    /// `ember report`'s page, titled `title`, with `cargo xtask bench
    /// --json` results (each a JSON text).
    fn report_html(&self, title: &str, bench: Vec<String>) -> PyResult<String> {
        let mut runs = vec![];
        for (i, text) in bench.iter().enumerate() {
            runs.extend(
                ember_cli::report::parse_bench(text)
                    .map_err(|e| err(e.context(format!("bench result {i}"))))?,
            );
        }
        ember_cli::report::html(&self.model().map_err(err)?, title, &runs).map_err(err)
    }
}

/// The native module.
#[pymodule]
fn _ember(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Error", m.py().get_type::<Error>())?;
    m.add("ArgumentError", m.py().get_type::<ArgumentError>())?;
    m.add_function(wrap_pyfunction!(compile_blob, m)?)?;
    m.add_class::<NativeModel>()?;
    m.add(
        "DEFAULT_MAX_MEMORY",
        ember_compiler::DEFAULT_MAX_MEMORY as u64,
    )?;
    Ok(())
}
