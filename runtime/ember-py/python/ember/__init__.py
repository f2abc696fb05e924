"""Ember from Python: compile ONNX models for ARM edge boards, run them on
NumPy arrays, look inside them, and write the HTML report.

The model you get is exactly the blob a board runs: ``Model.run`` executes
it with Ember's own kernels (the host's build of them), so its outputs are
the device's, bit for bit on integer models.

>>> import ember, numpy as np
>>> kws = ember.compile("kws_int8_qdq.onnx", target="cortex-m55")
>>> kws.inputs
(TensorSpec(name='input_1', dtype=dtype('int8'), shape=(1, 49, 10, 1), tensor_dtype='i8'),)
>>> (scores,) = kws.run(np.zeros((1, 49, 10, 1), np.int8))
>>> kws.inspect()["arena_bytes"]
>>> kws.save("kws.ember")          # flash it, or ember.load() it again
>>> kws.report("kws.html")         # graph, arena plan, per-layer bars

Every failure is an :class:`ember.Error` whose message is the ``ember``
command line's one-line error; arguments Ember refuses (an array of the
wrong dtype or shape, an unknown target) raise :class:`InvalidArgument`,
which is a ``ValueError`` too.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ._ember import DEFAULT_MAX_MEMORY, ArgumentError, Error, NativeModel, compile_blob

__all__ = [
    "Error",
    "InvalidArgument",
    "Model",
    "TARGETS",
    "TensorSpec",
    "compile",
    "load",
]

#: The cores ``compile`` can build for (``target=``).
TARGETS: Tuple[str, ...] = (
    "generic",
    "reference",
    "cortex-m4",
    "cortex-m7",
    "cortex-m33",
    "cortex-m55",
    "cortex-a53",
    "cortex-a76",
)

class InvalidArgument(ArgumentError, ValueError):
    """An argument Ember refuses: an input array of the wrong dtype or shape
    (nothing is cast or reshaped silently), NaN in a float input, the wrong
    number of inputs, an unknown target or rounding."""


@contextlib.contextmanager
def _arguments():
    """Raises the native module's argument errors as :class:`InvalidArgument`."""
    try:
        yield
    except ArgumentError as e:
        if isinstance(e, InvalidArgument):
            raise
        raise InvalidArgument(str(e)) from None


#: A model file's path, or its bytes.
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]


class TensorSpec(NamedTuple):
    """One graph input or output."""

    #: The tensor's name in the model.
    name: str
    #: The NumPy dtype of the arrays it takes (input) or gives (output);
    #: int32 inputs take int64 arrays too.
    dtype: np.dtype
    #: Its shape.
    shape: Tuple[int, ...]
    #: The tensor's own Ember dtype (``i8``, ``f32``, ``f16``, …): 16- and
    #: 8-bit float tensors are exchanged as float32.
    tensor_dtype: str


def _read(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        with open(os.fspath(source), "rb") as f:
            return f.read()
    except OSError as e:
        raise Error(f"cannot read {os.fspath(source)}: {e.strerror}") from None


def _specs(raw: List[Tuple[str, str, str, List[int]]]) -> Tuple[TensorSpec, ...]:
    return tuple(TensorSpec(n, np.dtype(h), tuple(s), t) for n, t, h, s in raw)


def _pack(a: Any) -> Tuple[str, List[int], bytes]:
    a = np.asarray(a)
    le = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    return (a.dtype.name, list(a.shape), np.ascontiguousarray(a, dtype=le).tobytes())


def _unpack(o: Tuple[str, List[int], bytes]) -> np.ndarray:
    dtype, shape, data = o
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


class Model:
    """A compiled model, validated through (every byte of the blob and its
    arena plan), with the arena it runs in.

    Make one with :func:`compile` or :func:`load`.
    """

    def __init__(self, blob: bytes, *, name: str = "model", max_memory: int = DEFAULT_MAX_MEMORY):
        """Loads a compiled blob (the bytes of an ``.ember`` file)."""
        self._native = NativeModel(bytes(blob), max_memory)
        self.name = name
        #: The graph inputs, in the order :meth:`run` takes them.
        self.inputs: Tuple[TensorSpec, ...] = _specs(self._native.inputs())
        #: The graph outputs, in the order :meth:`run` returns them.
        self.outputs: Tuple[TensorSpec, ...] = _specs(self._native.outputs())
        #: The state kept between runs (compiled with ``state=``): each
        #: state tensor and the name of the output that feeds it.
        self.state: Tuple[Tuple[TensorSpec, str], ...] = tuple(
            (_specs([raw])[0], nxt) for raw, nxt in self._native.state()
        )

    def __repr__(self) -> str:
        ins = ", ".join(f"{t.name}: {t.tensor_dtype}{list(t.shape)}" for t in self.inputs)
        outs = ", ".join(f"{t.name}: {t.tensor_dtype}{list(t.shape)}" for t in self.outputs)
        return f"<ember.Model {self.name!r} ({ins}) -> ({outs}), {len(self.blob)} bytes>"

    @property
    def blob(self) -> bytes:
        """The compiled blob: what ``save`` writes and a board flashes."""
        return self._native.blob()

    def run(self, *arrays: Any, allow_nonfinite: bool = False) -> List[np.ndarray]:
        """Runs the model once and returns its outputs, in graph order.

        Takes one array per graph input, in graph order, each of the input's
        shape and dtype (see :attr:`inputs`); nothing is cast or reshaped
        silently. Float inputs holding NaN or infinity are refused unless
        ``allow_nonfinite``. The GIL is released while the model runs.
        """
        if len(arrays) != len(self.inputs):
            raise InvalidArgument(f"the model has {len(self.inputs)} inputs, {len(arrays)} given")
        with _arguments():
            outs = self._native.run([_pack(a) for a in arrays], allow_nonfinite)
        return [_unpack(o) for o in outs]

    def reset_state(self) -> None:
        """Starts the model's state over: the next :meth:`run` or
        :meth:`run_stream` begins from zero (the zero point for a quantized
        state), as a new model would. Without state, does nothing."""
        self._native.reset_state()

    def run_stream(
        self, *recordings: Any, axis: Optional[int] = None, allow_nonfinite: bool = False
    ) -> List[np.ndarray]:
        """Feeds whole recordings through the model one frame at a time
        (``ember run --stream``) and returns each output's frames stacked
        along a new first axis.

        Each recording has its input's shape except along the time axis,
        where it is a whole number of frames long (the one axis where it
        differs, or ``axis``). The state (if the model keeps any) goes on
        from the last run; :meth:`reset_state` first to start over.
        """
        if len(recordings) != len(self.inputs):
            raise InvalidArgument(
                f"the model has {len(self.inputs)} inputs, {len(recordings)} given"
            )
        with _arguments():
            outs = self._native.run_stream([_pack(a) for a in recordings], axis, allow_nonfinite)
        return [_unpack(o) for o in outs]

    def inspect(self) -> Dict[str, Any]:
        """The model layer by layer: the same content as ``ember inspect
        --json`` (``blob_bytes``, ``arena_bytes``, ``macs``, ``inputs``,
        ``outputs``, ``layers`` with op, kernel, shapes, MACs, weight bytes
        and arena offset of each)."""
        return json.loads(self._native.inspect_json())

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the blob to ``path`` (an ``.ember`` file)."""
        with open(os.fspath(path), "wb") as f:
            f.write(self.blob)

    def report(
        self,
        path: Union[str, "os.PathLike[str]"],
        bench: Sequence[Union[str, "os.PathLike[str]"]] = (),
    ) -> None:
        """Writes ``ember report``'s self-contained HTML page to ``path``:
        summary, graph, arena plan, per-layer bars and flash; ``bench``
        lists ``cargo xtask bench --json`` result files for per-board
        instructions, flash and RAM."""
        texts = []
        for b in bench:
            try:
                with open(os.fspath(b), encoding="utf-8") as f:
                    texts.append(f.read())
            except OSError as e:
                raise Error(f"cannot read {os.fspath(b)}: {e.strerror}") from None
        page = self._native.report_html(self.name, texts)
        with open(os.fspath(path), "w", encoding="utf-8") as f:
            f.write(page)


def _name(source: Source) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "model"
    return os.path.splitext(os.path.basename(os.fspath(source)))[0]


def compile(
    model: Source,
    *,
    target: str = "generic",
    shapes: Optional[Mapping[str, Sequence[int]]] = None,
    rounding: Optional[str] = None,
    packed_weights: bool = True,
    quantize: Optional[str] = None,
    calibrate: Optional[np.ndarray] = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    state: Union[str, Sequence[str], None] = None,
    stream: Union[bool, int] = False,
) -> Model:
    """Compiles an ONNX model (a path or the file's bytes) for ``target``.

    - ``target``: one of :data:`TARGETS`; picks the kernel variants and
      weight layouts.
    - ``shapes``: fixed shapes for inputs with symbolic dimensions, e.g.
      ``{"input_ids": (1, 128)}``.
    - ``rounding``: ``"tflite"`` or ``"onnx"`` requantization; by default
      from the model's producer.
    - ``packed_weights``: keep the int16 filter copies the Cortex-M DSP and
      NEON convolutions read (faster, bigger).
    - ``quantize``/``calibrate``: quantizing a float model needs static
      quantization in the compiler, which Ember does not have yet; pass an
      int8 QDQ model instead. Given, they raise :class:`Error`.
    - ``max_memory``: the most memory the compiler and the arena may use.
    - ``state``: keep state between runs, as ``ember compile --state``:
      ``"h_out=h_in"`` (the output that feeds the input on the next
      frame), a list of them, or ``"auto"``.
    - ``stream``: as ``ember compile --stream``: a model that slides a
      window over time becomes one that takes a frame per run (``True``:
      the time axis found from the input's shape; an int: that axis).

    The GIL is released while the compiler works.
    """
    if quantize is not None or calibrate is not None:
        raise Error(
            "quantize=/calibrate=: the compiler cannot quantize float models yet; "
            "pass an int8 QDQ model (e.g. from onnxruntime's quantize_static)"
        )
    onnx = _read(model)
    dims = {k: [int(d) for d in v] for k, v in (shapes or {}).items()}
    with _arguments():
        blob = compile_blob(
            onnx,
            target,
            dims,
            rounding,
            packed_weights,
            max_memory,
            _state_list(state),
            stream is not False,
            None if isinstance(stream, bool) else int(stream),
        )
    return Model(blob, name=_name(model), max_memory=max_memory)


def _state_list(state: Union[str, Sequence[str], None]) -> List[str]:
    if state is None:
        return []
    if isinstance(state, str):
        return [state]
    return [str(s) for s in state]


def load(model: Source, *, max_memory: int = DEFAULT_MAX_MEMORY) -> Model:
    """Loads a compiled ``.ember`` blob (a path or its bytes); an ``.onnx``
    path is compiled with default options."""
    if not isinstance(model, (bytes, bytearray, memoryview)) and os.fspath(model).endswith(".onnx"):
        return compile(model, max_memory=max_memory)
    return Model(_read(model), name=_name(model), max_memory=max_memory)
