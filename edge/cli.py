"""``gridmesh agent``: run one edge agent (on a device) or several (in a testbed)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from broker.bus import Endpoint
from edge.agent import Agent
from edge.agent_core import AgentCore
from edge.config import load_agent_config
from edge.drivers import ModbusHousehold
from edge.forecast import Forecaster, SeasonalNaive
from edge.onnx_forecaster import OnnxForecaster
from edge.perfect_forecaster import PerfectForecaster
from gridmesh import aio
from gridmesh.cli import UsageError

EXAMPLE = """examples:
  gridmesh agent --config /etc/gridmesh/agent.yaml
  gridmesh agent --config runs/day1/config/agents/h001.yaml runs/day1/config/agents/h002.yaml
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "agent", help="run edge agents: read devices, forecast, trade",
        description="Run one edge agent per configuration file, all in this process.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, nargs="+", required=True,
                        help="agent YAML file(s)")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    parser.add_argument("--stats-dir", type=Path,
                        help="write each agent's counters to DIR/<device>.json when it finishes")
    parser.set_defaults(handler=run)


def build_agent(path: Path) -> Agent:
    config = load_agent_config(path)
    section = config.section
    try:
        endpoint = dataclasses.replace(Endpoint.parse(section.broker), auth=config.credentials)
    except ValueError as exc:
        raise UsageError(f"{path}: agent.broker: {exc}") from None
    forecaster: Forecaster = SeasonalNaive()
    if section.forecaster == "onnx":
        forecaster = OnnxForecaster(slot_s=config.community.market.slot_s)
    elif section.forecaster == "perfect":
        if not section.truth_file:
            raise UsageError(f"{path}: agent.truth_file: the perfect forecaster needs one")
        forecaster = PerfectForecaster((path.parent / section.truth_file).resolve())
    core = AgentCore(section.device, config.community, config.identity, forecaster,
                     last_order_slot=section.last_order_slot, planner=section.planner,
                     battery_efficiency_pct=section.battery_efficiency_pct)
    devices = ModbusHousehold(section.modbus, name=section.device)
    return Agent(core, devices, endpoint, section.clock)


async def run_agents(paths: list[Path]) -> list[Agent]:
    """Build the agents inside the event loop (their Modbus clients need it) and run them."""
    agents = [build_agent(path) for path in paths]
    await asyncio.gather(*(agent.run() for agent in agents))
    return agents


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    for path in args.config:
        load_agent_config(path)  # configuration errors before anything starts
    agents = aio.run(run_agents(args.config))
    total: Counter[str] = Counter()
    for agent in agents:
        stats = agent.stats()
        total.update(stats)
        if args.stats_dir is not None:
            args.stats_dir.mkdir(parents=True, exist_ok=True)
            (args.stats_dir / f"{agent.device}.json").write_text(json.dumps(stats, sort_keys=True) + "\n")
    print(f"{len(agents)} agent(s) finished: " +
          ", ".join(f"{k}={v}" for k, v in sorted(total.items())))
    return 0
