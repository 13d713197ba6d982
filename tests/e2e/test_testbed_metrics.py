"""A testbed run with --metrics serves Prometheus endpoints for the coordinator and each
agent process, named in RUN/metrics.json, while the run goes on.

The run is held at its start by an agent the test runs itself (--external-agents): the
testbed waits for it to come online, so its endpoints can be scraped before anything has
happened; then the test starts that agent and the run goes to its end. Nothing here waits
for time to pass: the test reads the testbed's own announcements as it makes them, and
scrapes once the processes are online on the broker (each serves its metrics before it
connects)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from broker.bus import Endpoint

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def announced(testbed: subprocess.Popen[bytes], *wanted: str) -> dict[str, str]:
    """The testbed's stderr lines that hold each of ``wanted``, read as it writes them."""
    assert testbed.stderr is not None
    found: dict[str, str] = {}
    for raw in testbed.stderr:
        line = raw.decode()
        found.update({text: line for text in wanted if text in line})
        if len(found) == len(wanted):
            return found
    raise AssertionError(f"the testbed ended ({testbed.wait()}) before announcing {wanted}")


def wait_online(broker: str, devices: set[str], timeout_s: float = 30) -> None:
    """Return once every one of ``devices`` has a retained ``online`` status on ``broker``."""
    endpoint = Endpoint.parse(broker)
    online: set[str] = set()
    done = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if json.loads(message.payload).get("state") == "online":
            online.add(message.topic.split("/")[-2])
            if devices <= online:
                done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.connect(endpoint.host, endpoint.port)
    client.subscribe("gm/v1/+/dev/+/status", qos=1)
    client.loop_start()
    try:
        assert done.wait(timeout_s), f"online: {sorted(online)}, waiting for {sorted(devices - online)}"
    finally:
        client.loop_stop()
        client.disconnect()


def scrape(url: str) -> dict[str, list[dict[str, str]]]:
    """Each family's samples' labels."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
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
        lines = announced(testbed, "external agent h004", "metrics coordinator:", "metrics agents-1:")
        urls = json.loads((out / "metrics.json").read_text())  # written before it is announced
        assert set(urls) == {"coordinator", "agents-1"}
        assert lines["metrics coordinator:"].split()[-1] == urls["coordinator"]
        external = json.loads((out / "external.json").read_text())
        wait_online(external["broker"], {"coordinator", "h001", "h002", "h003"})
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
        assert agent.wait(timeout=30) == 0
    finally:
        for proc in (testbed, agent):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
