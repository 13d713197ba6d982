"""The agents' Prometheus series (docs/integrations.md#metrics), one registry per process.

A process may run many agents (a testbed runs up to 50 in one), so every series carries
a ``device`` label. Counters are read from what each agent counts anyway when
Prometheus scrapes (a copy of a dict, no database, no Modbus); each slot cycle adds two
histogram observations and the outbox's depth, which the agent's own loop reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import Metric

from gridmesh.metrics import LATENCY_BUCKETS_S
from gridmesh.prometheus import counter, gauge

if TYPE_CHECKING:
    from edge.agent import Agent

RESULT = re.compile(r"^(order|report|share)_(accepted|rejected)$")
AWARD = re.compile(r"^award_(filled|partial|unfilled)$")
# Counters taken as they are: series name -> (the agent's count, help)
PLAIN = {
    "orders_sent": ("orders_sent", "Orders signed and sent"),
    "reports_sent": ("reports_sent", "Meter reports signed and sent"),
    "settlements": ("settlements", "Settlements received for the agent's reports"),
    "reconnects": ("reconnects", "Lost or failed broker connections"),
    "island_slots": ("island_slots", "Slots run in island mode (no broker: no order, report queued)"),
    "answers_missing": ("answers_missing", "Coordinator answers that did not come in time"),
    "readings_stale": ("readings_stale", "Slots whose device readings were missing or stale"),
    "modbus_errors": ("device_failures", "Modbus reads and writes that failed"),
    "modbus_skipped": ("device_skipped", "Reads not tried: the device was marked defective"),
    "outbox_expired": ("outbox_dropped_age", "Outbox messages dropped for their age"),
    "outbox_overflow": ("outbox_dropped_full", "Outbox messages dropped beyond its size"),
    "outbox_replayed": ("outbox_replayed", "Outbox messages published again"),
    "proofs_verified": ("proofs_verified", "Inclusion proofs of the agent's trades checked"),
    "proof_alarms": ("proof_alarm", "Proofs that did not match the signed block header"),
    "bad_payloads": ("bad_payload", "Messages that could not be read"),
}


class AgentMetrics:
    def __init__(self, agents: Sequence[Agent], registry: CollectorRegistry | None = None) -> None:
        self.agents = list(agents)
        self.registry = registry or CollectorRegistry()
        self.cycle = Histogram(
            "gridmesh_agent_control_cycle_seconds",
            "A slot cycle: devices read, plan, setpoints written, messages kept and published",
            ("device",), buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.modbus_read = Histogram(
            "gridmesh_agent_modbus_read_seconds", "Reading the household's devices once (every device)",
            ("device",), buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.outbox_depth: dict[str, int] = {}
        self.registry.register(self)
        for agent in self.agents:
            agent.metrics = self

    def cycle_done(self, device: str, read_s: float, cycle_s: float, outbox_depth: int | None) -> None:
        self.modbus_read.labels(device).observe(read_s)
        self.cycle.labels(device).observe(cycle_s)
        if outbox_depth is not None:
            self.outbox_depth[device] = outbox_depth

    def collect(self) -> Iterator[Metric]:
        plain: dict[str, dict[tuple[str, ...], int]] = {name: {} for name in PLAIN}
        results: dict[tuple[str, ...], int] = {}
        awards: dict[tuple[str, ...], int] = {}
        connected: dict[tuple[str, ...], float] = {}
        island: dict[tuple[str, ...], float] = {}
        for agent in self.agents:
            device = agent.device
            counts = {**dict(agent.core.counts), **agent.devices.stats()}
            for name, (key, _) in PLAIN.items():
                plain[name][(device,)] = counts.get(key, 0)
            for status in ("accepted", "rejected"):  # every device's series from the start
                results[device, "order", status] = 0
            for status in ("filled", "partial", "unfilled"):
                awards[device, status] = 0
            for key, value in counts.items():
                if match := RESULT.match(key):
                    results[device, match.group(1), match.group(2)] = value
                elif match := AWARD.match(key):
                    awards[device, match.group(1)] = value
            connected[(device,)] = 1 if agent.connected else 0
            island[(device,)] = 1 if agent.in_island else 0
        for name, (_, documentation) in PLAIN.items():
            yield counter(f"gridmesh_agent_{name}", documentation, ("device",), plain[name])
        yield counter("gridmesh_agent_results", "The coordinator's results, by what they answer and status",
                      ("device", "kind", "status"), results)
        yield counter("gridmesh_agent_awards", "Awards for the agent's orders, by status",
                      ("device", "status"), awards)
        yield gauge("gridmesh_agent_connected", "1 while the agent has a broker session", ("device",),
                    connected)
        yield gauge("gridmesh_agent_island", "1 while the agent runs its household without the broker",
                    ("device",), island)
        depths: dict[tuple[str, ...], float] = {(d,): v for d, v in self.outbox_depth.items()}
        yield gauge("gridmesh_agent_outbox_messages", "Messages in the outbox waiting for an answer "
                    "(as of the last slot cycle or answer)", ("device",), depths)
