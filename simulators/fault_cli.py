"""``gridmesh fault``: make a simulated device misbehave while a testbed or a
``gridmesh simulate`` runs, or behave again."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from broker.bus import BusError, Endpoint, connect
from broker.community import Community
from broker.messages import FAULT_DEVICES, FAULT_KINDS, FaultCommand
from broker.schema import SchemaError, check_bounds
from broker.topics import Topics
from gridmesh import aio
from gridmesh.cli import UsageError
from gridmesh.endpoints import target

EXAMPLE = """examples:
  gridmesh fault --run runs/20h-96s-seed1 h003 meter timeout     # a running testbed
  gridmesh fault --run runs/20h-96s-seed1 h003 meter clear
  gridmesh fault --broker 192.168.1.10:1883 h001 battery busy   # gridmesh simulate --broker ...
faults: timeout, slow, busy, failure, frozen, counter_reset, dropped; clear ends one.
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "fault", help="make a simulated device misbehave at run time, or behave again",
        description="Publish a fault command to a running testbed or gridmesh simulate.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--run", type=Path, help="a running testbed's output folder (its broker)")
    where.add_argument("--broker", help="HOST:PORT of the broker the simulator listens on")
    parser.add_argument("--community", help=f"community id with --broker (default {Community().id})")
    parser.add_argument("--broker-auth", type=Path, metavar="FILE",
                        help="credentials for a locked-down broker: a file with a broker_auth section "
                        "(gridmesh deploy broker-config writes devices/NAME/broker_auth.yaml)")
    parser.add_argument("household", help="household id, e.g. h003")
    parser.add_argument("device", help=f"one of {', '.join(FAULT_DEVICES)}")
    parser.add_argument("fault", help="a fault, or clear")
    parser.set_defaults(handler=run)


def command_from_args(args: argparse.Namespace) -> FaultCommand:
    """The command the arguments ask for; UsageError naming the argument otherwise."""
    fault = "none" if args.fault == "clear" else args.fault
    if args.device not in FAULT_DEVICES:
        raise UsageError(f"device: {args.device!r} is not one of {', '.join(FAULT_DEVICES)}")
    if fault not in FAULT_KINDS:
        known = ", ".join(k for k in FAULT_KINDS if k != "none")
        raise UsageError(f"fault: {args.fault!r} is not one of {known}, or clear")
    command = FaultCommand(args.household, args.device, fault, int(time.time()))
    try:
        check_bounds(command)
    except SchemaError as exc:
        raise UsageError(str(exc)) from None
    return command


async def publish(endpoint: Endpoint, community: str, command: FaultCommand) -> None:
    async with connect(endpoint, f"{community}-fault-{command.household}", persistent=False) as bus:
        await bus.publish(Topics(community).sim_fault, command, qos=1)


def run(args: argparse.Namespace) -> int:
    command = command_from_args(args)
    endpoint, community = target(args)
    try:
        aio.run(asyncio.wait_for(publish(endpoint, community, command), 10))
    except (OSError, TimeoutError, BusError) as exc:
        raise UsageError(f"cannot reach the broker at {endpoint}: {exc or 'timed out'}") from None
    print(f"{command.household} {command.device} -> {args.fault} "
          f"(sent to {endpoint}, community {community})")
    return 0
