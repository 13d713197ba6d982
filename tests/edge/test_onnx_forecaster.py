"""The ONNX forecaster on the edge: the bundled models load and check out, forecast what
their weights say, and anything wrong (file, shape, weights, input) falls back to
seasonal-naive with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge.forecast import History, SlotEnergy
from edge.forecast_features import features
from edge.onnx_forecaster import MODELS_DIR, OnnxForecaster

FIRST = 1_000_000


def history(slots: int = 96, gap: int | None = None, negative: bool = False) -> History:
    h = History()
    for s in range(FIRST, FIRST + slots):
        if s == gap:
            continue
        load = -5 if negative and s == FIRST + 3 else 100 + s % 7
        h.add(SlotEnergy(s, load, max(0, 400 - abs(s % 96 - 48) * 8)))
    return h


def weights(path: Path) -> tuple[np.ndarray, np.ndarray]:
    model = onnx.load(path)
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return arrays["W"].astype(np.float64), arrays["b"].astype(np.float64)


def test_the_bundled_models_forecast_what_their_weights_say() -> None:
    forecaster = OnnxForecaster(pv_peak_w=5000)
    assert forecaster.problems == []
    h = history()
    out = forecaster.forecast(h, FIRST + 96, 3, None)
    assert [f.method for f in out] == ["onnx"] * 3
    for kind, peak in (("load", None), ("pv", 1250.0)):
        window = np.asarray([getattr(h.get(s), f"{kind}_wh") for s in range(FIRST, FIRST + 96)], np.float32)
        x, scale = features(kind, window, FIRST + 96, peak)
        w, b = weights(MODELS_DIR / f"{kind}.onnx")
        expected = np.maximum(0.0, (x.astype(np.float64) @ w + b) * scale)
        assert [getattr(f, f"{kind}_wh") for f in out] == [round(v) for v in expected[:3]]


def test_input_with_a_gap_or_a_negative_value_falls_back_with_the_reason() -> None:
    forecaster = OnnxForecaster(pv_peak_w=5000)
    gappy = forecaster.forecast(history(gap=FIRST + 10), FIRST + 96, 1, None)
    assert gappy[0].method == "seasonal-naive" and forecaster.fallbacks["history has gaps"] == 1
    bad = forecaster.forecast(history(negative=True), FIRST + 96, 1, None)
    assert forecaster.fallbacks["bad input"] == 1 and bad[0].method == "onnx"  # PV still from its model


def test_a_file_that_is_not_onnx_is_refused_and_the_agent_keeps_forecasting(tmp_path: Path) -> None:
    junk = tmp_path / "load.onnx"
    junk.write_bytes(b"not a model")
    forecaster = OnnxForecaster(load_model=junk, pv_peak_w=5000)
    assert len(forecaster.problems) == 1 and "not a readable ONNX model" in forecaster.problems[0]
    out = forecaster.forecast(history(), FIRST + 96, 1, None)
    assert out[0].load_wh == history().get(FIRST).load_wh  # seasonal-naive for load  # type: ignore[union-attr]


def test_the_wrong_kind_wrong_weights_or_an_unpinned_file_are_refused(tmp_path: Path) -> None:
    swapped = OnnxForecaster(load_model=MODELS_DIR / "pv.onnx")
    assert "a 'pv' model where 'load' was expected" in swapped.problems[0]
    tampered = tmp_path / "load.onnx"
    model = onnx.load(MODELS_DIR / "load.onnx")
    w = next(i for i in model.graph.initializer if i.name == "W")
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) * 1.01, "W"))
    onnx.save(model, tampered)
    assert "weights do not match their recorded SHA-256" in OnnxForecaster(load_model=tampered).problems[0]
    copy = tmp_path / "copy.onnx"
    shutil.copy(MODELS_DIR / "load.onnx", copy)
    pinned = OnnxForecaster(load_model=copy, pinned={"load": "0" * 64})
    assert "is not the pinned 000000000000" in pinned.problems[0]


def test_training_beats_seasonal_naive_on_the_held_out_week() -> None:
    from simulators.forecast_train import evaluate, fit, samples
    from simulators.profiles import ProfileSet

    profiles = ProfileSet.load_bundled()
    for kind, at_least in (("load", 0.0), ("pv", 0.1)):
        w, b = fit(samples(profiles, kind, held_out=False, stride=4))
        report = evaluate(w, b, samples(profiles, kind, held_out=True, stride=4))
        assert report["skill_vs_seasonal_naive"] > at_least, (kind, report)  # type: ignore[operator]


@pytest.mark.parametrize("kind", ["load", "pv"])
def test_the_bundled_model_carries_its_metadata(kind: str) -> None:
    meta = {p.key: p.value for p in onnx.load(MODELS_DIR / f"{kind}.onnx").metadata_props}
    assert meta["gridmesh.kind"] == kind and meta["gridmesh.horizon"] == "96"
    assert meta["gridmesh.training"].startswith("SimBench 1-LV-rural3--0-sw")
    assert len(meta["gridmesh.weights_sha256"]) == 64
