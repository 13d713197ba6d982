"""Fault commands over the bus, for simulated devices: ``gm/v1/{c}/sim/fault``.

``gridmesh fault`` publishes a :class:`~broker.messages.FaultCommand`; a testbed or
``gridmesh simulate`` listening with :func:`listen` checks it against its farm and
applies it. A command naming a household the farm does not serve, or a device that
household lacks, is refused with a logged reason and changes nothing. The testbed
queues commands and applies them at its next tick, once the farm has been brought to the
tick's time and before the tick is published (where scheduled faults are switched too,
so a commanded fault and the same fault in the configuration act alike; a ``frozen``
device keeps the tick's values), so a run stays a function of its configuration and the
commands it was given. ``gridmesh simulate`` applies them as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from broker.bus import BusConnection, Endpoint, connect, keep_connected
from broker.codec import PayloadError
from broker.messages import FaultCommand, decode
from broker.topics import Topics
from simulators.device_farm import BATTERY_UNIT, INVERTER_UNIT, METER_UNIT, DeviceFarm, device_units

log = logging.getLogger("gridmesh.simulators.faults")
UNITS = {"meter": METER_UNIT, "inverter": INVERTER_UNIT, "battery": BATTERY_UNIT}


def command_problem(farm: DeviceFarm, command: FaultCommand) -> str | None:
    """Why ``command`` cannot apply to ``farm``; None when it can."""
    if command.household not in farm.household_ids:
        return f"no household {command.household!r} here (serving {len(farm.household_ids)})"
    spec = farm.spec(command.household)
    if UNITS[command.device] not in device_units(spec):
        return f"{command.household} ({spec.role}) has no {command.device}"
    return None


async def apply_command(farm: DeviceFarm, command: FaultCommand) -> str | None:
    """Apply ``command``; returns the reason it was refused, or None."""
    problem = command_problem(farm, command)
    if problem is not None:
        log.warning("fault command refused: %s", problem)
        return problem
    fault = None if command.fault == "none" else command.fault
    await farm.set_fault(command.household, UNITS[command.device], fault)
    log.warning("fault command: %s %s -> %s", command.household, command.device, command.fault)
    return None


class FaultInbox:
    """Commands received and not yet applied, in arrival order."""

    def __init__(self) -> None:
        self.pending: list[FaultCommand] = []
        self.applied: list[FaultCommand] = []
        self.refused: list[tuple[str, str]] = []  # (what, why)

    def receive(self, payload: bytes) -> None:
        try:
            command = decode(payload, FaultCommand)
        except PayloadError as exc:
            log.warning("fault command refused: %s", exc)
            self.refused.append(("payload", str(exc)))
            return
        assert isinstance(command, FaultCommand)
        self.pending.append(command)

    async def apply(self, farm: DeviceFarm) -> None:
        commands, self.pending = self.pending, []
        for command in commands:
            problem = await apply_command(farm, command)
            if problem is None:
                self.applied.append(command)
            else:
                self.refused.append((f"{command.household} {command.device} {command.fault}", problem))


async def listen(
    bus: BusConnection, topics: Topics, on_payload: Callable[[bytes], Awaitable[None] | None],
    subscribed: asyncio.Event | None = None,
) -> None:
    """Hand every payload on the community's fault topic to ``on_payload``; ``subscribed``
    is set once the broker has the subscription."""
    await bus.subscribe([topics.sim_fault])
    if subscribed is not None:
        subscribed.set()
    async for received in bus.messages():
        outcome = on_payload(received.payload)
        if outcome is not None:
            await outcome


@contextlib.asynccontextmanager
async def listening(endpoint: Endpoint, client_id: str, topics: Topics,
                                inbox: FaultInbox) -> AsyncIterator[None]:
    """Take fault commands into ``inbox`` while inside, reconnecting after a lost broker;
    say so if the listener stopped for another reason."""
    finished = asyncio.Event()

    async def session() -> None:
        async with connect(endpoint, client_id, persistent=False) as bus:
            await listen(bus, topics, inbox.receive)

    task = asyncio.create_task(keep_connected(session, finished, lambda _exc, _delay: None))
    try:
        yield
    finally:
        finished.set()
        if task.done() and not task.cancelled() and task.exception():
            print(f"  fault   commands stopped: {task.exception()}", flush=True)
        task.cancel()
