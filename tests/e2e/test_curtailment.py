"""The feeder's export limit in a whole run: the market tells sellers how much PV to
hold back, their agents cap their inverters, and the feeder's export comes down to the
limit (forecast errors aside)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gridmesh.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.broker]
LIMIT_WH = 500  # 2 kW for a quarter hour


def test_a_sunny_morning_over_the_export_limit_is_curtailed_to_it(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("community:\n  grid: {import_limit_w: 200000, export_limit_w: 2000}\n"
                      "testbed:\n  households: 6\n  slots: 6\n  prosumer_pct: 30\n  pv_only_pct: 70\n"
                      "  start: 2016-06-06T10:00\n")
    out = tmp_path / "run"
    assert main(["testbed", "--config", str(config), "--out", str(out), "--json"]) == 0
    with sqlite3.connect(out / "results.db") as db:
        slots = db.execute("SELECT slot, SUM(curtailed_wh), SUM(export_wh) - SUM(import_wh) "
                           "FROM household_slots GROUP BY slot ORDER BY slot").fetchall()
    with sqlite3.connect(out / "coordinator.db") as db:
        asked = dict(db.execute("SELECT slot, SUM(json_extract(payload, '$.curtail_wh')) FROM awards "
                                "GROUP BY slot").fetchall())
        reasons = {r for (r,) in db.execute("SELECT json_extract(payload, '$.reason') FROM awards "
                                            "WHERE json_extract(payload, '$.curtail_wh') > 0")}
    first, *rest = slots
    # The first slot had no market yet (orders go one slot ahead): the whole surplus flowed.
    assert first[1] == 0 and first[2] > 2 * LIMIT_WH
    for slot, curtailed, exported in rest:
        assert asked.get(slot, 0) > 0 and curtailed > 0  # asked, and done
        assert exported <= LIMIT_WH * 1.15  # within forecast error of the limit
    assert reasons and all("exceeds the feeder's export limit of 500 Wh" in r for r in reasons)
