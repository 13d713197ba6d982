"""The community's fees and rules in a whole run: network charges and losses on peer
energy, a penalty for metering beyond the connection limit, and exclusion from trading
after repeated violations, each with its reason."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from broker.units import money_u
from gridmesh.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.broker]
CONFIG = """\
community:
  fees: {p2p_fee_u_per_kwh: 20000, loss_pct: 2}
  rules: {limit_penalty_u_per_kwh: 100000, exclusion_after_violations: 2, exclusion_window_slots: 8,
          exclusion_slots: 3}
testbed:
  households: 6
  slots: 8
  prosumer_pct: 0
  pv_only_pct: 50        # three PV households, whose 400 W export limit a June morning exceeds
  start: 2016-06-06T10:00
  member_limits: {import_limit_w: 20000, export_limit_w: 400}
"""


def test_violations_are_charged_and_repeated_ones_exclude_for_a_while(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(CONFIG)
    out = tmp_path / "run"
    assert main(["testbed", "--config", str(tmp_path / "r.yaml"), "--out", str(out), "--json"]) == 0
    with sqlite3.connect(out / "coordinator.db") as db:
        rows = db.execute("SELECT payload FROM settlements ORDER BY slot").fetchall()
    settlements = [json.loads(payload) for (payload,) in rows]
    with sqlite3.connect(out / "results.db") as db:
        orders = db.execute("SELECT device, slot, accepted, reason FROM orders "
                            "WHERE kind = 'order'").fetchall()
    violations = [s for s in settlements if "connection limit exceeded by" in s["reason"]]
    assert violations
    for s in violations:  # 100,000 u/kWh on every Wh beyond the 100 Wh a slot
        over = int(s["reason"].split("connection limit exceeded by ")[1].split(" Wh")[0])
        assert s["rules_u"] == money_u(over, 100_000) and s["metered_wh"] == -(100 + over)
    exclusions = [(s["device"], s["reason"].split("; ")[-1]) for s in settlements
                  if "excluded until" in s["reason"]]
    assert exclusions and all(r.startswith("excluded until slot ") for _, r in exclusions)

    def until(reason: str) -> int:
        return int(reason.split("excluded until slot ")[1].split(":")[0])

    for device, slot, accepted, why in orders:
        if not accepted:  # refused only while excluded, saying why
            assert (device, why) in exclusions and slot < until(why)
    for device, reason in exclusions[:1]:  # and trading again once the exclusion is over
        assert any(d == device and accepted and slot >= until(reason) for d, slot, accepted, _ in orders)
    paying = [s for s in settlements if s["fees_u"] > 0]
    assert paying and all(s["contracted_wh"] > 0 and "network charge on" in s["reason"] for s in paying)
