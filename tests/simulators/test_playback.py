"""``gridmesh replay`` on a real run: one small testbed run (with a community rule that
excludes members whose balance falls too low, so some orders are rejected), its frames
checked against results.db, stepped through in the terminal view and printed; run
folders that are incomplete or from another version are named."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from broker.dashboard.app import PlaybackDashboard
from gridmesh.cli import main
from simulators.playback import Playback, load_playback

pytestmark = [pytest.mark.slow, pytest.mark.broker]
HOUSEHOLDS, SLOTS = 6, 6
RULES = "community:\n  rules:\n    min_balance_u: -30000\n"  # consumers with bills beyond 0.03 are excluded


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("playback")
    (folder / "rules.yaml").write_text(RULES)
    code = main(["testbed", "--config", str(folder / "rules.yaml"), "--households", str(HOUSEHOLDS),
                 "--slots", str(SLOTS), "--seed", "11", "--start", "2016-06-06T10:00", "--out",
                 str(folder / "run"), "--json"])
    assert code == 0
    return folder / "run"


@pytest.fixture(scope="module")
def playback(run: Path) -> Playback:
    return load_playback(run)


def rows(run: Path, sql: str) -> list[dict[str, Any]]:
    with sqlite3.connect(run / "results.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql)]


def test_every_frame_agrees_with_the_runs_results(run: Path, playback: Playback) -> None:
    slots = rows(run, "SELECT * FROM slots ORDER BY slot")
    assert playback.slots == tuple(r["slot"] for r in slots) and len(playback.frames) == SLOTS
    household_slots = rows(run, "SELECT * FROM household_slots")
    battery = {r["household"]: r["battery_wh"] > 0 for r in rows(run, "SELECT * FROM households")}
    rejected = rows(run, "SELECT ref, slot, reason FROM orders WHERE NOT accepted")
    assert rejected and sum(r["p2p_wh"] for r in slots) > 0  # the run has both to show
    for frame, row in zip(playback.frames, slots, strict=True):
        slot = row["slot"]
        assert frame.current_slot == slot
        if row["orders"]:
            assert frame.clearing is not None and frame.clearing.slot == slot
            assert frame.clearing.price_u_per_kwh == row["price_u_per_kwh"]
            assert (frame.clearing.p2p_wh, frame.clearing.grid_import_wh, frame.clearing.grid_export_wh) == (
                row["p2p_wh"], row["cleared_import_wh"], row["cleared_export_wh"])
            assert frame.book is not None and frame.book.slot == slot
            assert frame.book.depth("buy").orders + frame.book.depth("sell").orders == row["orders"]
        metered = frame.metered[slot]
        assert (metered.import_wh, metered.export_wh) == (row["feeder_import_wh"], row["feeder_export_wh"])
        for h in (h for h in household_slots if h["slot"] == slot):
            view = frame.devices[h["household"]]
            assert view.telemetry is not None
            assert view.telemetry.soc_pct == (h["soc_end_pct"] if battery[h["household"]] else None)
            assert view.telemetry.grid_power_w == (h["import_wh"] - h["export_wh"]) * 4  # 15-minute slots
            if h["metered_wh"] is not None:
                assert view.settlement is not None and view.settlement.bill_u == h["bill_u"]
        assert {(r.ref, r.reason) for r in frame.rejections} == {
            (r["ref"], r["reason"]) for r in rejected if r["slot"] <= slot}
    summary = json.loads((run / "summary.json").read_text())
    assert playback.frames[-1].ledger_height == summary["ledger_height"] and playback.frames[-1].ended


def test_the_playback_view_steps_through_the_run(run: Path, playback: Playback) -> None:
    soc = {(r["household"], r["slot"]): r["soc_end_pct"] for r in rows(run, "SELECT * FROM household_slots")}

    async def scenario() -> None:
        app = PlaybackDashboard(playback.frames, f"playback of {run}")
        async with app.run_test(size=(160, 50)) as pilot:
            def at(index: int) -> None:
                header = str(app.query_one("#header", Static).content)
                assert f"slot {index + 1} of {SLOTS}" in header
                assert f"slot {playback.slots[index]} (" in header
                table = app.query_one("#devices", DataTable)
                h001 = next(r for r in map(table.get_row_at, range(table.row_count)) if r[0] == "h001")
                assert h001[6] == str(soc["h001", playback.slots[index]])

            at(0)
            await pilot.press("right", "right", "right")
            at(3)
            await pilot.press("left")
            at(2)
            await pilot.press("end")
            at(SLOTS - 1)
            assert "run ended" in str(app.query_one("#header", Static).content)
            await pilot.press("home")
            at(0)

    asyncio.run(scenario())


def test_replay_prints_one_slot_or_every_slot(run: Path, playback: Playback,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    last = playback.slots[-1]
    assert main(["replay", str(run), "--print", "--slot", str(last), "--filter", "h006"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"community demo · playback of {run}: slot {SLOTS} of {SLOTS}\n")
    assert f"h006:{last}:4 excluded" not in out and f"order h006:{last}:4: excluded until slot" in out
    assert "\nh001 " not in out and "\nh006 " in out
    assert main(["replay", str(run), "--print"]) == 0
    out = capsys.readouterr().out
    assert [line.split(": slot ")[1] for line in out.splitlines() if line.startswith("community demo")] == [
        f"{i} of {SLOTS}" for i in range(1, SLOTS + 1)]
    assert main(["replay", str(run), "--print", "--slot", "5"]) == 2
    assert f"slot 5 is not in the run at {run} (its slots are {playback.slots[0]}..{last})" in (
        capsys.readouterr().err)


def _marker(path: Path, **changes: object) -> None:
    marker = json.loads((path / "run.json").read_text())
    (path / "run.json").write_text(json.dumps({**marker, **changes}))


@pytest.mark.parametrize(("spoil", "problem"), [
    (lambda p: (p / "results.db").unlink(), "missing results.db"),
    (lambda p: _marker(p, status="running"), "the run did not finish (run.json says status 'running')"),
    (lambda p: _marker(p, results_format=0, gridmesh="0.0.9"),
     "written by gridmesh 0.0.9 in results format 0; this gridmesh (0.1.0) reads format 1"),
    (lambda p: (p / "ledger.db").write_bytes(b"no ledger" * 100), "ledger.db: "),
])
def test_a_run_folder_that_cannot_be_played_back_is_named(
        run: Path, tmp_path: Path, spoil: Callable[[Path], object], problem: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("logs", "state", "broker", "config", "*.csv"))
    spoil(copy)
    assert main(["replay", str(copy), "--print"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gridmesh replay: run folder {copy}: ") and problem in err, err
    assert len(err.splitlines()) == 1
