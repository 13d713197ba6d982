"""The drills, with real processes: a broker killed and started again, the coordinator and
an agent killed with SIGKILL and restarted by the supervisor, an agent's network cut.

Each runs ``gridmesh drill NAME`` on its small default run, on mosquitto and on the
embedded broker, and reads the report it printed; besides the report's own checks, each
test looks at the run's files itself. Nothing was lost when the ledger is the very one
an undisturbed run of the same seed and shape makes: the virtual clock makes a run's
outcome a function of its inputs.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from broker.launcher import READY_LINE
from gridmesh.cli import main
from simulators.drills import TRADING_DAY
from simulators.run_folder import open_run

pytestmark = [pytest.mark.slow, pytest.mark.broker]
EVERY_DRILL_CHECKS = {
    "the run reached its last tick", "the drill struck", "one clearing published per slot",
    "every slot cleared once", "every metered slot settled exactly once", "every accepted order awarded once",
    "block heights contiguous, each slot sealed once", "every agent's outbox flushed", "the market resumed",
    "ledger audit", "ledger replay"}


@pytest.fixture(scope="module")
def undisturbed_head(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The head hash of the drills' default run, with nothing going wrong (on the embedded
    broker: under the virtual clock the broker makes no difference to the ledger)."""
    out = tmp_path_factory.mktemp("undisturbed") / "run"
    shape = [f"--{key}={value}" for key, value in TRADING_DAY.items()]
    assert main(["testbed", *shape, "--broker", "embedded", "--out", str(out), "--json"]) == 0
    head: str = json.loads((out / "summary.json").read_text())["head_hash"]
    return head


def drill(out: Path, capsys: pytest.CaptureFixture[str], broker: str, name: str,
          *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["drill", name, "--broker", broker, "--out", str(out), "--json", *extra])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert report == json.loads((out / "drill.json").read_text())
    failed = [c for c in report["checks"] if c["outcome"] != "passed"]
    assert code == 0 and report["passed"] and not failed, failed
    assert {c["name"] for c in report["checks"]} >= EVERY_DRILL_CHECKS
    run = open_run(out)  # a drill's folder is a run's too: results, summary, report, playback
    assert run.marker["drill"] == name and run.summary["head_hash"] == head_hash(out)
    assert (out / "report.html").is_file()
    return report


def head_hash(out: Path) -> str:
    with sqlite3.connect(out / "ledger.db") as db:
        return str(db.execute("SELECT hash FROM blocks ORDER BY height DESC LIMIT 1").fetchone()[0])


def agent_stats(out: Path, household: str) -> dict[str, int]:
    stats: dict[str, int] = json.loads((out / "agents" / f"{household}.json").read_text())
    return stats


def test_a_broker_killed_for_seconds_loses_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], broker_kind: str, undisturbed_head: str) -> None:
    out = tmp_path / "run"
    drill(out, capsys, broker_kind, "broker-outage", "--down-s", "2")
    broker_out = (out / "broker" / "broker.out").read_text()
    assert len(READY_LINE[broker_kind].findall(broker_out)) == 2  # started, killed, started again
    assert all(agent_stats(out, f"h00{i}")["reconnects"] >= 1 for i in range(1, 5))
    assert head_hash(out) == undisturbed_head


def test_a_coordinator_killed_mid_gate_closure_clears_and_settles_nothing_twice(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], broker_kind: str, undisturbed_head: str) -> None:
    out = tmp_path / "run"
    report = drill(out, capsys, broker_kind, "coordinator-kill", "--restart-delay-s", "0.5")
    assert "coordinator killed (SIGKILL" in report["events"][0]
    assert "supervisor: exit code -9; started again" in (out / "logs" / "coordinator.log").read_text()
    assert head_hash(out) == undisturbed_head  # the same blocks, each slot sealed once
    assert main(["ledger", "audit", str(out / "ledger.db"), "--replay"]) == 0


def test_a_coordinator_killed_as_submissions_arrive_loses_none_of_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], broker_kind: str, undisturbed_head: str) -> None:
    out = tmp_path / "run"
    report = drill(out, capsys, broker_kind, "coordinator-kill", "--moment", "orders",
                   "--restart-delay-s", "0.5")
    assert "start: coordinator killed (SIGKILL" in report["events"][0]
    assert head_hash(out) == undisturbed_head  # every order and report of that moment got through


def test_a_killed_agent_rejoins_flushes_its_outbox_and_commands_its_battery_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], broker_kind: str) -> None:
    out = tmp_path / "run"
    report = drill(out, capsys, broker_kind, "agent-kill", "--restart-delay-s", "0.5")
    checks = {c["name"]: c["detail"] for c in report["checks"]}
    assert "its outbox held 2 message(s): h001:" in report["events"][0]  # its report and its next order
    assert checks["its battery setpoint applied again"].startswith("before the kill the register held -")
    stats = agent_stats(out, "h001")  # the restarted process's counters
    assert stats["outbox_replayed"] >= 2 and stats["outbox_pending"] == 0 and stats["sessions"] == 1
    log = (out / "logs").glob("agents-*.log")
    assert sum("supervisor: exit code -9" in path.read_text() for path in log) == 1


def test_an_agent_cut_off_catches_up(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], broker_kind: str, undisturbed_head: str) -> None:
    out = tmp_path / "run"
    report = drill(out, capsys, broker_kind, "network-cut", "--down-s", "1", "--household", "h003")
    assert any("h003's link cut as it sent" in event for event in report["events"])
    stats = agent_stats(out, "h003")
    assert stats["reconnects"] >= 1 and stats["outbox_replayed"] >= 1 and stats["outbox_pending"] == 0
    assert head_hash(out) == undisturbed_head


@pytest.mark.parametrize(("args", "problem"), [
    (["--at-slot", "4"], "--at-slot 4: must be between 1 and 3"),
    (["--down-s", "0"], "--down-s 0: must be more than 0"),
    (["--household", "h009"], "--household h009: not in this run (h001..h004)"),
    (["--restart-delay-s", "-1"], "--restart-delay-s -1: must be between 0 and 60"),
])
def test_a_drill_that_cannot_run_as_asked_says_why_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], problem: str) -> None:
    out = tmp_path / "run"
    assert main(["drill", "network-cut", "--out", str(out), *args]) == 2
    assert problem in capsys.readouterr().err
    assert not out.exists()
