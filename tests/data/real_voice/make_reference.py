"""Reference outputs for tests/tests/real_voice.rs, from onnxruntime.

Silero VAD's 16 kHz sequence model (the silero-vad 6.2.3 wheel on PyPI,
MIT), run chunk by chunk over a 10 s recording made of the ten
`../shared/audio/keywords/*_v0.wav` clips one after the other (sorted by
name), exactly as the test feeds it: samples / 32768, chunks of 512 samples with
the previous chunk's last 64 in front (zeros before the start), the LSTM
state (h, c) carried from chunk to chunk.

- silero_vad_float.npy: the float model's speech probability per chunk.
- silero_vad_lstm_int8.npy: the same model after
  `quantize_dynamic(per_channel=True, op_types_to_quantize=["LSTM"])`
  (its LSTM becomes com.microsoft.DynamicQuantizeLSTM with int8 weights).

Usage: python make_reference.py SILERO_VAD_DATA_DIR SHARED_DIR
(onnxruntime 1.32, numpy).
"""
import os
import sys
import wave

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

data, shared = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
model = os.path.join(data, "silero_vad_16k_sequence.onnx")
clips = sorted(f for f in os.listdir(os.path.join(shared, "audio/keywords")) if f.endswith("_v0.wav"))
pcm = []
for f in clips:
    w = wave.open(os.path.join(shared, "audio/keywords", f))
    assert w.getframerate() == 16000 and w.getsampwidth() == 2 and w.getnchannels() == 1
    pcm.append(np.frombuffer(w.readframes(w.getnframes()), np.int16))
x = np.concatenate(pcm).astype(np.float32) / 32768.0
n = len(x) // 512
frames = np.zeros((n, 576), np.float32)
for k in range(n):
    seg = x[max(512 * k - 64, 0) : 512 * k + 512]
    frames[k, 576 - len(seg) :] = seg


def stream(path):
    s = ort.InferenceSession(path)
    h = np.zeros((1, 1, 128), np.float32)
    c = np.zeros((1, 1, 128), np.float32)
    out = []
    for k in range(n):
        p, h, c = s.run(None, {"input": frames[k : k + 1], "h": h, "c": c})
        out.append(p[0])
    return np.array(out, np.float32)


np.save(os.path.join(here, "silero_vad_float.npy"), stream(model))
q = os.path.join(here, "lstm_int8.onnx")
quantize_dynamic(model, q, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["LSTM"])
np.save(os.path.join(here, "silero_vad_lstm_int8.npy"), stream(q))
os.remove(q)
