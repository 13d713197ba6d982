"""What every drill does around its testbed run: it supervises the participants, watches
the bus for the moment to strike, and keeps a log of what it did.

:class:`DrillControl` is the testbed's :class:`~simulators.supervisor.RunControl`. Before
any participant starts it learns the run's broker, devices and agent configuration files
and connects an observer of its own to the broker (reconnecting like everyone else after
an outage), which sees every clock tick and clearing as the participants do. A drill
(:mod:`simulators.drill_scenarios`) overrides :meth:`~DrillControl.on_tick` and
:meth:`~DrillControl.on_clearing` to strike at its moment; the strike runs as its own
task, so the observer keeps reading meanwhile.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from broker.bus import connect, keep_connected
from broker.codec import PayloadError
from broker.messages import Clearing, ClockTick, decode, encode
from broker.topics import TopicError, Topics, parse_topic
from simulators.device_farm import DeviceFarm
from simulators.drill_report import Check
from simulators.supervisor import Supervisor
from simulators.testbed_broker import TestbedBroker
from simulators.testbed_errors import TestbedError

OBSERVER_READY_S = 10.0


@dataclass(frozen=True)
class DrillOptions:
    at_slot: int = 2  # the slot (counted from the run's first, as faults are) in which the drill strikes
    down_s: float = 3.0  # broker-outage, network-cut: how long the broker or the link stays down
    restart_delay_s: float = 1.0  # coordinator-kill, agent-kill: the supervisor's RestartSec
    household: str = ""  # agent-kill, network-cut: whose agent; "": the first with a battery
    moment: str = "gate"  # coordinator-kill: gate (mid gate closure) or orders (as submissions arrive)


@dataclass(frozen=True)
class RunShape:
    community: str
    first_slot: int
    slots: int
    slot_s: int
    gate_closure_s: int

    def gate_s(self, slot: int) -> int:
        return slot * self.slot_s - self.gate_closure_s

    def name(self, slot: int) -> str:
        """``slot 2 (1628010)``: counted from the run's first, and its id."""
        return f"slot {slot - self.first_slot} ({slot})"


class DrillControl:
    name: ClassVar[str]
    restarts: ClassVar[bool] = False  # whether the supervisor starts a dead participant again

    def __init__(self, options: DrillOptions, shape: RunShape) -> None:
        self.options = options
        self.shape = shape
        self.topics = Topics(shape.community)
        self.strike_slot = shape.first_slot + options.at_slot
        self.supervisor = Supervisor(options.restart_delay_s if self.restarts else None)
        self.events: list[str] = []
        self.excused: dict[tuple[str, int], str] = {}  # household-slots the drill leaves unmetered
        self.clearings_seen: dict[int, set[bytes]] = defaultdict(set)  # slot -> each version published
        self.household = options.household
        self.agent_files: list[Path] = []
        self._broker: TestbedBroker | None = None
        self._farm: DeviceFarm | None = None
        self._struck = False
        self._started = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors: list[str] = []
        self._finished = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._observer: asyncio.Task[None] | None = None

    def describe(self) -> str:
        raise NotImplementedError

    @property
    def at(self) -> str:
        """The slot the drill strikes in, as the report names it."""
        return self.shape.name(self.strike_slot)

    @property
    def next(self) -> str:
        return self.shape.name(self.strike_slot + 1)

    @property
    def broker(self) -> TestbedBroker:
        assert self._broker is not None, "prepare() comes first"
        return self._broker

    @property
    def farm(self) -> DeviceFarm:
        assert self._farm is not None, "prepare() comes first"
        return self._farm

    def agent_file(self, household: str) -> Path:
        return next(path for path in self.agent_files if path.stem == household)

    def event(self, text: str) -> None:
        line = f"{time.monotonic() - self._started:6.1f} s  {text}"
        self.events.append(line)
        print(f"  drill   {text}", file=sys.stderr, flush=True)

    # -- RunControl -------------------------------------------------------------------

    async def prepare(self, broker: TestbedBroker, farm: DeviceFarm, agent_files: list[Path]) -> None:
        self._broker, self._farm, self.agent_files = broker, farm, list(agent_files)
        if self.household and self.household not in farm.household_ids:
            raise TestbedError(f"--household {self.household}: not in this run "
                               f"({farm.household_ids[0]}..{farm.household_ids[-1]})")
        if not self.household:
            with_battery = [h for h in farm.household_ids if farm.spec(h).battery is not None]
            self.household = (with_battery or list(farm.household_ids))[0]
        await self.before_start()
        self._observer = asyncio.create_task(keep_connected(self._observe, self._finished, lambda *_: None))
        try:
            await asyncio.wait_for(self._subscribed.wait(), OBSERVER_READY_S)
        except TimeoutError:
            raise TestbedError(f"the drill's observer could not subscribe on {broker.endpoint} "
                               f"within {OBSERVER_READY_S:.0f} s") from None

    async def before_start(self) -> None:
        """What a drill sets up before the participants start."""

    # -- the observer -------------------------------------------------------------------

    async def _observe(self) -> None:
        async with connect(self.broker.bench_endpoint(), f"{self.shape.community}-drill",
                           persistent=False) as bus:
            await bus.subscribe([self.topics.tick, self.topics.gate, self.topics.clearing])
            self._subscribed.set()
            async for received in bus.messages():
                try:
                    kind = parse_topic(received.topic).kind
                    msg = decode(received.payload)
                except (TopicError, PayloadError):
                    continue
                if isinstance(msg, ClockTick):
                    self.on_tick(kind, msg)
                elif isinstance(msg, Clearing):
                    self.clearings_seen[msg.slot].add(encode(msg))
                    self.on_clearing(msg)

    def on_tick(self, kind: str, tick: ClockTick) -> None:
        """A tick as the participants see it (kind ``tick``: a slot start or the last;
        ``gate``: a gate closure)."""

    def on_clearing(self, clearing: Clearing) -> None:
        """A clearing, as published."""

    def strike(self, action: Coroutine[Any, Any, None]) -> None:
        """Run ``action`` once, as its own task; an error it raises fails the drill."""
        if self._struck:
            action.close()
            return
        self._struck = True
        task = asyncio.create_task(action)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._errors.append(f"{type(task.exception()).__name__}: {task.exception()}")

    @property
    def struck(self) -> bool:
        return self._struck

    async def close(self) -> None:
        """Stop observing; a strike still under way is cancelled."""
        self._finished.set()
        for task in [*self._tasks, *([self._observer] if self._observer else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._observer] if self._observer else []),
                             return_exceptions=True)
        await self.after_run()

    async def after_run(self) -> None:
        """What a drill tears down after the run."""

    # -- the report ---------------------------------------------------------------------

    def drill_checks(self, out: Path) -> list[Check]:
        """The drill's own checks, after the run."""
        return []

    def checks(self, out: Path) -> list[Check]:
        struck = Check.of("the drill struck", self._struck and not self._errors,
                          "; ".join(self._errors) if self._errors else
                          "as planned" if self._struck else "its moment never came")
        published = {slot: len(v) for slot, v in self.clearings_seen.items()}
        twice = sorted(slot for slot, n in published.items() if n > 1)
        clearings = Check.of("one clearing published per slot", not twice,
                             f"different clearings published for slot(s) {twice}" if twice else
                             f"{len(published)} slot(s) seen on the bus, one version each")
        return [struck, clearings, *self.drill_checks(out)]
