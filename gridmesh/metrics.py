"""Prometheus endpoints: each process serves its own registry over HTTP (``/metrics``).

Off unless asked for: a ``metrics: {port, host}`` section in an agent's or the
coordinator's configuration, or ``--metrics-port PORT`` (which wins). Each process has a
registry of its own, never prometheus-client's global one, so two services in one
process (tests, a testbed) cannot mix their series. Counters are read from what the
services count anyway (``counts``) when Prometheus scrapes, so a slot costs nothing
more than the few histogram observations; docs/integrations.md lists every series.

This module (the configuration and the command line) does not import prometheus-client,
so an agent without metrics never loads it; :mod:`gridmesh.prometheus` serves them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from broker.schema import bounded
from gridmesh.cli import UsageError

# Seconds: a Modbus read on a LAN takes milliseconds, a clearing with mining up to seconds.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class MetricsSection:
    """Where a process serves its metrics; 127.0.0.1 unless a scraper elsewhere needs it."""

    port: int = bounded(min=1, max=65535)
    host: str = bounded("127.0.0.1", max_len=253)


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
