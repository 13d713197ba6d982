"""Fixtures shared by every test folder: a real broker of each kind on a free port, and
households with a week of history for federated forecasting."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.launcher import BrokerHandle, find_mosquitto, start_broker
from edge.forecast import History, SlotEnergy
from simulators.profiles import ProfileSet

BROKER_KINDS = ("mosquitto", "embedded")


def require_broker(kind: str) -> None:
    """Skip a mosquitto test where mosquitto is missing, except under CI (``CI`` set),
    where that half of the suite must never silently disappear."""
    if kind == "mosquitto" and find_mosquitto() is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed but CI is set: .ci/run installs it")
        pytest.skip("mosquitto is not installed")


@pytest.fixture(params=BROKER_KINDS)
def broker_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    require_broker(kind)
    return kind


@pytest.fixture
def broker(broker_kind: str, tmp_path: Path) -> Iterator[BrokerHandle]:
    """A broker started by the project's launcher, stopped after the test."""
    with start_broker(broker_kind, workdir=tmp_path / "broker") as handle:
        yield handle


# -- federated forecasting: members who share, with histories from the bundled profiles --

FEDERATED_ROUND_SLOT = 1_628_544  # 2016-06-12 00:00 UTC, a multiple of 96: round 16964 of daily rounds


@pytest.fixture(scope="session")
def federated_histories() -> dict[str, History]:
    """Three households' week before slot 1,628,544 (a daily round's first slot, 2016-06-12
    00:00 UTC): load from three of the bundled load profiles, PV (1 kWp) from three PV
    profiles."""
    profiles = ProfileSet.load_bundled()
    histories: dict[str, History] = {}
    for index, (load, pv) in enumerate(zip(profiles.names("load")[:3], profiles.names("pv")[:3],
                                           strict=True)):
        history = History()
        for slot in range(FEDERATED_ROUND_SLOT - 672, FEDERATED_ROUND_SLOT):
            start, end = slot * 900, (slot + 1) * 900
            history.add(SlotEnergy(slot, profiles.energy_wh(load, start, end, 4000),
                                   profiles.energy_wh(pv, start, end, 1000)))
        histories[f"h00{index + 1}"] = history
    return histories
