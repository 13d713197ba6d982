"""The ONNX forecaster: load and PV models run with onnxruntime behind :class:`Forecaster`.

At start each model is checked against what this build feeds it: a gridmesh model of
the right kind, the input width :mod:`edge.forecast_features` builds, the horizon, and
weights whose SHA-256 matches the one recorded in the model (read without the ``onnx``
package: :mod:`edge.onnx_weights`) and, when the agent's configuration pins one, the
file's SHA-256. A model that fails is not used: the forecaster says
why (:attr:`OnnxForecaster.problems`) and forecasts that quantity with seasonal-naive.

Each forecast checks its input: the history must hold the ``LAGS`` slots before the
window's end with no gap and no negative value; otherwise that forecast comes from
seasonal-naive and the reason is counted (:attr:`OnnxForecaster.fallbacks`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from edge.forecast import Forecast, Forecaster, History, SeasonalNaive, SlotEnergy
from edge.forecast_features import FEATURES, HORIZON, LAGS, features
from edge.onnx_weights import WeightsFormatError, linear_weights_digest

log = logging.getLogger("gridmesh.edge.forecast")
MODELS_DIR = Path(__file__).resolve().parent / "models"


class ModelError(ValueError):
    """A model file this build cannot use; the message says why."""


class OnnxModel:
    """One forecaster model, checked against what this build feeds it; ModelError if it fails."""

    def __init__(self, data: bytes, kind: str, path: Path | str, pinned_sha256: str = "") -> None:
        import onnxruntime

        if pinned_sha256 and hashlib.sha256(data).hexdigest() != pinned_sha256:
            raise ModelError(f"{path}: file SHA-256 is not the pinned {pinned_sha256[:12]}..")
        try:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1  # one small model per call: threads cost more than they save
            self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            first_line = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise ModelError(f"{path}: not a readable ONNX model ({first_line})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("gridmesh.kind") != kind:
            found = meta.get("gridmesh.kind", "non-gridmesh")
            raise ModelError(f"{path}: a {found!r} model where {kind!r} was expected")
        [inp] = self.session.get_inputs()
        [out] = self.session.get_outputs()
        if inp.shape[-1] != FEATURES[kind] or out.shape[-1] != HORIZON:
            raise ModelError(f"{path}: takes {inp.shape[-1]} features and gives {out.shape[-1]} slots; this "
                             f"build feeds {FEATURES[kind]} and needs {HORIZON}")
        try:
            weights = linear_weights_digest(data)  # None: not the initializers W and b
        except WeightsFormatError as exc:
            raise ModelError(f"{path}: its weights cannot be read ({exc})") from None
        if weights is None or meta.get("gridmesh.weights_sha256") != weights:
            raise ModelError(f"{path}: its weights do not match their recorded SHA-256")
        self.name, self.version = inp.name, meta.get("gridmesh.version", "?")
        self.kind, self.sha256 = kind, hashlib.sha256(data).hexdigest()

    @classmethod
    def from_file(cls, path: Path, kind: str, pinned_sha256: str = "") -> OnnxModel:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"{path}: cannot read: {exc}") from None
        return cls(data, kind, path, pinned_sha256)

    def run(self, x: np.ndarray) -> np.ndarray:
        result = self.session.run(None, {self.name: x[None, :]})[0]
        return np.asarray(result[0], dtype=np.float64)


class OnnxForecaster:
    """Forecasts load and PV with the ONNX models; seasonal-naive where it cannot."""

    def __init__(self, load_model: Path | None = None, pv_model: Path | None = None,
                 pv_peak_w: int = 0, pinned: dict[str, str] | None = None, slot_s: int = 900) -> None:
        self.fallback = SeasonalNaive()
        self.problems: list[str] = []
        self.fallbacks: Counter[str] = Counter()
        self.slot_s = slot_s
        self.peak_wh = pv_peak_w * slot_s / 3600 if pv_peak_w else None
        self.models: dict[str, OnnxModel] = {}
        for kind, path in (("load", load_model or MODELS_DIR / "load.onnx"),
                           ("pv", pv_model or MODELS_DIR / "pv.onnx")):
            try:
                self.models[kind] = OnnxModel.from_file(path, kind, (pinned or {}).get(kind, ""))
            except ModelError as exc:
                self.problems.append(str(exc))
                log.warning("forecaster: %s; forecasting %s with seasonal-naive", exc, kind)

    def observe_rating(self, pv_peak_w: int) -> None:
        if pv_peak_w > 0:
            self.peak_wh = pv_peak_w * self.slot_s / 3600

    def forecast(
        self, history: History, first_slot: int, horizon: int, now: SlotEnergy | None
    ) -> tuple[Forecast, ...]:
        naive = self.fallback.forecast(history, first_slot, horizon, now)
        latest = history.latest()
        if latest is None:
            return naive
        end = latest.slot + 1  # the model predicts the HORIZON slots after the window
        offset = first_slot - end
        if offset < 0 or offset + horizon > HORIZON:
            self.fallbacks["horizon out of reach"] += 1
            return naive
        values = window_series(history, end)
        if values is None:
            self.fallbacks["history has gaps"] += 1
            return naive
        predicted: dict[str, np.ndarray | None] = {}
        for kind, series in values.items():
            model = self.models.get(kind)
            if model is None or (kind == "pv" and self.peak_wh is None):
                predicted[kind] = None
                continue
            if not np.all(np.isfinite(series)) or (series < 0).any():
                self.fallbacks["bad input"] += 1
                predicted[kind] = None
                continue
            x, scale = features(kind, series, end, self.peak_wh)
            predicted[kind] = np.maximum(0.0, model.run(x) * scale)
        result = []
        for index, fallback in enumerate(naive):
            load, pv = predicted["load"], predicted["pv"]
            result.append(Forecast(
                fallback.slot,
                round(load[offset + index]) if load is not None else fallback.load_wh,
                round(pv[offset + index]) if pv is not None else fallback.pv_wh,
                "onnx" if load is not None or pv is not None else fallback.method,
            ))
        return tuple(result)


def window_series(history: History, end: int) -> dict[str, np.ndarray] | None:
    """The load and PV of the ``LAGS`` slots before slot ``end`` (float32), None if any is missing."""
    window = [history.get(s) for s in range(end - LAGS, end)]
    if any(w is None for w in window):
        return None
    return {kind: np.asarray([getattr(w, f"{kind}_wh") for w in window], dtype=np.float32)
            for kind in ("load", "pv")}


def forecaster_for(pv_peak_w: int, slot_s: int = 900) -> Forecaster:
    """The agent's forecaster: the bundled ONNX models."""
    return OnnxForecaster(pv_peak_w=pv_peak_w, slot_s=slot_s)
