"""Prometheus endpoints: each process serves its own registry over HTTP (``/metrics``).

Off unless asked for: a ``metrics: {port, host}`` section in an agent's or the
coordinator's configuration, or ``--metrics-port PORT`` (which wins). Each process has a
registry of its own, never prometheus-client's global one, so two services in one
process (tests, a testbed) cannot mix their series. Counters are read from what the
services count anyway (``counts``) when Prometheus scrapes, so a slot costs nothing
more than the few histogram observations; docs/integrations.md lists every series.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from broker.schema import bounded
from gridmesh.cli import UsageError

# Seconds: a Modbus read on a LAN takes milliseconds, a clearing with mining up to seconds.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class MetricsSection:
    """Where a process serves its metrics; 127.0.0.1 unless a scraper elsewhere needs it."""

    port: int = bounded(min=1, max=65535)
    host: str = bounded("127.0.0.1", max_len=253)


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


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus metrics on this port (overrides the file's metrics.port)")
    parser.add_argument("--metrics-host", metavar="HOST",
                        help="the address to serve them on (default: the file's metrics.host, else "
                        "127.0.0.1; 0.0.0.0 for a scraper on another machine)")


def metrics_address(section: MetricsSection | None, args: argparse.Namespace) -> tuple[str, int] | None:
    """Where to serve metrics, from the command line over the configuration; None: off."""
    port = args.metrics_port if args.metrics_port is not None else (section.port if section else None)
    if port is None:
        if args.metrics_host is not None:
            raise UsageError("--metrics-host needs --metrics-port (or metrics.port in the file)")
        return None
    if not 0 < port < 65536:
        raise UsageError(f"--metrics-port must be 1..65535, got {port}")
    host = args.metrics_host or (section.host if section else "127.0.0.1")
    return host, port


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
