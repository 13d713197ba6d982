"""Training and evaluating the edge forecasters on the bundled SimBench profiles.

Each model is linear: ``forecast = features @ W + b`` (:mod:`edge.forecast_features`),
fitted by ridge regression (closed form, numpy) on every window of every load (or PV)
profile in the training weeks, and exported as a two-node ONNX graph (MatMul, Add)
with its metadata: kind, inputs, horizon, units, training data, version and the SHA-256
of its weights. The last sample week (October) is held out: :func:`evaluate` reports
mean absolute error per horizon band against seasonal-naive (the same slot a day
before) and persistence (the last slot), and the skill ``1 - MAE / MAE_reference``.

Needs the ``study`` extra (``onnx``) to export; the edge needs only onnxruntime. The
exporter is the one the coordinator's federated releases use (:mod:`gridmesh.onnx_linear`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.forecast_features import FEATURES, HORIZON, LAGS, SLOT_S, features
from gridmesh.onnx_linear import build_model
from simulators.profiles import ProfileSet

MODEL_VERSION = "1"
RIDGE = 1.0
HOLD_OUT_FROM = 1_475_971_200  # 2016-10-09T00:00Z: the October sample week is never trained on
BANDS = ((0, 4), (4, 16), (16, 48), (48, 96))  # horizon bands in slots: 1 h, 4 h, 12 h, 24 h
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Samples:
    x: Floats  # features, one row per window
    y: Floats  # the next HORIZON slots, divided by the window's scale
    scale: Floats  # per row
    seasonal: Floats  # seasonal-naive forecast (the window's own values), Wh
    persistence: Floats  # the window's last value repeated, Wh
    truth: Floats  # the next HORIZON slots, Wh


def samples(profiles: ProfileSet, kind: str, held_out: bool, stride: int = 4) -> Samples:
    """Every ``stride``-th window of every profile of ``kind`` in the training weeks (or,
    with ``held_out``, the held-out week)."""
    rows: list[tuple[Floats, Floats, float, Floats]] = []
    for name in profiles.names("load" if kind == "load" else "pv"):
        for segment in profiles.profile(name).segments:
            if (segment.start_s >= HOLD_OUT_FROM) != held_out:
                continue
            values = np.asarray(segment.values, dtype=np.float64)
            first = segment.start_s // SLOT_S
            peak = float(values.max()) if kind == "pv" else None
            for start in range(LAGS, len(values) - HORIZON + 1, stride):
                window = values[start - LAGS:start].astype(np.float32)
                x_row, scale_row = features(kind, window, first + start, peak)
                rows.append((x_row.astype(np.float64), values[start:start + HORIZON], scale_row,
                             values[start - LAGS:start]))
    if not rows:
        which = "the held-out" if held_out else "the training"
        raise ValueError(f"no {kind} profile data for {which} weeks")
    x: Floats = np.stack([r[0] for r in rows]).astype(np.float64)
    truth: Floats = np.stack([r[1] for r in rows]).astype(np.float64)
    scale: Floats = np.asarray([r[2] for r in rows], dtype=np.float64)
    windows: Floats = np.stack([r[3] for r in rows]).astype(np.float64)
    return Samples(x, truth / scale[:, None], scale, windows[:, -HORIZON:],
                   np.repeat(windows[:, -1:], HORIZON, axis=1), truth)


def fit(data: Samples, ridge: float = RIDGE) -> tuple[Floats, Floats]:
    """Ridge regression with an unpenalised bias: (W, b)."""
    x = np.hstack([data.x, np.ones((data.x.shape[0], 1))])
    penalty = ridge * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0
    solution: Floats = np.linalg.solve(x.T @ x + penalty, x.T @ data.y).astype(np.float64)
    return solution[:-1], solution[-1]


def predict_wh(weights: Floats, bias: Floats, data: Samples) -> Floats:
    return np.maximum(0.0, (data.x @ weights + bias) * data.scale[:, None])


def export(kind: str, weights: Floats, bias: Floats, path: Path, feeder: str) -> None:
    """Write the model as ONNX with its metadata (:func:`gridmesh.onnx_linear.build_model`)."""
    meta = {
        "gridmesh.kind": kind, "gridmesh.version": MODEL_VERSION,
        "gridmesh.features": str(FEATURES[kind]),
        "gridmesh.lags": str(LAGS), "gridmesh.horizon": str(HORIZON), "gridmesh.slot_s": str(SLOT_S),
        "gridmesh.units": "output x scale = Wh per slot (scale: window mean + 1 Wh; PV: peak Wh per slot)",
        "gridmesh.training": f"SimBench {feeder}, 2016 sample weeks before 2016-10-09, ridge {RIDGE}",
    }
    data = build_model(kind, weights, bias, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def evaluate(weights: Floats, bias: Floats, held_out: Samples) -> dict[str, object]:
    """MAE per horizon band and the skill against seasonal-naive and persistence."""
    predicted = predict_wh(weights, bias, held_out)
    bands = {}
    for first, last in BANDS:
        def mae(forecast: Floats, first: int = first, last: int = last) -> float:
            return float(np.abs(forecast[:, first:last] - held_out.truth[:, first:last]).mean())
        model, seasonal, persistence = mae(predicted), mae(held_out.seasonal), mae(held_out.persistence)
        bands[f"{first * 15 // 60}-{last * 15 // 60} h"] = {
            "mae_wh": round(model, 2), "seasonal_naive_mae_wh": round(seasonal, 2),
            "persistence_mae_wh": round(persistence, 2),
            "skill_vs_seasonal_naive": round(1 - model / seasonal, 3) if seasonal else None,
            "skill_vs_persistence": round(1 - model / persistence, 3) if persistence else None,
        }
    model_all = float(np.abs(predicted - held_out.truth).mean())
    seasonal_all = float(np.abs(held_out.seasonal - held_out.truth).mean())
    return {"windows": int(held_out.x.shape[0]), "mae_wh": round(model_all, 2),
            "skill_vs_seasonal_naive": round(1 - model_all / seasonal_all, 3), "bands": bands}


def train_all(out: Path, feeder: str = "") -> dict[str, object]:
    """Train, evaluate and export both models; the evaluation, per kind."""
    profiles = ProfileSet.load_bundled(feeder)
    report: dict[str, object] = {}
    for kind in ("load", "pv"):
        weights, bias = fit(samples(profiles, kind, held_out=False, stride=1))
        export(kind, weights, bias, out / f"{kind}.onnx", profiles.feeder)
        report[kind] = evaluate(weights, bias, samples(profiles, kind, held_out=True, stride=1))
    (out / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
