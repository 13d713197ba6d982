"""``gridmesh coordinator``: run a community's market on a broker."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.resources
import logging
from pathlib import Path
from typing import Any

from broker.bus import Endpoint
from broker.model_messages import MODEL_KINDS
from coordinator.bus_loop import CoordinatorLoop
from coordinator.config import load_coordinator_config
from coordinator.service import Coordinator
from coordinator.store import CoordinatorStore, StoreError
from gridmesh import aio
from gridmesh.cli import UsageError
from gridmesh.onnx_linear import ModelFormatError, OnnxUnavailable
from ledger.store import LedgerStore
from ledger.writer import LedgerWriter

EXAMPLE = """example:
  gridmesh coordinator --config runs/day1/config/coordinator.yaml
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "coordinator", help="run the market: clear, settle and seal blocks",
        description="Run a community's coordinator: validate orders and meter reports, clear "
        "each slot at gate closure, settle, and record everything in the ledger.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="coordinator YAML file")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    parser.set_defaults(handler=run)


def build_coordinator(config_path: Path) -> tuple[Coordinator, str, Endpoint]:
    config = load_coordinator_config(config_path)
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
    return coordinator, config.section.clock, endpoint


def bundled_models() -> dict[str, bytes]:
    """The forecasters every agent starts with (``edge/models``): the first rounds pull
    toward them (later ones toward the latest release, from the database)."""
    models = importlib.resources.files("edge").joinpath("models")
    return {kind: models.joinpath(f"{kind}.onnx").read_bytes() for kind in MODEL_KINDS}


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    coordinator, clock, endpoint = build_coordinator(args.config)
    loop = CoordinatorLoop(coordinator, endpoint, clock)
    aio.run(loop.run())
    counts = ", ".join(f"{k}={v}" for k, v in sorted(coordinator.counts.items()))
    print(f"coordinator finished: {counts}")
    return 0
