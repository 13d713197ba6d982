"""The weights a linear forecaster model stores, read from its ONNX bytes without the
``onnx`` package: the edge runs models with onnxruntime alone, and importing ``onnx``
(with protobuf) would cost an agent some 16 MB of memory for one check.

ONNX files are protocol buffers. Only what the check needs is read: the model's graph
(``ModelProto`` field 7), its initializers (``GraphProto`` field 5) and, of each tensor
(``TensorProto``), its name (8), element type (2), ``float_data`` (4) and ``raw_data``
(9); every other field is skipped by its wire type. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator

MODEL_GRAPH, GRAPH_INITIALIZER = 7, 5
TENSOR_DATA_TYPE, TENSOR_FLOAT_DATA, TENSOR_NAME, TENSOR_RAW_DATA = 2, 4, 8, 9
FLOAT = 1  # TensorProto.DataType.FLOAT
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WeightsFormatError(ValueError):
    """Bytes that are not a protocol buffer this reader understands; the message says where."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WeightsFormatError(f"a varint runs past the end at byte {pos}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of every field of one message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == VARINT:
            value, pos = _varint(data, pos)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            value, pos = data[pos:pos + size], pos + size
        elif wire == LENGTH:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        else:
            raise WeightsFormatError(f"field {number} has wire type {wire}, which ONNX does not use")
        if pos > len(data):
            raise WeightsFormatError(f"field {number} runs past the end of its message")
        yield number, wire, value


def _messages(data: bytes, number: int) -> Iterator[bytes]:
    for field, wire, value in _fields(data):
        if field == number and wire == LENGTH and isinstance(value, bytes):
            yield value


def float_initializers(model: bytes) -> dict[str, bytes]:
    """Each float initializer's name and its values as little-endian float32 bytes."""
    found: dict[str, bytes] = {}
    for graph in _messages(model, MODEL_GRAPH):
        for tensor in _messages(graph, GRAPH_INITIALIZER):
            name, data_type, raw, floats = "", 0, b"", bytearray()
            for field, _wire, value in _fields(tensor):
                if field == TENSOR_NAME and isinstance(value, bytes):
                    name = value.decode("utf-8", "replace")
                elif field == TENSOR_DATA_TYPE and isinstance(value, int):
                    data_type = value
                elif field == TENSOR_RAW_DATA and isinstance(value, bytes):
                    raw = value
                elif field == TENSOR_FLOAT_DATA and isinstance(value, bytes):
                    floats += value  # packed (LENGTH) or one value (FIXED32): both little-endian
            if data_type == FLOAT:
                found[name] = raw or bytes(floats)
    return found


def linear_weights_digest(model: bytes) -> str | None:
    """SHA-256 of a linear model's stored weights, W then b (as
    :func:`gridmesh.onnx_linear.weights_digest` computes it); ``None`` when the model
    does not have exactly the float initializers W and b."""
    arrays = float_initializers(model)
    if set(arrays) != {"W", "b"} or any(len(v) % struct.calcsize("<f") for v in arrays.values()):
        return None
    return hashlib.sha256(arrays["W"] + arrays["b"]).hexdigest()
