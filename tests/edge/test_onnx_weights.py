"""Reading a model's weights without the onnx package gives the digest onnx gives, however
the tensors are stored, and refuses bytes that are not a protocol buffer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edge.onnx_forecaster import MODELS_DIR
from edge.onnx_weights import WeightsFormatError, float_initializers, linear_weights_digest
from gridmesh.onnx_linear import build_model, weights_digest


def onnx_digest(data: bytes) -> str:
    arrays = {i.name: numpy_helper.to_array(i) for i in onnx.load_model_from_string(data).graph.initializer}
    return weights_digest(arrays["W"], arrays["b"])


@pytest.mark.parametrize("kind", ["load", "pv"])
def test_the_bundled_models_digest_as_onnx_reads_them(kind: str) -> None:
    data = (MODELS_DIR / f"{kind}.onnx").read_bytes()
    meta = {p.key: p.value for p in onnx.load_model_from_string(data).metadata_props}
    assert linear_weights_digest(data) == onnx_digest(data) == meta["gridmesh.weights_sha256"]


def test_values_stored_as_float_data_digest_like_raw_data() -> None:
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(5, 3)), rng.normal(size=3)
    raw = build_model("load", w, b, {})
    model = onnx.load_model_from_string(raw)
    for tensor in model.graph.initializer:
        values = numpy_helper.to_array(tensor)
        tensor.CopyFrom(helper.make_tensor(tensor.name, onnx.TensorProto.FLOAT, values.shape,
                                           values.flatten().tolist()))
        assert not tensor.raw_data and len(tensor.float_data) == values.size
    listed = model.SerializeToString()
    assert linear_weights_digest(listed) == linear_weights_digest(raw) == weights_digest(w, b)


def test_other_initializers_are_not_a_linear_model() -> None:
    data = build_model("load", np.ones((2, 2)), np.zeros(2), {})
    model = onnx.load_model_from_string(data)
    model.graph.initializer[1].name = "bias"
    renamed = model.SerializeToString()
    assert set(float_initializers(renamed)) == {"W", "bias"}
    assert linear_weights_digest(renamed) is None


@pytest.mark.parametrize(("data", "problem"), [
    (b"\x08", "a varint runs past the end at byte 1"),
    (b"\x3a\x10abc", "field 7 runs past the end of its message"),
    (b"\x0b", "field 1 has wire type 3"),
])
def test_bytes_that_are_not_a_protocol_buffer_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(WeightsFormatError, match=problem):
        float_initializers(data)


def test_an_agent_without_metrics_loads_neither_onnx_nor_prometheus_client() -> None:
    """onnx and protobuf would cost an agent ~16 MB and 0.7 s at start, and the edge does
    not ship them; prometheus-client (4.5 MB) is loaded only to serve metrics."""
    code = ("import sys; from edge.onnx_forecaster import OnnxForecaster; import edge.cli; "
            "f = OnnxForecaster(pv_peak_w=5000); assert not f.problems, f.problems; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'prometheus_client') "
            "or m.startswith('google.protobuf')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
