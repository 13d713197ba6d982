"""The coordinator's Prometheus series (docs/integrations.md#metrics).

Counters are read from what :class:`~coordinator.service.Coordinator` counts anyway when
Prometheus scrapes (on the server's thread: a copy of a dict, no database); the loop
reports its connection, each gate closure's latency and the ledger's height as they
happen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import Metric

from gridmesh.metrics import LATENCY_BUCKETS_S
from gridmesh.prometheus import counter, gauge

if TYPE_CHECKING:
    from coordinator.service import Coordinator

SUBMISSION = re.compile(r"^(order|report|share)_(accepted|rejected|duplicate)$")


class CoordinatorMetrics:
    def __init__(self, coordinator: Coordinator, registry: CollectorRegistry | None = None) -> None:
        self.coordinator = coordinator
        self.registry = registry or CollectorRegistry()
        self.connected = False
        head = coordinator.ledger.store.head()  # read here, on the loop's thread
        self.ledger_height = head.height if head is not None else -1
        self.clearing_latency = Histogram(
            "gridmesh_coordinator_clearing_latency_seconds",
            "From a gate closure (its tick, or the wall clock's moment) to its clearing, awards, "
            "settlements and block published", buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.registry.register(self)

    def gate_published(self, seconds: float) -> None:
        """A gate closure's outcome is out, ``seconds`` after its moment."""
        self.clearing_latency.observe(seconds)
        sealed = self.coordinator.ledger.last_sealed
        if sealed:
            self.ledger_height = max(self.ledger_height, sealed[-1].header.height)

    def collect(self) -> Iterator[Metric]:
        counts = dict(self.coordinator.counts)  # one C-level copy: safe against the loop's updates
        rejections: dict[tuple[str, ...], int] = dict(self.coordinator.rejections)
        submissions: dict[tuple[str, ...], int] = {}
        for key, value in counts.items():
            match = SUBMISSION.match(key)
            if match:
                submissions[match.group(1), match.group(2)] = value
        for kind in ("order", "report"):
            for outcome in ("accepted", "rejected", "duplicate"):
                submissions.setdefault((kind, outcome), 0)
        yield counter("gridmesh_coordinator_submissions", "Orders, meter reports and forecast shares "
                      "received, by outcome (duplicate: answered with the first verdict)",
                      ("kind", "outcome"), submissions)
        yield counter("gridmesh_coordinator_rejections", "Refused submissions by kind and reason",
                      ("kind", "reason"), rejections)
        yield counter("gridmesh_coordinator_payloads_refused", "Payloads that were no submission at all",
                      (), {(): counts.get("payload_rejected", 0)})
        yield counter("gridmesh_coordinator_slots_cleared", "Gate closures run: slots cleared",
                      (), {(): counts.get("slots_cleared", 0)})
        yield counter("gridmesh_coordinator_reconnects", "Lost or failed broker connections",
                      (), {(): counts.get("reconnects", 0)})
        yield counter("gridmesh_coordinator_model_releases", "Forecaster models released (federated rounds)",
                      (), {(): counts.get("model_releases", 0)})
        yield gauge("gridmesh_coordinator_connected", "1 while the coordinator has a broker session",
                    (), {(): 1 if self.connected else 0})
        yield gauge("gridmesh_coordinator_ledger_height", "Height of the ledger's last block (-1: none yet)",
                    (), {(): self.ledger_height})
