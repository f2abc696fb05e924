"""onnxruntime's host wall-clock for `cargo xtask bench --board linux-aarch64
--wall`: one thread, the same raw input file as Ember and tract, one warm-up,
then 50 timed runs; prints `wall_us <median> <min>` like ember-linux-bench.

usage: python3 ort_wall.py MODEL.onnx INPUT.bin
"""
import sys
import time

import numpy as np
import onnxruntime as ort

model, raw = sys.argv[1], sys.argv[2]
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
inp = sess.get_inputs()[0]
dtype = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}[inp.type]
x = np.fromfile(raw, dtype=dtype).reshape([d if isinstance(d, int) else 1 for d in inp.shape])
feed = {inp.name: x}
sess.run(None, feed)
t = []
for _ in range(50):
    s = time.perf_counter()
    sess.run(None, feed)
    t.append((time.perf_counter() - s) * 1e6)
t.sort()
print(f"wall_us {t[len(t) // 2]:.1f} {t[0]:.1f}", file=sys.stderr)
