"""Serving a process's Prometheus registry, and metric families filled from counts.

Imported only by a process that serves metrics (:mod:`gridmesh.metrics` says when).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gridmesh.cli import UsageError


class MetricsServer:
    """A registry served over HTTP on a thread of its own."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise UsageError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.host = host
        self.port = int(server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def counter(name: str, documentation: str, labels: Iterable[str],
            values: Mapping[tuple[str, ...], int]) -> CounterMetricFamily:
    """A counter family from (label values) -> count."""
    return _filled(CounterMetricFamily(name, documentation, labels=list(labels)), values)


def gauge(name: str, documentation: str, labels: Iterable[str],
          values: Mapping[tuple[str, ...], float]) -> GaugeMetricFamily:
    return _filled(GaugeMetricFamily(name, documentation, labels=list(labels)), values)


F = TypeVar("F", CounterMetricFamily, GaugeMetricFamily)


def _filled(family: F, values: Mapping[tuple[str, ...], float]) -> F:
    for label_values, value in sorted(values.items()):
        family.add_metric(list(label_values), value)
    return family
