"""Fixtures shared by every test folder: a real broker of each kind on a free port."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.launcher import BrokerHandle, find_mosquitto, start_broker

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
