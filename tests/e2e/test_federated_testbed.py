"""Federated forecasting in a whole run: two days of four households with daily rounds
(``--federated-round-slots 96``). The third day's round is the first with two full days
of history; the coordinator releases both forecasters, every household switches to
them at the slot boundary after, and the ledger still audits and replays."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from gridmesh.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.broker]
CONFIG = """\
community:
  forecasting: {min_members: 3, min_windows: 1}   # a test's two days give each member 2 windows
testbed:
  households: 4
  prosumer_pct: 75      # three with PV: enough for a PV release too
  slots: 196            # 2016-06-06 00:00 to 2016-06-08 01:00
"""
FIRST_SLOT = 1_627_968  # 2016-06-06 00:00 UTC
ROUND = (FIRST_SLOT + 192) // 96  # the third day's round: 192 slots of history


def test_a_round_releases_models_that_every_household_switches_to(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(CONFIG)
    out = tmp_path / "run"
    code = main(["testbed", "--config", str(tmp_path / "run.yaml"), "--federated-round-slots", "96",
                 "--out", str(out), "--json"])
    assert code == 0  # the ledger audit and the replay passed
    community = yaml.safe_load((out / "config" / "community.yaml").read_text())
    assert community["forecasting"]["round_slots"] == 96
    with sqlite3.connect(out / "coordinator.db") as db:
        releases = db.execute("SELECT kind, version, round, effective_slot, members FROM releases "
                              "ORDER BY kind").fetchall()
        shares = db.execute("SELECT kind, device, accepted FROM shares ORDER BY kind, device").fetchall()
    assert releases == [("load", 2, ROUND, ROUND * 96 + 2, 4), ("pv", 2, ROUND, ROUND * 96 + 2, 3)]
    assert len(shares) == 7 and all(accepted for _, _, accepted in shares)
    has_pv = {device for kind, device, _ in shares if kind == "pv"}
    for stats_file in sorted((out / "agents").glob("h*.json")):
        stats = json.loads(stats_file.read_text())
        assert stats["share_accepted"] == (2 if stats_file.stem in has_pv else 1), stats_file
        # every household runs both released models (one without PV keeps its PV model current too)
        assert stats["model_staged"] == stats["model_switched"] == 2, stats_file
        assert stats.get("model_refused", 0) == 0, stats_file
        for kind in ("load", "pv"):  # from the slot boundary after the one that pooled them
            assert stats[f"model_{kind}_version"] == 2, stats_file
            assert stats[f"model_{kind}_since_slot"] == ROUND * 96 + 2, stats_file
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ledger_height"] == 197 and summary["orders_rejected"] == 0
    assert (summary["models_switched"], summary["models_refused"]) == (8, 0)
