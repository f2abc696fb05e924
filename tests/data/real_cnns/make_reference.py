"""Reference outputs for tests/tests/real_cnns.rs, from onnxruntime.

The models are PaddleOCR's, as the `rapidocr_onnxruntime` 1.4.4 wheel on
PyPI ships them (Apache-2.0): a MobileNetV3 text-direction classifier, the
PP-OCRv4 DBNet text detector (a segmentation network: Resize,
ConvTranspose, Sigmoid) and the PP-OCRv4 recognizer. Inputs are the text-like
pattern the Rust test builds (exact in float32 on both sides). Run with
onnxruntime and numpy importable:

    python3 make_reference.py MODELS_DIR OUT_DIR
"""

import sys

import numpy as np
import onnxruntime as ort

# (model file, input shape): small inputs, so the test stays quick.
MODELS = [
    ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (1, 3, 48, 192)),
    ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 64, 64)),
    ("ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 160)),
]


def pattern(shape):
    """Rows of dark strokes on light-gray noise, like a line of text (the
    test's input; every value is exact in float32 on both sides)."""
    _, c, h, w = shape
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    noise = ((7 * xx + 13 * yy + 29 * cc) % 16).astype(np.float32)
    v = (np.float32(1.0) - noise / np.float32(127.5)).astype(np.float32)
    stroke = ((yy % 16) >= 5) & ((yy % 16) < 11) & ((xx % 9) < 5) & (xx >= 4) & (xx < w - 4)
    v[stroke] = -1.0
    return v[None].astype(np.float32)


def main(models, out):
    for name, shape in MODELS:
        x = pattern(shape)
        y = ort.InferenceSession(f"{models}/{name}").run(None, {"x": x})[0]
        stem = name.removesuffix(".onnx")
        if y.size <= 4096:
            np.save(f"{out}/{stem}.npy", y.astype(np.float32))
        else:
            # Large class outputs: the three best classes of each row.
            rows = y.reshape(-1, y.shape[-1])
            top = np.argsort(-rows, axis=-1)[:, :3]
            np.save(f"{out}/{stem}.top3_index.npy", top.astype(np.int32))
            np.save(
                f"{out}/{stem}.top3_value.npy",
                np.take_along_axis(rows, top, -1).astype(np.float32),
            )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
