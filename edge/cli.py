"""``gridmesh agent``: run one edge agent (on a device) or several (in a testbed)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

from broker.bus import Endpoint
from broker.topics import Topics
from edge.agent import Agent
from edge.agent_core import AgentCore
from edge.config import AgentConfig, load_agent_config
from edge.delivery import Delivery
from edge.drivers import ModbusHousehold
from edge.forecast import Forecaster, SeasonalNaive
from edge.home_assistant import Discovery
from edge.onnx_forecaster import OnnxForecaster
from edge.outbox import Outbox, OutboxError
from edge.perfect_forecaster import PerfectForecaster
from edge.sd_notify import LoopHealth, Notifier, notify_systemd
from gridmesh import __version__, aio
from gridmesh.cli import UsageError
from gridmesh.config import relative_to
from gridmesh.logs import add_log_arguments, configure_logging
from gridmesh.metrics import MetricsSection, add_metrics_arguments, metrics_address

EXAMPLE = """examples:
  gridmesh agent --config /etc/gridmesh/agent.yaml
  gridmesh agent --config runs/day1/config/agents/h001.yaml runs/day1/config/agents/h002.yaml
  gridmesh agent --config /etc/gridmesh/agent.yaml --metrics-port 9465 --log-format json
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "agent", help="run edge agents: read devices, forecast, trade",
        description="Run one edge agent per configuration file, all in this process.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, nargs="+", required=True,
                        help="agent YAML file(s)")
    add_log_arguments(parser)
    add_metrics_arguments(parser)
    parser.add_argument("--stats-dir", type=Path,
                        help="write each agent's counters to DIR/<device>.json when it finishes")
    parser.set_defaults(handler=run)


def build_agent(config: AgentConfig, watchdog_s: float | None = None) -> Agent:
    """An agent from its loaded configuration file; ``watchdog_s``: systemd's watchdog
    interval, which a slot cycle must keep within to count as healthy."""
    path, section = Path(config.source), config.section
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
    try:
        outbox = Outbox(relative_to(path, section.state_dir) / f"{section.device}.outbox.db", core.counts,
                        max_age_s=section.outbox_max_age_s, max_messages=section.outbox_max_messages)
    except OutboxError as exc:
        raise UsageError(f"{path}: agent.state_dir: {exc}") from None
    delivery = Delivery(section.device, Topics(config.community.id), outbox, core.counts)
    health = LoopHealth(limit_s=max(1, round(watchdog_s or 120)),
                        slot_s=config.community.market.slot_s if section.clock == "wall" else None)
    devices = ModbusHousehold(section.modbus, name=section.device)
    return Agent(core, devices, endpoint, section.clock, delivery, health=health,
                 home_assistant=discovery(config))


def discovery(config: AgentConfig) -> Discovery | None:
    """Home Assistant discovery for the household, if its configuration asks for it."""
    section, ha = config.section, config.section.home_assistant
    if ha is None:
        return None
    member = config.community.member(section.device)
    return Discovery(section.device, config.community.id, member.role if member else "prosumer",
                     has_pv=section.modbus.inverter is not None,
                     has_battery=section.modbus.battery is not None, prefix=ha.discovery_prefix,
                     name=ha.name, currency=ha.currency, version=__version__)


async def run_agents(configs: list[AgentConfig], metrics_at: tuple[str, int] | None = None) -> list[Agent]:
    """Build the agents inside the event loop (their Modbus clients need it) and run them,
    telling systemd when they run and, while they are healthy, that they still do; with
    ``metrics_at`` (host, port), serving their Prometheus metrics there."""
    notifier = Notifier()
    agents = [build_agent(config, notifier.watchdog_s) for config in configs]
    server = None
    if metrics_at is not None:  # prometheus-client is loaded only here: 4.5 MB an agent without it saves
        from edge.metrics import AgentMetrics
        from gridmesh.prometheus import MetricsServer

        server = MetricsServer(AgentMetrics(agents).registry, *metrics_at)
    supervisor = asyncio.create_task(notify_systemd(agents, notifier)) if notifier.enabled else None
    try:
        await asyncio.gather(*(agent.run() for agent in agents))
    finally:
        if supervisor is not None:
            supervisor.cancel()
        if server is not None:
            server.close()
    return agents


def metrics_section(configs: list[AgentConfig]) -> MetricsSection | None:
    """The one endpoint a process serves: every file that names one must name the same."""
    sections = {c.section.metrics for c in configs if c.section.metrics is not None}
    if len(sections) > 1:
        named = ", ".join(f"{c.source}" for c in configs if c.section.metrics is not None)
        raise UsageError(f"agent.metrics: one process serves one metrics endpoint, but {named} differ")
    return next(iter(sections), None)


def run(args: argparse.Namespace) -> int:
    configs = [load_agent_config(path) for path in args.config]  # errors before anything starts
    context: dict[str, str | int] = {"community": configs[0].community.id}
    if len(configs) == 1:
        context["device"] = configs[0].section.device
    configure_logging(args.log_level, args.log_format, **context)
    metrics_at = metrics_address(metrics_section(configs), args)
    agents = aio.run(run_agents(configs, metrics_at))
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
