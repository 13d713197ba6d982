"""The battery the community owns, with its own agent, in a whole testbed run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gridmesh.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def test_the_community_battery_trades_with_the_members_and_meters_what_it_won(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["testbed", "--households", "8", "--slots", "8", "--seed", "2", "--start", "2016-06-06T10:00",
                 "--community-battery-wh", "20000", "--out", str(out), "--json"]) == 0
    with sqlite3.connect(out / "results.db") as db:
        role, load, pv = db.execute(
            "SELECT role, load_wh, pv_wh FROM households WHERE household = 's001'").fetchone()
        assert (role, load, pv) == ("storage", 0, 0)
        slots = db.execute("SELECT contracted_wh, metered_wh, charge_wh, discharge_wh, soc_end_pct "
                           "FROM household_slots WHERE household = 's001' ORDER BY slot").fetchall()
        partners = db.execute(
            "SELECT buyer, seller FROM trades WHERE buyer = 's001' OR seller = 's001'").fetchall()
    # Late morning: the members' deficit first (it sells), their PV surplus later (it buys).
    contracted = [c for c, *_ in slots]
    assert min(contracted) < 0 < max(contracted) and sum(map(abs, contracted)) > 300
    for contracted_wh, metered_wh, charge, discharge, _ in slots:
        # It runs at what it won; each of a slot's two physics steps may drop a part of a Wh.
        assert metered_wh is not None and abs(metered_wh - contracted_wh) <= 2
        assert metered_wh == charge - discharge  # a battery alone behind its meter
    assert (slots[-1][4] > 50) == (sum(contracted) > 0)  # from the 50 % it started at
    assert partners and all((b if s == "s001" else s).startswith("h") for b, s in partners)
