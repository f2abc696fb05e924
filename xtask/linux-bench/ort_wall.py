"""onnxruntime's host wall-clock for `cargo xtask bench --board linux-aarch64
--wall`: one thread, the same raw input file as Ember and tract, one warm-up,
then up to 50 timed runs (fewer past 20 s, at least three); prints `wall_us <median> <min>` like ember-linux-bench.

usage: python3 ort_wall.py MODEL.onnx INPUT.bin
"""
import os
import sys
import time

import numpy as np
import onnxruntime as ort

model, raw = sys.argv[1], sys.argv[2]
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
# The raw file holds the inputs back to back, in Ember's types: int64
# inputs (token ids, masks) are int32 there. Symbolic shapes come from
# EMBER_BENCH_SHAPES ("1x128;1x128;1x128").
shapes = [
    [int(d) for d in s.split("x")]
    for s in os.environ.get("EMBER_BENCH_SHAPES", "").split(";")
    if s
]
types = {
    "tensor(float)": (np.float32, np.float32),
    "tensor(int8)": (np.int8, np.int8),
    "tensor(uint8)": (np.uint8, np.uint8),
    "tensor(int64)": (np.int32, np.int64),
}
data = open(raw, "rb").read()
off = 0
feed = {}
for i, inp in enumerate(sess.get_inputs()):
    stored, wanted = types[inp.type]
    shape = shapes[i] if i < len(shapes) else [d if isinstance(d, int) else 1 for d in inp.shape]
    n = int(np.prod(shape))
    a = np.frombuffer(data, dtype=stored, count=n, offset=off)
    off += n * np.dtype(stored).itemsize
    feed[inp.name] = a.astype(wanted).reshape(shape)
sess.run(None, feed)
t = []
start = time.perf_counter()
for i in range(50):
    s = time.perf_counter()
    sess.run(None, feed)
    t.append((time.perf_counter() - s) * 1e6)
    if i >= 2 and time.perf_counter() - start > 20.0:
        break
t.sort()
print(f"wall_us {t[len(t) // 2]:.1f} {t[0]:.1f}", file=sys.stderr)
