"""The broker stopped and started again in the middle of a run, while everyone is at work.

Two runs of the same community, one undisturbed and one whose mosquitto is restarted right
after the start tick of slots 1 and 3 and right after each gate closure that follows them
(``testbed.broker_restarts``). Every process reconnects, the clock master sends its tick
again, the agents publish their outboxes again and the coordinator answers what it already
has with its first answers: the run ends on the very same ledger head, every outbox empty,
no answer missing and no false alarm about the ledger.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from gridmesh.cli import main
from tests.e2e.test_testbed import have_mosquitto

pytestmark = [pytest.mark.slow, pytest.mark.broker]
CONFIG = """\
testbed:
  households: 4
  slots: 6
  seed: 11
  start: 2016-06-06T10:00
  broker: mosquitto
"""


def run(tmp_path: Path, name: str, extra: str = "") -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(CONFIG + extra)
    out = tmp_path / name
    assert main(["testbed", "--config", str(config), "--out", str(out), "--json"]) == 0  # audit passed
    return out


def agent_counts(out: Path) -> Counter[str]:
    total: Counter[str] = Counter()
    for path in (out / "agents").glob("*.json"):
        total.update(json.loads(path.read_text()))
    return total


def test_no_order_report_or_block_is_lost_when_the_broker_restarts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not have_mosquitto():
        pytest.skip("mosquitto is not installed")
    calm = run(tmp_path, "calm")
    stormy = run(tmp_path, "stormy", "  broker_restarts: [1, 3]\n")
    assert capsys.readouterr().err.count("broker  stopped and started again") == 4

    summaries = [json.loads((out / "summary.json").read_text()) for out in (calm, stormy)]
    assert summaries[1]["head_hash"] == summaries[0]["head_hash"]  # nothing lost, nothing twice
    assert summaries[1]["ledger_height"] == summaries[0]["ledger_height"]
    counts = agent_counts(stormy)
    assert counts["reconnects"] >= 4 * 4 and counts["outbox_replayed"] > 0
    assert counts["outbox_pending"] == 0  # every order awarded, every report settled
    for alarm in ("answers_missing", "proof_unexpected", "proof_missing", "proof_alarm"):
        assert counts[alarm] == 0, alarm
    with sqlite3.connect(stormy / "coordinator.db") as conn:
        verdicts = conn.execute("SELECT kind, count(*), sum(accepted) FROM verdicts GROUP BY kind").fetchall()
        awards = conn.execute("SELECT count(*) FROM awards").fetchone()[0]
    with sqlite3.connect(calm / "coordinator.db") as conn:
        assert conn.execute("SELECT kind, count(*), sum(accepted) FROM verdicts GROUP BY kind").fetchall() \
            == verdicts
    orders = dict((kind, n) for kind, n, _ in verdicts)["order"]
    assert awards == orders  # one award per order
