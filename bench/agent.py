"""Benchmark: one edge agent's footprint. Prints one JSON object:

- ``rss_mb``: the peak resident memory of an agent process serving one household
  (meter, PV inverter and battery on Modbus TCP, ONNX forecasters loaded) through a
  testbed run, sampled every 20 ms, under either tariff; ``rss_mb_by_run`` per run;
- ``cpu_ms_per_slot``: the agent process's CPU time per market slot, marginal (the
  difference between a long and a short run of the same household, divided by the
  slots between them, so start-up is not in it), under a flat tariff and under the
  bundled dynamic tariff (where it plans its battery over the horizon each slot);
- ``flat_metrics`` in the two per-run figures: the flat tariff with the agent's Prometheus endpoint served
  (``gridmesh testbed --metrics``; nobody scrapes it);
- ``control_cycle_ms``: the agent's own count of time in its device layer per slot
  start (reading meter, inverter and battery, writing the battery's command);
- ``startup_s``: from starting ``gridmesh agent`` to its retained ``online`` status on
  the broker (imports, configuration, key, models, MQTT session), median of 5.

Targets on this machine: RSS under 120 MB, CPU under 20 ms per slot, start under 3 s.

    .venv/bin/python bench/agent.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from broker.launcher import start_broker

SHORT, LONG = 100, 196  # both past the first day: the marginal slots forecast with the models
START = "2016-01-18"


class AgentWatch:
    """Samples the agent processes under a testbed process: peak RSS and last CPU time."""

    def __init__(self, root: subprocess.Popen[bytes]) -> None:
        self.root = psutil.Process(root.pid)
        self.rss = 0
        self.cpu_s = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.is_set():
            try:
                agents = [p for p in self.root.children(recursive=True) if "agent" in p.cmdline()[3:5]]
                for proc in agents:
                    with proc.oneshot():
                        self.rss = max(self.rss, proc.memory_info().rss)
                        times = proc.cpu_times()
                        self.cpu_s = max(self.cpu_s, times.user + times.system)
            except psutil.Error:
                pass
            time.sleep(0.02)


def run(slots: int, out: Path, *extra: str) -> tuple[AgentWatch, dict[str, int]]:
    cmd = [sys.executable, "-m", "gridmesh", "testbed", "--households", "1", "--slots", str(slots),
           "--start", START, "--config", str(out.parent / "one.yaml"), "--out", str(out), "--json", *extra]
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        watch = AgentWatch(proc)
        code = proc.wait()
    watch.done.set()
    watch.thread.join()
    if code != 0:
        raise SystemExit(f"testbed exited with {code}: {' '.join(cmd)}")
    stats = json.loads(next((out / "agents").glob("*.json")).read_text())
    return watch, stats


def _on_status(_client: mqtt.Client, online: threading.Event, message: mqtt.MQTTMessage) -> None:
    """A live status comes without the retain flag; the last run's retained one with it."""
    if b'"online"' in message.payload and not message.retain:
        online.set()


def startup_s(config_dir: Path, runs: int = 5) -> float:
    """Seconds from spawning the agent to its retained online status, median of ``runs``."""
    times = []
    with start_broker("auto") as broker:
        agent_file = config_dir / "agents" / "h001.yaml"
        data = yaml.safe_load(agent_file.read_text())
        data["agent"]["broker"] = f"127.0.0.1:{broker.port}"
        probe = config_dir / "agents" / "startup.yaml"
        probe.write_text(yaml.safe_dump(data))
        for _ in range(runs):
            online = threading.Event()
            client = mqtt.Client(CallbackAPIVersion.VERSION2, userdata=online)
            client.on_message = _on_status
            client.connect("127.0.0.1", broker.port)
            client.subscribe("gm/v1/+/dev/h001/status", qos=1)
            client.loop_start()
            started = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "gridmesh", "agent", "--config", str(probe)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not online.wait(30):
                proc.kill()
                raise SystemExit("the agent did not come online within 30 s")
            times.append(time.perf_counter() - started)
            proc.kill()
            proc.wait()
            client.loop_stop()
            client.disconnect()
    return round(statistics.median(times), 2)


def main() -> None:
    result: dict[str, object] = {"benchmark": "agent", "household": "prosumer: meter, PV, battery"}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "one.yaml").write_text("testbed:\n  prosumer_pct: 100\n")
        cpu: dict[str, float] = {}
        rss: dict[str, float] = {}
        for tariff, extra in (("flat", ()), ("dynamic", ("--prices-csv", "bundled")),
                              ("flat_metrics", ("--metrics",))):
            short, _ = run(SHORT, base / f"{tariff}-short", *extra)
            long, stats = run(LONG, base / f"{tariff}-long", *extra)
            cpu[tariff] = round((long.cpu_s - short.cpu_s) * 1000 / (LONG - SHORT), 2)
            rss[tariff] = round(long.rss / 2**20, 1)
            if tariff == "flat":
                result["control_cycle_ms"] = round(stats["device_us"] / stats["device_cycles"] / 1000, 2)
        result["rss_mb"] = max(rss["flat"], rss["dynamic"])  # the agent as it runs by default
        result["rss_mb_by_run"] = rss
        result["cpu_ms_per_slot"] = cpu
        result["startup_s"] = startup_s(base / "flat-short" / "config")
    result["targets"] = "RSS < 120 MB, CPU < 20 ms per slot, start < 3 s"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
