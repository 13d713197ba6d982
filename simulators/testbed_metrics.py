"""The testbed's Prometheus endpoints (``testbed.metrics``, ``--metrics``): a local port
for the coordinator and one for each agent process, named in ``RUN/metrics.json`` and on
stderr as the run starts, so Prometheus (or ``curl``) can watch a virtual community."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from broker.launcher import free_port_block

METRICS_FILE = "metrics.json"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class MetricsPorts:
    coordinator: int
    agents: tuple[int, ...]  # by agent process, in the order the testbed starts them

    @classmethod
    def pick(cls, agent_processes: int) -> MetricsPorts:
        """Consecutive free ports below the kernel's ephemeral range."""
        first = free_port_block(1 + agent_processes, HOST)
        return cls(first, tuple(range(first + 1, first + 1 + agent_processes)))

    def port_of(self, process: str) -> int:
        """The port of ``coordinator`` or of agent process ``agents-N``."""
        return self.coordinator if process == "coordinator" else self.agents[int(process.split("-")[1]) - 1]

    def agent_args(self, index: int) -> list[str]:
        """``gridmesh agent`` options for agent process ``index`` (from 0)."""
        return ["--metrics-port", str(self.agents[index]), "--metrics-host", HOST]


def announce_metrics(out: Path, endpoints: dict[str, int]) -> dict[str, str]:
    """Write RUN/metrics.json ({process: URL}) and say on stderr where each endpoint is."""
    urls = {name: f"http://{HOST}:{port}/metrics" for name, port in endpoints.items()}
    (out / METRICS_FILE).write_text(json.dumps(urls, indent=2) + "\n")
    for name, url in urls.items():
        print(f"  metrics {name}: {url}", file=sys.stderr, flush=True)
    return urls
