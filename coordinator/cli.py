"""``gridmesh coordinator``: run a community's market on a broker."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.resources
from pathlib import Path
from typing import Any

from broker.bus import Endpoint
from broker.model_messages import MODEL_KINDS
from coordinator.bus_loop import CoordinatorLoop
from coordinator.config import CoordinatorConfig, load_coordinator_config
from coordinator.metrics import CoordinatorMetrics
from coordinator.service import Coordinator
from coordinator.store import CoordinatorStore, StoreError
from gridmesh import aio
from gridmesh.cli import UsageError
from gridmesh.logs import add_log_arguments, configure_logging
from gridmesh.metrics import add_metrics_arguments, metrics_address
from gridmesh.onnx_linear import ModelFormatError, OnnxUnavailable
from gridmesh.prometheus import MetricsServer
from ledger.store import LedgerStore
from ledger.writer import LedgerWriter

EXAMPLE = """examples:
  gridmesh coordinator --config runs/day1/config/coordinator.yaml
  gridmesh coordinator --config /etc/gridmesh/coordinator.yaml --metrics-port 9464 --log-format json
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "coordinator", help="run the market: clear, settle and seal blocks",
        description="Run a community's coordinator: validate orders and meter reports, clear "
        "each slot at gate closure, settle, and record everything in the ledger.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="coordinator YAML file")
    add_log_arguments(parser)
    add_metrics_arguments(parser)
    parser.set_defaults(handler=run)


def build_coordinator(config_path: Path, config: CoordinatorConfig | None = None,
                      ) -> tuple[Coordinator, CoordinatorConfig, Endpoint]:
    """The coordinator of ``config_path`` (its configuration, if already loaded, in ``config``)."""
    config = config or load_coordinator_config(config_path)
    try:
        endpoint = dataclasses.replace(Endpoint.parse(config.section.broker), auth=config.credentials)
    except ValueError as exc:
        raise UsageError(f"{config_path}: coordinator.broker: {exc}") from None
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = CoordinatorStore(config.data_dir / "coordinator.db")
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    ledger = LedgerWriter(LedgerStore(config.data_dir / "ledger.db"), config.identity,
                          config.community.ledger)
    models = bundled_models() if config.community.forecasting.enabled else None
    try:
        coordinator = Coordinator(config.community, config.identity, store, ledger, models)
    except (OnnxUnavailable, ModelFormatError) as exc:
        raise UsageError(f"{config_path}: community.forecasting: {exc}") from None
    return coordinator, config, endpoint


def bundled_models() -> dict[str, bytes]:
    """The forecasters every agent starts with (``edge/models``): the first rounds pull
    toward them (later ones toward the latest release, from the database)."""
    models = importlib.resources.files("edge").joinpath("models")
    return {kind: models.joinpath(f"{kind}.onnx").read_bytes() for kind in MODEL_KINDS}


def run(args: argparse.Namespace) -> int:
    config = load_coordinator_config(args.config)
    # before the store and the ledger open, so what they log is in the chosen format too
    configure_logging(args.log_level, args.log_format, community=config.community.id)
    coordinator, config, endpoint = build_coordinator(args.config, config)
    address = metrics_address(config.section.metrics, args)
    metrics = server = None
    if address is not None:
        metrics = CoordinatorMetrics(coordinator)
        server = MetricsServer(metrics.registry, *address)
    loop = CoordinatorLoop(coordinator, endpoint, config.section.clock, metrics)
    try:
        aio.run(loop.run())
    finally:
        if server is not None:
            server.close()
    counts = ", ".join(f"{k}={v}" for k, v in sorted(coordinator.counts.items()))
    print(f"coordinator finished: {counts}")
    return 0
