"""The event-loop runner: uvloop when installed, the standard loop otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest

from gridmesh import aio


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_runs_the_loop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert aio.run(loop_module()).startswith("uvloop")


def test_the_standard_loop_runs_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert aio.run(loop_module()).startswith("asyncio")
