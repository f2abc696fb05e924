"""The Python package against the shared MLPerf Tiny data and the `ember`
command line: results equal to TFLite's reference kernels and to `ember
run`, `inspect()` equal to `ember inspect --json`, every refusal a
one-line ember.Error (a ValueError too for bad arguments), and the GIL
released while a model runs.

Needs EMBER_SHARED (the shared data) and EMBER_CLI (the `ember`
executable). `cargo xtask py-check` builds the wheel, installs it in a
fresh venv and runs this file.
"""

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ember

SHARED = Path(os.environ.get("EMBER_SHARED", Path(__file__).resolve().parents[3] / "../shared"))
CLI = os.environ["EMBER_CLI"]
KWS = SHARED / "models/mlperf-tiny/kws/kws_int8_qdq.onnx"
AD = SHARED / "models/mlperf-tiny/ad/ad_float32.onnx"


def vectors(model):
    return np.load(SHARED / f"vectors/{model}_testvectors.npz")


def cli_run(model, x, tmp_path):
    """`ember run` on the saved blob of `model` with input `x`."""
    blob, xin, y = tmp_path / "m.ember", tmp_path / "x.npy", tmp_path / "y.npy"
    model.save(blob)
    np.save(xin, x)
    subprocess.run([CLI, "run", str(blob), "--input", str(xin), "--output", str(y)], check=True, capture_output=True)
    return np.load(y)


@pytest.fixture(scope="module")
def kws():
    return ember.compile(KWS, target="cortex-m55")


def test_kws_is_bit_exact_with_tflite_reference_kernels(kws):
    v = vectors("kws")
    x, want = v["mfcc_int8"], v["int8_tflite_ref_out"]
    assert kws.inputs == (ember.TensorSpec("input_1", np.dtype("int8"), (1, 49, 10, 1), "i8"),)
    for row in range(0, len(x), 5):
        (got,) = kws.run(x[row : row + 1])
        assert got.dtype == np.int8 and got.shape == (1, 12)
        np.testing.assert_array_equal(got[0], want[row], err_msg=f"row {row}")


def test_float_model_from_bytes_matches_onnxruntime_within_float_error():
    v = vectors("ad")
    m = ember.compile(AD.read_bytes())
    assert m.inputs == (ember.TensorSpec("input", np.dtype("float32"), (1, 640), "f32"),)
    for row in range(0, 196, 49):
        (got,) = m.run(v["input_float"][row : row + 1])
        np.testing.assert_allclose(got[0], v["float_onnx_out"][row], rtol=1e-4, atol=1e-4)


def test_inspect_is_the_clis_json(kws, tmp_path):
    info = kws.inspect()
    assert info["blob_bytes"] == len(kws.blob)
    assert info["inputs"][0]["shape"] == [1, 49, 10, 1]
    assert len(info["layers"]) > 0 and all("kernel" in l for l in info["layers"])
    kws.save(tmp_path / "kws.ember")
    out = subprocess.run([CLI, "inspect", str(tmp_path / "kws.ember"), "--json"], check=True, capture_output=True)
    assert json.loads(out.stdout) == info


def test_outputs_equal_the_clis(kws, tmp_path):
    x = vectors("kws")["mfcc_int8"][7:8]
    np.testing.assert_array_equal(kws.run(x)[0], cli_run(kws, x, tmp_path))
    ad = ember.compile(AD)
    x = vectors("ad")["input_float"][3:4]
    (got,) = ad.run(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, cli_run(ad, x, tmp_path))


def test_the_gil_is_released_while_a_model_runs():
    # MiniLM at 128 tokens runs for a good fraction of a second on the host:
    # meanwhile this thread must keep running Python.
    minilm = SHARED / "models/transformers/minilm/all-MiniLM-L6-v2_int8_dynamic.onnx"
    names = ("input_ids", "attention_mask", "token_type_ids")
    m = ember.compile(minilm, shapes={n: (1, 128) for n in names})
    args = [np.ones((1, 128), np.int64) for _ in m.inputs]
    t0 = time.perf_counter()
    m.run(*args)
    once = time.perf_counter() - t0
    done = threading.Event()
    worker = threading.Thread(target=lambda: (m.run(*args), done.set()))
    ticks, last, gap = 0, time.perf_counter(), 0.0
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        gap, last, ticks = max(gap, now - last), now, ticks + 1
    worker.join()
    # Holding the GIL, the run would stall this loop for all of `once`.
    assert ticks > 1000 and gap < once / 3, (ticks, gap, once)


def test_save_load_round_trip_and_report(kws, tmp_path):
    p = tmp_path / "kws.ember"
    kws.save(p)
    again = ember.load(p)
    assert again.blob == kws.blob == p.read_bytes()
    x = vectors("kws")["mfcc_int8"][:1]
    np.testing.assert_array_equal(again.run(x)[0], kws.run(x)[0])
    kws.report(tmp_path / "kws.html")
    page = (tmp_path / "kws.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and '<rect class="tensor' in page
    assert "<script" not in page


def test_runs_from_several_threads_agree(kws):
    x = vectors("kws")["mfcc_int8"][:8]
    want = [kws.run(x[i : i + 1])[0] for i in range(8)]
    got = [None] * 8

    def work(i):
        got[i] = kws.run(x[i : i + 1])[0]

    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def one_line(e):
    msg = str(e.value)
    assert "\n" not in msg and msg, msg
    return msg


def test_inputs_are_checked_not_cast(kws):
    with pytest.raises(ValueError) as e:
        kws.run(np.zeros((1, 49, 10, 1), np.float64))
    assert isinstance(e.value, ember.InvalidArgument) and isinstance(e.value, ember.Error)
    assert one_line(e) == "input 0 ('input_1'): input 'input_1' (i8) takes int8 arrays, not float64"
    with pytest.raises(ember.Error) as e:
        kws.run(np.zeros((1, 10, 49, 1), np.int8))
    assert "shape [1, 10, 49, 1] does not match the model input 'input_1' [1, 49, 10, 1]" in one_line(e)
    with pytest.raises(ember.InvalidArgument) as e:
        kws.run()
    assert one_line(e) == "the model has 1 inputs, 0 given"
    # A view with strides and another byte order is fine: values count.
    x = vectors("kws")["mfcc_int8"][:1]
    big = np.asfortranarray(x).astype(">i1")
    np.testing.assert_array_equal(kws.run(big)[0], kws.run(x)[0])


def test_nonfinite_floats_are_refused_unless_allowed():
    m = ember.compile(AD)
    (spec,) = m.inputs
    x = np.zeros(spec.shape, np.float32)
    x.flat[3] = np.nan
    with pytest.raises(ember.InvalidArgument) as e:
        m.run(x)
    assert "element 3" in one_line(e) and "is NaN" in one_line(e)
    m.run(x, allow_nonfinite=True)


def test_bad_models_and_options_are_one_line_errors(tmp_path):
    with pytest.raises(ember.Error) as e:
        ember.compile(b"not an onnx file")
    assert "not a readable ONNX protobuf" in one_line(e)
    with pytest.raises(ValueError) as e:
        ember.compile(KWS, target="cortex-m99")
    assert one_line(e).startswith("unknown target 'cortex-m99' (known: generic, ")
    with pytest.raises(ember.InvalidArgument) as e:
        ember.compile(KWS, rounding="banker")
    assert one_line(e) == "unknown rounding 'banker' (expected tflite or onnx)"
    with pytest.raises(ember.Error) as e:
        ember.load(tmp_path / "missing.ember")
    assert one_line(e).startswith("cannot read ")
    blob = bytearray(ember.compile(KWS).blob)
    blob[len(blob) // 2] ^= 0x40
    with pytest.raises(ember.Error) as e:
        ember.load(bytes(blob))
    assert not isinstance(e.value, ValueError)
    # The same words as the command line's.
    bad = tmp_path / "bad.ember"
    bad.write_bytes(bytes(blob))
    out = subprocess.run([CLI, "inspect", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip().endswith(one_line(e)), (out.stderr, one_line(e))
    with pytest.raises(ember.Error) as e:
        ember.compile(KWS, max_memory=1000)
    assert "over the memory budget" in one_line(e)
    with pytest.raises(ember.Error) as e:
        ember.compile(KWS, quantize="int8", calibrate=np.zeros((4, 49, 10, 1), np.float32))
    assert "cannot quantize float models yet" in one_line(e)


def test_shapes_fix_symbolic_dimensions_and_wrong_ones_are_refused():
    # MiniLM's inputs are [batch, sequence]: fixed at compile time.
    minilm = SHARED / "models/transformers/minilm/all-MiniLM-L6-v2_int8_dynamic.onnx"
    m = ember.compile(minilm, shapes={n: (1, 16) for n in ("input_ids", "attention_mask", "token_type_ids")})
    assert all(t.shape == (1, 16) for t in m.inputs)
    ids = np.zeros((1, 16), np.int64)
    outs = m.run(*[ids if t.name != "attention_mask" else np.ones((1, 16), np.int64) for t in m.inputs])
    assert all(np.isfinite(o).all() for o in outs)
    with pytest.raises(ember.InvalidArgument) as e:
        m.run(*[np.full((1, 16), 2**40, np.int64) for _ in m.inputs])
    assert "does not fit in int32" in one_line(e)


def test_state_is_kept_between_runs_and_streams_equal_the_whole_sequence():
    from onnx_writer import lstm

    frames, features, hidden = 40, 6, 10
    whole = ember.compile(lstm(frames, features, hidden, 3))
    step = ember.compile(lstm(1, features, hidden, 3), state="auto")
    assert [(s.name, nxt) for s, nxt in step.state] == [("h_in", "h_out"), ("c_in", "c_out")]
    assert [t.name for t in step.inputs] == ["x"]
    x = np.random.default_rng(1).uniform(-1, 1, (frames, 1, features)).astype(np.float32)
    zeros = np.zeros((1, 1, hidden), np.float32)
    want = whole.run(x, zeros, zeros)[0]

    streamed = step.run_stream(x)[0]
    assert streamed.shape == (frames, 1, 1, 3)
    np.testing.assert_allclose(streamed.reshape(want.shape), want, atol=1e-5)

    # run() goes on from the state the last run left; reset_state starts over.
    step.reset_state()
    by_run = np.stack([step.run(x[i : i + 1])[0] for i in range(frames)])
    np.testing.assert_array_equal(by_run, streamed)
    step.reset_state()
    np.testing.assert_array_equal(step.run(x[:1])[0], streamed[0])

    # Bad bindings and recordings are one-line errors.
    with pytest.raises(ember.Error, match="the model has no input named nope"):
        ember.compile(lstm(1, features, hidden, 3), state=["h_out=nope"])
    with pytest.raises(ember.InvalidArgument, match="expected OUTPUT=INPUT"):
        ember.compile(lstm(1, features, hidden, 3), state="h_out")
    with pytest.raises(ValueError, match="differs in more than one axis"):
        step.run_stream(np.zeros((frames, 2, features), np.float32))


def test_a_windowed_model_compiled_to_stream_equals_it_on_every_window():
    sww = SHARED / "models/mlperf-tiny/sww/sww_int8_qdq.onnx"
    frames = vectors("sww")["lfbe_int8"]  # (311, 1, 40)
    want = vectors("sww")["int8_tflite_ref_out"]
    streamed = ember.compile(sww, stream=True)
    assert streamed.inputs[0].shape == (1, 1, 1, 40)
    assert len(streamed.state) == 4
    got = streamed.run_stream(frames.reshape(1, -1, 1, 40))[0]
    assert got.shape == (311, 1, 3)
    np.testing.assert_array_equal(got[29:, 0], want)
    with pytest.raises(ember.Error, match="nothing streams along axis 3"):
        ember.compile(sww, stream=3)


def test_ember_quantize_runs_in_onnxruntime_as_in_ember(tmp_path):
    """`ember quantize` writes a QDQ model that onnxruntime runs (with its
    graph rewrites off, i.e. the QDQ semantics as written) to the same
    outputs as Ember's blob compiled with onnxruntime's rounding: within one
    output step on every row, calibrated on the first half."""
    import onnxruntime as ort  # in the test venv (xtask py-check)
    v = vectors("kws")
    x = v["mfcc_float"]
    cal, qdq = tmp_path / "cal.npy", tmp_path / "kws_qdq.onnx"
    np.save(cal, x[:25])
    float_model = SHARED / "models/mlperf-tiny/kws/kws_float32.onnx"
    subprocess.run([CLI, "quantize", str(float_model), "--calibrate", str(cal), "-o", str(qdq)], check=True, capture_output=True)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(qdq), opts, providers=["CPUExecutionProvider"])
    m = ember.compile(qdq, rounding="onnx")
    step = 1.0 / 256.0  # the Softmax output's fixed scale
    for row in range(len(x)):
        (want,) = session.run(None, {"input": x[row : row + 1]})
        (got,) = m.run(x[row : row + 1])
        assert np.abs(got - want).max() <= step + 1e-6, f"row {row}"
