"""A testbed run with --metrics serves Prometheus endpoints for the coordinator and each
agent process, named in RUN/metrics.json, while the run goes on.

The run is held at its start by an agent the test runs itself (--external-agents): the
testbed waits for it to come online, so its endpoints can be scraped before anything has
happened; then the test starts that agent and the run goes to its end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"the testbed ended ({proc.returncode}) before writing {path.name}"
        assert time.monotonic() < deadline, f"no {path.name} within {timeout_s} s"
        time.sleep(0.05)  # polling for a file another process writes, not waiting for time to pass
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def scrape(url: str, timeout_s: float = 30) -> dict[str, list[dict[str, str]]]:
    """Each family's samples' labels, once the endpoint answers (its process may still be starting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, f"{url} did not answer within {timeout_s} s"
            time.sleep(0.05)
    return {family.name: [dict(s.labels) for s in family.samples]
            for family in text_string_to_metric_families(text)}


def test_a_run_with_metrics_serves_the_coordinator_and_each_agent_process(tmp_path: Path) -> None:
    out = tmp_path / "run"
    testbed = subprocess.Popen(
        [sys.executable, "-m", "gridmesh", "testbed", "--households", "4", "--slots", "3", "--start",
         "2016-06-06T10:00", "--metrics", "--external-agents", "h004", "--out", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    agent: subprocess.Popen[bytes] | None = None
    try:
        external = wait_for(out / "external.json", testbed)
        urls = wait_for(out / "metrics.json", testbed)
        assert set(urls) == {"coordinator", "agents-1"}
        agents = scrape(urls["agents-1"])
        devices = {labels["device"] for family in agents.values() for labels in family if "device" in labels}
        assert devices == {"h001", "h002", "h003"}  # h004 runs outside, without the testbed's endpoint
        assert "gridmesh_agent_outbox_messages" in agents and "gridmesh_agent_control_cycle_seconds" in agents
        coordinator = scrape(urls["coordinator"])
        assert {"gridmesh_coordinator_slots_cleared", "gridmesh_coordinator_submissions",
                "gridmesh_coordinator_clearing_latency_seconds"} <= set(coordinator)
        agent = subprocess.Popen([sys.executable, "-m", "gridmesh", "agent", "--config",
                                  external["agents"]["h004"]],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stdout, stderr = testbed.communicate(timeout=90)
        assert testbed.returncode == 0, stderr.decode()[-2000:]
        assert json.loads(stdout)["slots"] == 3
        assert f"metrics coordinator: {urls['coordinator']}" in stderr.decode()
        assert agent.wait(timeout=30) == 0
    finally:
        for proc in (testbed, agent):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
