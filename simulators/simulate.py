"""``gridmesh simulate``: virtual households on their own, for agents on real devices.

Serves each household's meter, inverter and battery on Modbus TCP (household i on
``port_base + i``; unit 1 meter, 2 inverter, 3 battery) and advances their physics
with the wall clock, ``speed`` virtual seconds per second, until stopped. Agents on
Raspberry Pis are pointed at these ports: hardware in the loop. With ``--broker`` it
also obeys fault commands (``gridmesh fault --broker ...``) for its devices.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from typing import Any

from broker.bus import Endpoint, connect, keep_connected
from broker.community import Community
from broker.topics import TopicError, Topics
from gridmesh import aio
from gridmesh.cli import UsageError
from simulators.device_farm import BATTERY_UNIT, INVERTER_UNIT, METER_UNIT, TEMPLATES, DeviceFarm
from simulators.fault_control import FaultInbox, listen
from simulators.fleet import make_households
from simulators.modbus_server import DeviceServerError
from simulators.profiles import ProfileSet
from simulators.testbed_config import TestbedSection

EXAMPLE = """examples:
  gridmesh simulate --households 5 --port-base 5020
  gridmesh simulate --households 2 --port-base 502 --host 0.0.0.0 --meter eastron-sdm630 --speed 60
  gridmesh simulate --households 3 --port-base 5020 --broker 127.0.0.1:1883   # obeys gridmesh fault
"""
STEP_S = 1.0  # wall seconds between physics steps


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "simulate", help="serve virtual households on Modbus TCP for agents on real devices",
        description="Serve virtual households' meters, inverters and batteries on Modbus TCP, "
        "their physics following the wall clock, until interrupted.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--households", type=int, default=1, help="how many (default 1)")
    parser.add_argument("--port-base", type=int, required=True, help="household i listens on this + i")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the households (default 1)")
    parser.add_argument("--start", default="2016-06-06T10:00",
                        help="virtual start, UTC (default 2016-06-06T10:00)")
    parser.add_argument("--speed", type=int, default=1, help="virtual seconds per wall second (default 1)")
    parser.add_argument("--meter", default=TEMPLATES[METER_UNIT], help="meter template")
    parser.add_argument("--inverter", default=TEMPLATES[INVERTER_UNIT], help="inverter template")
    parser.add_argument("--battery", default=TEMPLATES[BATTERY_UNIT], help="battery template")
    parser.add_argument("--broker", help="HOST:PORT: take fault commands (gridmesh fault) from this broker")
    parser.add_argument("--community", default=Community().id,
                        help=f"community id of the fault topic (default {Community().id})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.households <= 1000:
        raise UsageError(f"--households must be 1..1000, got {args.households}")
    if not 1 <= args.port_base <= 65535 - args.households + 1:
        raise UsageError(f"--port-base must leave room for {args.households} ports below 65536")
    if not 1 <= args.speed <= 86_400:
        raise UsageError(f"--speed must be 1..86400, got {args.speed}")
    try:
        start_s = TestbedSection(start=args.start).start_s
    except ValueError as exc:
        raise UsageError(f"--start: {exc}") from None
    endpoint = None
    if args.broker is not None:
        try:
            endpoint = Endpoint.parse(args.broker)
            Topics(args.community)
        except (ValueError, TopicError) as exc:
            raise UsageError(f"--broker/--community: {exc}") from None
    try:
        aio.run(serve(args, start_s, endpoint))
    except DeviceServerError as exc:
        raise UsageError(str(exc)) from None
    return 0


async def serve(args: argparse.Namespace, start_s: int, endpoint: Endpoint | None = None) -> None:
    households = make_households(args.households, args.seed)
    farm = DeviceFarm(households, ProfileSet.load_bundled(), start_s, host=args.host,
                      meter_template=args.meter, inverter_template=args.inverter,
                      battery_template=args.battery)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await farm.start(args.port_base)
    try:
        for spec in households:
            host, port = farm.endpoint(spec.id)
            print(f"{spec.id} {spec.role:<9} {host}:{port}", flush=True)
        print(f"serving {len(households)} household(s); Ctrl-C stops", flush=True)
        commands = None
        if endpoint is not None:
            commands = asyncio.create_task(_obey_faults(farm, endpoint, args.community))
        wall0 = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STEP_S)
            farm.advance_to(start_s + int((time.monotonic() - wall0) * args.speed))
            if commands is not None and commands.done():
                commands.result()  # the broker connection failed: say so
    finally:
        if commands is not None:
            commands.cancel()
        await farm.stop()


async def _obey_faults(farm: DeviceFarm, endpoint: Endpoint, community: str) -> None:
    """Apply fault commands from the bus as they come (reconnecting if the broker goes)."""
    inbox = FaultInbox()

    async def receive(payload: bytes) -> None:
        inbox.receive(payload)
        await inbox.apply(farm)
        for what, why in inbox.refused:
            print(f"fault refused ({what}): {why}", flush=True)
        for command in inbox.applied:
            print(f"fault {command.household} {command.device} -> {command.fault}", flush=True)
        inbox.applied.clear()
        inbox.refused.clear()

    async def session() -> None:
        async with connect(endpoint, f"{community}-simulate", persistent=False) as bus:
            print(f"taking fault commands on {Topics(community).sim_fault} at {endpoint}", flush=True)
            await listen(bus, Topics(community), receive)

    await keep_connected(session, asyncio.Event(), lambda exc, delay: print(
        f"broker {endpoint} unreachable ({exc}); retrying in {delay:.0f} s", flush=True))
