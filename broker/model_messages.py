"""The messages of federated forecasting (docs/forecasting.md), and their matrix and
model encodings.

Canonical JSON carries no floats, so a share's statistics travel as bytes: float64,
little-endian, row-major, compressed with deflate (zlib) and written in base64. ``X^T X``
is symmetric, so only its upper triangle (diagonal included, row by row) is sent: a
third fewer bytes, and a share cannot be asymmetric. A release carries its ONNX model's
bytes in base64 with their SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from broker.codec import MAX_PAYLOAD_BYTES
from broker.message_base import HASH, ID, MAX_T_S, SIG, Message
from broker.schema import bounded

MODEL_KINDS = ("load", "pv")
MAX_WINDOWS = 35_040  # a year of slots
MAX_ROWS = 1024
MAX_SHARE_BYTES = 1024 * 1024  # a share's wire form; a PV share is ~60-160 KB, 410 KB uncompressed
Floats = npt.NDArray[np.float64]


class PackingError(ValueError):
    """Matrix or model text that does not decode to what it claims; the message says why."""


@dataclass(frozen=True)
class ForecastShare(Message):
    """A member's sufficient statistics for one forecaster in one federated round: X^T X
    and X^T Y over the windows of its own history (never the history itself)."""

    TYPE: ClassVar[str] = "share"
    SIGNED: ClassVar[bool] = True
    MAX_BYTES: ClassVar[int] = MAX_SHARE_BYTES
    device: str = bounded(pattern=ID)
    round: int = bounded(min=0, max=MAX_T_S)
    kind: str = bounded(choices=MODEL_KINDS)
    windows: int = bounded(min=1, max=MAX_WINDOWS)  # training windows summed over
    base_version: int = bounded(min=0, max=2**31)  # the model the member runs (0: unknown)
    rows: int = bounded(min=2, max=MAX_ROWS)  # the model's inputs plus the bias column
    horizon: int = bounded(min=1, max=MAX_ROWS)  # the model's outputs
    xtx: str = bounded(max_len=MAX_SHARE_BYTES)  # rows x rows, upper triangle (see module)
    xty: str = bounded(max_len=MAX_SHARE_BYTES)  # rows x horizon
    t_s: int = bounded(min=0, max=MAX_T_S)
    sig: str = bounded("", pattern=SIG)

    @property
    def share_id(self) -> str:
        return share_id(self.device, self.round, self.kind)


def share_id(device: str, round_: int, kind: str) -> str:
    return f"{device}:{round_}:share-{kind}"


@dataclass(frozen=True)
class ModelRelease(Message):
    """A forecaster the coordinator pooled from its members' shares: the ONNX model and
    where it came from. Agents switch to it at the first slot start from ``effective_slot``."""

    TYPE: ClassVar[str] = "release"
    SIGNED: ClassVar[bool] = True
    kind: str = bounded(choices=MODEL_KINDS)
    version: int = bounded(min=1, max=2**31)
    round: int = bounded(min=0, max=MAX_T_S)
    effective_slot: int = bounded(min=0, max=MAX_T_S)
    base_version: int = bounded(min=0, max=2**31)  # the model the fit was pulled toward
    prior_weight: int = bounded(min=0, max=10**9)  # how hard (ridge strength)
    members: tuple[str, ...] = bounded(min_items=1, max_items=10_000)
    windows: int = bounded(min=1, max=MAX_WINDOWS * 10_000)  # over all members
    sha256: str = bounded(pattern=HASH)  # of the model's bytes
    model: str = bounded(max_len=MAX_PAYLOAD_BYTES)  # the ONNX file, base64
    t_s: int = bounded(min=0, max=MAX_T_S)
    sig: str = bounded("", pattern=SIG)


def pack_matrix(values: Floats, upper: bool = False) -> str:
    """``values`` as share text: its upper triangle (``upper``, for a symmetric matrix) or
    all of it, float64 little-endian row-major, deflated, base64."""
    data = values[np.triu_indices(values.shape[0])] if upper else values.ravel()
    raw = np.ascontiguousarray(data, dtype="<f8").tobytes()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def unpack_matrix(text: str, rows: int, cols: int, upper: bool = False) -> Floats:
    """The matrix that :func:`pack_matrix` wrote; PackingError if the text is not one of
    that shape (never inflating more than the shape's bytes)."""
    count = rows * (rows + 1) // 2 if upper else rows * cols
    try:
        packed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PackingError("not base64") from None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(packed, count * 8 + 1)
    except zlib.error as exc:
        raise PackingError(f"not deflate data ({exc})") from None
    if len(raw) != count * 8 or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        what = f"{rows} x {rows}, upper triangle" if upper else f"{rows} x {cols}"
        raise PackingError(f"does not hold the {count} float64 values of a {what} matrix")
    flat = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    if not upper:
        return flat.reshape(rows, cols)
    full = np.zeros((rows, rows))
    first, second = np.triu_indices(rows)
    full[first, second] = flat
    full[second, first] = flat
    return full


def model_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def model_bytes(release: ModelRelease) -> bytes:
    """The release's ONNX bytes; PackingError if its model field is not base64."""
    try:
        return base64.b64decode(release.model, validate=True)
    except (binascii.Error, ValueError):
        raise PackingError("model: not base64") from None
