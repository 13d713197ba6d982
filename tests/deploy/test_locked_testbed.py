"""A whole testbed run through a locked-down mosquitto: every process presents its own
credentials, the market runs as on an open broker, and no secret reaches a log."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from broker.launcher import find_mosquitto
from gridmesh.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.broker]
RUN = ["--households", "6", "--slots", "6", "--seed", "11", "--start", "2016-06-06T10:00", "--json"]
PRINCIPALS = {"coordinator", "testbed", "r1", *(f"h00{i}" for i in range(1, 7))}


def run_testbed(out: Path, tmp_path: Path, *extra: str) -> None:
    config = tmp_path / "replica.yaml"  # and a ledger replica, a process of its own
    config.write_text("testbed:\n  replicas: 1\n")
    assert main(["testbed", "--config", str(config), *RUN, "--out", str(out), *extra]) == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if find_mosquitto() is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed but CI is set: .ci/run installs it")
        pytest.skip("mosquitto is not installed")
    base = tmp_path_factory.mktemp("locked-testbed")
    found = {}
    for auth in ("none", "tls", "password"):
        found[auth] = base / auth
        run_testbed(found[auth], base, "--broker", "mosquitto", "--broker-auth", auth)
    return found


def summary_of(run: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((run / "summary.json").read_text())
    return data


@pytest.mark.parametrize("auth", ["tls", "password"])
def test_the_market_runs_as_on_an_open_broker(runs: dict[str, Path], auth: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    locked, open_ = summary_of(runs[auth]), summary_of(runs["none"])
    assert locked["broker"] == f"{open_['broker']}, locked down ({auth})"
    assert locked["trades"] and locked["orders_rejected"] == 0 and locked["reports_accepted"] == 36
    assert locked["head_hash"] == open_["head_hash"]  # the same ledger, block for block
    assert main(["ledger", "audit", str(runs[auth] / "ledger.db"), "--replay"]) == 0
    assert "audit passed" in capsys.readouterr().out


@pytest.mark.parametrize("auth", ["tls", "password"])
def test_every_process_logged_in_once_as_itself(runs: dict[str, Path], auth: str) -> None:
    """Each principal connected once: a publish the ACL refused would have made mosquitto
    close the connection, and the client would have come back."""
    log = (runs[auth] / "broker" / "broker.out").read_text()
    users = re.findall(r"New client connected from \S+ as (\S+) \(p\d, c\d, k\d+, u'([^']+)'\)", log)
    assert sorted(user for _, user in users) == sorted([*PRINCIPALS, "testbed"])  # clock and faults
    for client, user in users:
        assert client in (f"demo-{user}", "demo-clock", "demo-faults")
    agent = (runs[auth] / "config" / "agents" / "h001.yaml").read_text()
    assert "broker_auth:" in agent and "../../broker-auth/devices/h001/" in agent


def test_no_password_reaches_a_log_or_the_summary(runs: dict[str, Path]) -> None:
    run = runs["password"]
    passwords = [p.read_text().strip() for p in (run / "broker-auth" / "devices").glob("*/password")]
    assert len(passwords) == len(PRINCIPALS)
    texts = [p.read_text(errors="replace") for p in [*(run / "logs").iterdir(), run / "summary.json",
                                                     run / "broker" / "broker.out"]]
    for password in passwords:
        assert not any(password in text for text in texts)


def test_a_locked_down_run_needs_mosquitto(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["testbed", *RUN, "--broker", "embedded", "--broker-auth", "tls", "--out",
                 str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--broker-auth: tls needs mosquitto: the embedded broker has no TLS, passwords or ACL" in err
    assert not (tmp_path / "x").exists()


def test_fault_commands_to_a_locked_down_run_need_its_credentials(
        runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    run = runs["tls"]
    assert main(["fault", "--run", str(run), "h001", "meter", "timeout"]) == 2
    err = capsys.readouterr().err
    assert f"--broker-auth {run}/broker-auth/devices/NAME/broker_auth.yaml" in err
