"""``gridmesh drill NAME``: run a testbed with one thing going wrong on purpose and report
what was checked (docs/reliability.md#drills)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from broker.launcher import BrokerError
from gridmesh import aio
from gridmesh.cli import UsageError
from simulators.drill_control import DrillOptions
from simulators.drill_scenarios import DRILLS
from simulators.drills import DEFAULTS, run_drill, with_drill_defaults
from simulators.testbed_config import load_testbed_config
from simulators.testbed_errors import TestbedError

DESCRIPTION = ("Run a small testbed in which the broker, the coordinator, an agent or an agent's network "
               "fails on purpose, then check every slot was cleared once, every metered slot settled once, "
               "no order or report lost, the ledger whole, and print what was checked.")
EXAMPLE = """examples:
  gridmesh drill broker-outage                       # kill the broker for 3 s as slot 2 starts
  gridmesh drill coordinator-kill --restart-delay-s 2
  gridmesh drill agent-kill --household h002 --json
  gridmesh drill network-cut --down-s 5 --out runs/cut
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("drill", help="run a testbed with a failure on purpose; check nothing was lost",
                            description=DESCRIPTION, epilog=EXAMPLE,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=tuple(DRILLS), help="which drill")
    parser.add_argument("--config", type=Path, help="testbed YAML file (replaces the drill's default run)")
    parser.add_argument("--households", type=int, help="number of households (default 4; agent-kill 3)")
    parser.add_argument("--slots", type=int, help="market slots to run (default 6)")
    parser.add_argument("--seed", type=int, help="seed for households and keys (default 1)")
    parser.add_argument("--broker", choices=("auto", "mosquitto", "embedded"),
                        help="which MQTT broker to start (default auto: mosquitto if installed)")
    parser.add_argument("--at-slot", type=int, default=DrillOptions.at_slot,
                        help="the slot, counted from the run's first, in which the drill strikes (default 2)")
    parser.add_argument("--down-s", type=float, default=DrillOptions.down_s,
                        help="broker-outage, network-cut: seconds the broker or the link stays down "
                        "(default 3)")
    parser.add_argument("--restart-delay-s", type=float, default=DrillOptions.restart_delay_s,
                        help="coordinator-kill, agent-kill: seconds before the supervisor starts the "
                        "killed process again (default 1)")
    parser.add_argument("--moment", choices=("gate", "orders"), default=DrillOptions.moment,
                        help="coordinator-kill: kill it as the slot's clearing is out (gate, the default) "
                        "or as the slot starts, with orders and reports on their way (orders)")
    parser.add_argument("--household", default="",
                        help="agent-kill, network-cut: whose agent (default: the first with a battery)")
    parser.add_argument("--out", type=Path, help="output folder (default runs/drill-NAME)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.down_s <= 600:
        raise UsageError(f"--down-s {args.down_s:g}: must be more than 0 and at most 600 seconds")
    if not 0 <= args.restart_delay_s <= 60:
        raise UsageError(f"--restart-delay-s {args.restart_delay_s:g}: must be between 0 and 60 seconds")
    overrides = {} if args.config else dict(DEFAULTS[args.name])
    overrides.update({name: getattr(args, name) for name in ("households", "slots", "seed", "broker")
                      if getattr(args, name) is not None})
    config = load_testbed_config(args.config, overrides)
    if not args.config:
        config = with_drill_defaults(args.name, config)
    options = DrillOptions(args.at_slot, args.down_s, args.restart_delay_s, args.household, args.moment)
    out: Path = args.out or Path("runs") / f"drill-{args.name}"
    try:
        report = aio.run(run_drill(args.name, config, out, options))
    except (TestbedError, BrokerError) as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(report.as_dict()) if args.json else "\n".join(report.lines()))
    return 0 if report.passed else 1
