"""The agent's side of federated forecasting: a release it can trust runs from its
effective slot on, and anything else (signature, hash, file, shapes, kind, version,
output) keeps the running model with the reason; shares only at a round's start, from
enough history, for the models this household runs."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sys
from collections import Counter

import pytest

from broker.community import Community, Forecasting, Member
from broker.identity import Identity
from broker.model_messages import ModelRelease, model_text
from edge.forecast import History, SeasonalNaive, SlotEnergy
from edge.model_updates import ModelUpdates
from edge.onnx_forecaster import MODELS_DIR, OnnxForecaster
from gridmesh.onnx_linear import build_model, read_model

BOSS = Identity.derived("coordinator", 1)
ME = Identity.derived("h001", 1)
COMMUNITY = Community(
    coordinator_key=BOSS.public_key_hex,
    members=(Member("h001", ME.public_key_hex), Member("s001", BOSS.public_key_hex, "storage")),
    forecasting=Forecasting(round_slots=96, min_members=3))
ROUND_SLOT = 1_627_968  # 2016-06-06 00:00 UTC: a round's first slot with daily rounds
EFFECTIVE = ROUND_SLOT + 2


def model_file(kind: str = "load", version: int = 2, scale: float = 1.25, inputs: int | None = None,
               meta_kind: str | None = None) -> bytes:
    bundled = read_model((MODELS_DIR / f"{kind}.onnx").read_bytes())
    weights = bundled.weights * scale
    if inputs is not None:
        weights = weights[:inputs]
    meta = {**bundled.meta, "gridmesh.kind": meta_kind or kind, "gridmesh.version": str(version),
            "gridmesh.features": str(weights.shape[0])}
    return build_model(meta_kind or kind, weights, bundled.bias, meta)


def release(data: bytes | None = None, kind: str = "load", version: int = 2, signer: Identity = BOSS,
            sha256: str | None = None) -> ModelRelease:
    data = model_file(kind, version) if data is None else data
    return signer.sign(ModelRelease(kind, version, ROUND_SLOT // 96, EFFECTIVE, 1, 3000, ("h001",), 481,
                                    sha256 or hashlib.sha256(data).hexdigest(), model_text(data),
                                    ROUND_SLOT * 900 + 900))


def agent() -> tuple[ModelUpdates, OnnxForecaster, Counter[str]]:
    forecaster = OnnxForecaster(pv_peak_w=1000)
    counts: Counter[str] = Counter()
    updates = ModelUpdates.for_member("h001", COMMUNITY, ME, forecaster, counts)
    assert updates is not None
    return updates, forecaster, counts


def history(slots: int = 200) -> History:
    h = History()
    for slot in range(ROUND_SLOT - slots, ROUND_SLOT):
        h.add(SlotEnergy(slot, 100 + slot % 7, max(0, 200 - abs(slot % 96 - 48) * 5)))
    return h


def test_a_trusted_release_is_staged_and_runs_from_its_effective_slot() -> None:
    updates, forecaster, counts = agent()
    old = forecaster.models["load"]
    updates.on_release(release(), history())
    assert counts["model_staged"] == 1 and forecaster.models["load"] is old
    updates.switch(EFFECTIVE - 1)
    assert forecaster.models["load"] is old
    updates.switch(EFFECTIVE)
    assert forecaster.models["load"].version == "2" and counts["model_switched"] == 1
    assert updates.stats() == {"model_load_version": 2, "model_load_since_slot": EFFECTIVE}
    before = OnnxForecaster(pv_peak_w=1000).forecast(history(), ROUND_SLOT, 1, None)[0]
    after = forecaster.forecast(history(), ROUND_SLOT, 1, None)[0]
    assert after.load_wh != before.load_wh and after.pv_wh == before.pv_wh  # the new load model forecasts
    updates.on_release(release(), history())  # its retained copy again: nothing to do, nothing refused
    assert counts["model_refused"] == 0 and counts["model_staged"] == 1


NOT_ONNX = b"this is not an ONNX model"


@pytest.mark.parametrize(("bad", "reason"), [
    (release(signer=ME), "bad signature: not signed by the coordinator"),
    (release(sha256="0" * 64), "the model's bytes do not match the release's SHA-256"),
    (release(NOT_ONNX), "not a readable ONNX model"),
    (release(model_file(inputs=50)), "takes 50 features and gives 96 slots; this build feeds 99"),
    (release(model_file("pv")), "a 'pv' model where 'load' was expected"),
    (release(version=1), "version 1 is not newer than version 1, running or staged"),
    (release(model_file(version=5)), "the model says it is version 5, the release 2"),
    (release(model_file(scale=float("nan"))), "its forecast from this household's history is not finite"),
], ids=["signature", "hash", "not-onnx", "shapes", "kind", "old-version", "version-mismatch", "not-finite"])
def test_a_release_that_fails_a_check_keeps_the_old_model_with_the_reason(
        bad: ModelRelease, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    updates, forecaster, counts = agent()
    old = forecaster.models["load"]
    with caplog.at_level(logging.WARNING, logger="gridmesh.edge"):
        updates.on_release(bad, history())
    updates.switch(EFFECTIVE + 10)
    assert forecaster.models["load"] is old and counts["model_refused"] == 1 and updates.staged == {}
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("h001: refused the load model version") and reason in line
    assert line.endswith("keeping version 1")


def test_a_staged_release_is_replaced_only_by_a_newer_one() -> None:
    updates, forecaster, counts = agent()
    updates.on_release(release(version=3), history())
    updates.on_release(release(version=2), history())  # older, arriving late
    assert counts["model_refused"] == 1 and updates.staged["load"].release.version == 3
    updates.switch(EFFECTIVE)
    assert forecaster.models["load"].version == "3"


def test_an_agent_without_the_onnx_package_still_checks_and_takes_a_release(
        monkeypatch: pytest.MonkeyPatch) -> None:
    good, tampered = release(), release(sha256="1" * 64)
    updates, forecaster, counts = agent()
    monkeypatch.setitem(sys.modules, "onnx", None)  # the edge runtime: onnxruntime alone
    updates.on_release(tampered, history())
    updates.on_release(good, history())
    updates.switch(EFFECTIVE)
    assert counts["model_refused"] == 1 and forecaster.models["load"].version == "2"


def test_shares_at_a_round_start_only_and_from_enough_history() -> None:
    updates, _, counts = agent()
    week = history(672)
    assert updates.shares(ROUND_SLOT + 1, week, 0) == []  # not a round's first slot
    shares = updates.shares(ROUND_SLOT, week, ROUND_SLOT * 900)
    assert [(s.kind, s.windows, s.rows, s.horizon, s.base_version) for s in shares] == [
        ("load", 481, 100, 96, 1), ("pv", 481, 196, 96, 1)]
    assert {s.round for s in shares} == {ROUND_SLOT // 96} and counts["shares_sent"] == 2
    gappy = history(672)
    gappy._slots.pop(ROUND_SLOT - 100)  # only the 99 slots after the gap count: no window
    assert updates.shares(ROUND_SLOT, gappy, 0) == [] and counts["share_skipped"] == 1
    assert updates.shares(ROUND_SLOT, history(200), 0) == []  # 9 windows < min_windows 96


def test_a_household_without_pv_shares_load_alone() -> None:
    forecaster = OnnxForecaster()  # no inverter rating: no PV to learn from
    updates = ModelUpdates.for_member("h001", COMMUNITY, ME, forecaster, Counter())
    assert updates is not None
    assert [s.kind for s in updates.shares(ROUND_SLOT, history(672), 0)] == ["load"]


def test_no_updates_when_rounds_are_off_for_storage_or_without_onnx() -> None:
    off = dataclasses.replace(COMMUNITY, forecasting=Forecasting())
    assert ModelUpdates.for_member("h001", off, ME, OnnxForecaster(), Counter()) is None
    assert ModelUpdates.for_member("s001", COMMUNITY, BOSS, OnnxForecaster(), Counter()) is None
    assert ModelUpdates.for_member("h001", COMMUNITY, ME, SeasonalNaive(), Counter()) is None
