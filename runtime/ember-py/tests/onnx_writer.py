"""A few dozen lines of protobuf: enough of ONNX's ModelProto to write a
small float model for the tests (the venv has no `onnx` package).

Field numbers are those of onnx.proto.
"""

from typing import Dict, List, Sequence

import numpy as np

FLOAT = 1
INT64 = 7


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, messages)."""
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _int(num: int, v: int) -> bytes:
    return _varint(num << 3) + _varint(v)


def value(name: str, dims: Sequence[int], elem_type: int = FLOAT) -> bytes:
    """A ValueInfoProto of a tensor with fixed dims."""
    shape = b"".join(_field(1, _int(1, d)) for d in dims)
    tensor = _int(1, elem_type) + _field(2, shape)
    return _field(1, name.encode()) + _field(2, _field(1, tensor))


def initializer(name: str, a: np.ndarray) -> bytes:
    """A TensorProto holding `a` (float32 or int64) as raw data."""
    a = np.ascontiguousarray(a)
    elem = {np.dtype("float32"): FLOAT, np.dtype("int64"): INT64}[a.dtype]
    dims = b"".join(_int(1, d) for d in a.shape)
    raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
    return dims + _int(2, elem) + _field(8, name.encode()) + _field(9, raw)


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], ints: Dict[str, int] = {}) -> bytes:
    """A NodeProto with INT attributes."""
    body = b"".join(_field(1, i.encode()) for i in inputs)
    body += b"".join(_field(2, o.encode()) for o in outputs)
    body += _field(3, f"{op}_{outputs[0]}".encode()) + _field(4, op.encode())
    for k, v in ints.items():
        body += _field(5, _field(1, k.encode()) + _int(3, v & (2**64 - 1)) + _int(20, 2))
    return body


def model(
    nodes: List[bytes],
    inputs: List[bytes],
    outputs: List[bytes],
    inits: List[bytes],
    opset: int = 14,
) -> bytes:
    """The serialized ModelProto."""
    graph = b"".join(_field(1, n) for n in nodes) + _field(2, b"g")
    graph += b"".join(_field(5, t) for t in inits)
    graph += b"".join(_field(11, v) for v in inputs)
    graph += b"".join(_field(12, v) for v in outputs)
    opset_id = _field(1, b"") + _int(2, opset)
    return _int(1, 8) + _field(8, opset_id) + _field(7, graph)


def lstm(frames: int, features: int, hidden: int, classes: int, seed: int = 0) -> bytes:
    """x [frames, 1, F] → LSTM (state h_in, c_in → h_out, c_out) →
    dense per frame → logits [frames, 1, K]."""
    rng = np.random.default_rng(seed)
    f32 = lambda *s: (rng.uniform(-0.5, 0.5, s)).astype(np.float32)
    inits = [
        initializer("W", f32(1, 4 * hidden, features)),
        initializer("R", f32(1, 4 * hidden, hidden)),
        initializer("B", f32(1, 8 * hidden)),
        initializer("Wd", f32(hidden, classes)),
        initializer("bd", f32(classes)),
        initializer("shape", np.array([frames, 1, hidden], dtype=np.int64)),
    ]
    nodes = [
        node("LSTM", ["x", "W", "R", "B", "", "h_in", "c_in"], ["Y", "h_out", "c_out"], {"hidden_size": hidden}),
        node("Reshape", ["Y", "shape"], ["y3"]),
        node("MatMul", ["y3", "Wd"], ["mm"]),
        node("Add", ["mm", "bd"], ["logits"]),
    ]
    state = [1, 1, hidden]
    ins = [value("x", [frames, 1, features]), value("h_in", state), value("c_in", state)]
    outs = [value("logits", [frames, 1, classes]), value("h_out", state), value("c_out", state)]
    return model(nodes, ins, outs, inits)


