"""The linear forecasters' ONNX form, written and read in one place: by training
(:mod:`simulators.forecast_train`) and by the coordinator's federated releases
(:mod:`coordinator.model_rounds`), so both export the very same graph.

A model is ``forecast = features @ W + b``: a two-node graph (MatMul, Add) with the
initializers ``W`` and ``b`` (float32) and ``gridmesh.*`` metadata, among them the
SHA-256 of its weights. Writing and reading need the ``onnx`` package (the ``study`` or
``federated`` extra); the edge runs models with onnxruntime alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
OPSET = 17
IR_VERSION = 8  # readable by every onnxruntime since 1.11


class OnnxUnavailable(RuntimeError):
    """The ``onnx`` package is not installed; the message says how to get it."""


class ModelFormatError(ValueError):
    """Bytes that are not a gridmesh linear model; the message says why."""


def require_onnx() -> ModuleType:
    try:
        import onnx
    except ImportError:
        raise OnnxUnavailable("writing or reading forecaster models needs the onnx package: "
                              "pip install 'gridmesh[federated]'") from None
    return onnx


def weights_digest(weights: Floats, bias: Floats) -> str:
    """SHA-256 of the weights as stored (float32 W, then b)."""
    data = weights.astype(np.float32).tobytes() + bias.astype(np.float32).tobytes()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class LinearModel:
    weights: Floats  # inputs x outputs
    bias: Floats  # outputs
    meta: Mapping[str, str]

    @property
    def kind(self) -> str:
        return self.meta.get("gridmesh.kind", "")

    @property
    def version(self) -> int:
        """The model's version (``gridmesh.version``); 0 if it has none."""
        text = self.meta.get("gridmesh.version", "")
        return int(text) if text.isdigit() else 0


def build_model(kind: str, weights: Floats, bias: Floats, meta: Mapping[str, str]) -> bytes:
    """The ONNX bytes of the model with the metadata ``meta`` (in its order; kind and
    shapes must agree with the weights) and, last, the weights' SHA-256."""
    onnx = require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    inputs, outputs = weights.shape
    w = numpy_helper.from_array(weights.astype(np.float32), "W")
    b = numpy_helper.from_array(bias.astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "W"], ["scaled"]),
         helper.make_node("Add", ["scaled", "b"], ["forecast"])],
        f"gridmesh-{kind}-forecaster",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, inputs])],
        [helper.make_tensor_value_info("forecast", TensorProto.FLOAT, [None, outputs])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="gridmesh")
    model.ir_version = IR_VERSION
    entries = {"gridmesh.kind": kind, **meta}
    entries.setdefault("gridmesh.features", str(inputs))
    entries.setdefault("gridmesh.horizon", str(outputs))
    if (entries["gridmesh.kind"], entries["gridmesh.features"], entries["gridmesh.horizon"]) != (
            kind, str(inputs), str(outputs)):
        raise ValueError(f"metadata says {entries['gridmesh.kind']!r} with {entries['gridmesh.features']} "
                         f"inputs and {entries['gridmesh.horizon']} outputs; the weights are {kind!r} "
                         f"{inputs} x {outputs}")
    entries.pop("gridmesh.weights_sha256", None)
    entries["gridmesh.weights_sha256"] = weights_digest(weights, bias)
    for key, value in entries.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def read_model(data: bytes) -> LinearModel:
    """The weights, bias and metadata of a model :func:`build_model` wrote."""
    onnx = require_onnx()
    from onnx import numpy_helper

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ModelFormatError(f"not an ONNX model ({type(exc).__name__})") from None
    arrays = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    if set(arrays) != {"W", "b"} or arrays["W"].ndim != 2 or arrays["b"].shape != arrays["W"].shape[1:]:
        raise ModelFormatError("not a gridmesh linear model (initializers W and b)")
    return LinearModel(arrays["W"], arrays["b"], {p.key: p.value for p in model.metadata_props})
