"""Type hints for Ember's native module (bytes, names and shapes only)."""

from typing import Dict, List, Optional, Tuple

DEFAULT_MAX_MEMORY: int

class Error(Exception):
    """A model Ember cannot compile, load or run."""

class ArgumentError(Error):
    """Arguments Ember refuses (raised as ember.InvalidArgument)."""

def compile_blob(
    onnx: bytes,
    target: str,
    shapes: Dict[str, List[int]],
    rounding: Optional[str],
    packed_weights: bool,
    max_memory: int,
    state: List[str],
    stream: bool,
    stream_axis: Optional[int],
) -> bytes: ...

class NativeModel:
    def __init__(self, blob: bytes, max_memory: int) -> None: ...
    def blob(self) -> bytes: ...
    def inputs(self) -> List[Tuple[str, str, str, List[int]]]: ...
    def outputs(self) -> List[Tuple[str, str, str, List[int]]]: ...
    def run(
        self, inputs: List[Tuple[str, List[int], bytes]], allow_nonfinite: bool
    ) -> List[Tuple[str, List[int], bytes]]: ...
    def state(self) -> List[Tuple[Tuple[str, str, str, List[int]], str]]: ...
    def reset_state(self) -> None: ...
    def run_stream(
        self,
        inputs: List[Tuple[str, List[int], bytes]],
        axis: Optional[int],
        allow_nonfinite: bool,
    ) -> List[Tuple[str, List[int], bytes]]: ...
    def inspect_json(self) -> str: ...
    def report_html(self, title: str, bench: List[str]) -> str: ...
