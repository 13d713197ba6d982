"""Structured logs and the metrics options: the JSON line format, a real process that logs
JSON lines about an unreachable broker without ever showing its password, and the errors
for bad log and metrics choices."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import yaml

from broker.identity import Identity
from broker.launcher import free_port
from deploy.pki import Authority
from gridmesh.cli import UsageError, main
from gridmesh.logs import LOG_FORMAT_ENV, ContextLogger, JsonFormatter
from gridmesh.metrics import MetricsSection, metrics_address
from gridmesh.prometheus import MetricsServer

PASSWORD = "s3cret-Pa55word-never-logged"


def test_a_json_line_has_the_record_and_its_context() -> None:
    record = logging.LogRecord("gridmesh.edge", logging.WARNING, __file__, 1, "%s: slot %d late", ("h001", 7),
                               None)
    record.slot = 7
    entry = json.loads(JsonFormatter({"community": "demo", "device": "h009"}).format(record))
    assert entry["message"] == "h001: slot 7 late" and entry["level"] == "WARNING"
    assert (entry["logger"], entry["community"], entry["slot"]) == ("gridmesh.edge", "demo", 7)
    assert entry["device"] == "h009"  # the process's, where the call names none
    assert dt.datetime.fromisoformat(entry["ts"]).tzinfo is not None


def test_a_context_logger_names_its_device_and_the_calls_slot(caplog: pytest.LogCaptureFixture) -> None:
    ContextLogger(logging.getLogger("gridmesh.edge"), {"device": "h001"}).warning("late", extra={"slot": 7})
    [record] = caplog.records
    entry = json.loads(JsonFormatter({"community": "demo"}).format(record))
    assert (entry["community"], entry["device"], entry["slot"]) == ("demo", "h001", 7)


def test_a_coordinator_logs_json_lines_and_never_its_password(tmp_path: Path) -> None:
    boss = Identity.derived("coordinator", 1)
    (tmp_path / "coordinator.key").write_text(boss.private_hex())
    (tmp_path / "ca.crt").write_bytes(Authority.create("demo", dt.datetime.now(dt.UTC), 1).cert_pem)
    (tmp_path / "password").write_text(PASSWORD + "\n")
    config = tmp_path / "coordinator.yaml"
    config.write_text(yaml.safe_dump({
        "coordinator": {"key_file": "coordinator.key", "broker": f"127.0.0.1:{free_port()}",  # nobody there
                        "broker_auth": {"username": "coordinator", "password_file": "password",
                                        "ca_file": "ca.crt"}},
        "community": {"id": "demo", "members": []},
    }))

    async def first_lines() -> list[str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gridmesh", "coordinator", "--config", str(config), "--log-format", "json",
            stderr=asyncio.subprocess.PIPE)
        assert process.stderr is not None
        lines: list[str] = []
        try:
            while not any("unreachable" in line for line in lines):
                line = await asyncio.wait_for(process.stderr.readline(), 30)
                assert line, f"the coordinator ended: {lines}"
                lines.append(line.decode())
        finally:
            process.kill()
            await process.wait()
        return lines

    lines = asyncio.run(first_lines())
    entries = [json.loads(line) for line in lines]
    assert entries[-1]["level"] == "WARNING" and entries[-1]["community"] == "demo"
    assert "unreachable" in entries[-1]["message"]
    assert PASSWORD not in "".join(lines)


def test_a_bad_inherited_log_format_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "xml")
    assert main(["broker", "--port", "1"]) == 2
    error = capsys.readouterr().err
    assert error == "gridmesh broker: GRIDMESH_LOG_FORMAT='xml': must be one of text, json\n"
    monkeypatch.delenv(LOG_FORMAT_ENV)
    assert main(["broker", "--port", "1", "--log-level", "LOUD"]) == 2
    assert "--log-level: unknown level 'LOUD'" in capsys.readouterr().err


def test_metrics_options_win_over_the_file_and_are_checked() -> None:
    def args(port: int | None = None, host: str | None = None) -> Namespace:
        return Namespace(metrics_port=port, metrics_host=host)

    section = MetricsSection(9464, "0.0.0.0")
    assert metrics_address(None, args()) is None
    assert metrics_address(section, args()) == ("0.0.0.0", 9464)
    assert metrics_address(section, args(9500)) == ("0.0.0.0", 9500)
    assert metrics_address(None, args(9500)) == ("127.0.0.1", 9500)
    with pytest.raises(UsageError, match="--metrics-host needs --metrics-port"):
        metrics_address(None, args(host="0.0.0.0"))
    with pytest.raises(UsageError, match=r"--metrics-port must be 1\.\.65535"):
        metrics_address(None, args(70000))


def test_a_port_in_use_is_a_clear_error() -> None:
    from prometheus_client import CollectorRegistry
    first = MetricsServer(CollectorRegistry(), "127.0.0.1", free_port())
    try:
        with pytest.raises(UsageError, match=f"cannot serve metrics on 127.0.0.1:{first.port}"):
            MetricsServer(CollectorRegistry(), "127.0.0.1", first.port)
    finally:
        first.close()
