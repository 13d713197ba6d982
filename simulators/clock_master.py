"""The virtual clock: time moves on when every participant has finished its step.

The master publishes a tick, waits for an acknowledgement from each participant and
only then moves to the next tick, so a run's outcome depends on its seed and
configuration, never on the machine's speed. In real-time mode ticks follow the wall
clock (scaled by ``speed``) and late acknowledgements are only counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from broker.bus import BusConnection, Received
from broker.codec import PayloadError
from broker.messages import Clearing, ClockAck, ClockTick, Status, decode
from broker.topics import TopicError, Topics, parse_topic


class ClockStalled(RuntimeError):
    """Participants did not acknowledge a tick in time."""


@dataclass
class ClockStats:
    ticks: int = 0
    late_acks: int = 0
    clearings: list[Clearing] = field(default_factory=list)


class ClockMaster:
    def __init__(
        self,
        bus: BusConnection,
        topics: Topics,
        participants: Sequence[str],
        market: str,
        ack_timeout_s: float = 60.0,
        observers: Sequence[str] = (),
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.participants = frozenset(participants)
        self.observers = frozenset(observers)  # must be online before the first tick; never ack
        self.market = market
        self._expected = self.participants
        self.ack_timeout_s = ack_timeout_s
        self.stats = ClockStats()
        self._online: set[str] = set()
        self._acks: set[str] = set()
        self._seq = -1
        self._all_online = asyncio.Event()
        self._all_acked = asyncio.Event()

    async def listen(self) -> None:
        """Consume the bus: presence, acknowledgements and clearings (for progress)."""
        await self.bus.subscribe(
            [self.topics.all_devices("status"), self.topics.all_acks, self.topics.clearing]
        )
        async for received in self.bus.messages():
            self._on_message(received)

    def _on_message(self, received: Received) -> None:
        try:
            parsed = parse_topic(received.topic)
            msg = decode(received.payload)
        except (TopicError, PayloadError):
            return
        if isinstance(msg, Status) and parsed.name in self.participants | self.observers:
            if msg.state == "online":
                self._online.add(parsed.name)
            else:
                self._online.discard(parsed.name)
            if self._online >= self.participants | self.observers:
                self._all_online.set()
        elif isinstance(msg, ClockAck):
            if msg.seq != self._seq:
                self.stats.late_acks += 1
                return
            self._acks.add(msg.participant)
            if self._acks >= self._expected:
                self._all_acked.set()
        elif isinstance(msg, Clearing):
            self.stats.clearings.append(msg)

    async def wait_online(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._all_online.wait(), timeout_s)
        except TimeoutError:
            missing = sorted((self.participants | self.observers) - self._online)
            raise ClockStalled(
                f"{len(missing)} participant(s) did not come online within {timeout_s:.0f} s: "
                f"{', '.join(missing[:10])}"
            ) from None

    async def run(
        self,
        times_s: Sequence[int],
        before_tick: Callable[[int], Awaitable[None]],
        after_tick: Callable[[int, int], Awaitable[None]],
        slot_s: int,
        realtime_speed: int | None = None,
    ) -> None:
        """Tick through ``times_s``; ``before_tick(t)`` runs first (the physics).

        Slot starts and the last tick go to every participant on the tick topic; gate
        closures concern only the market and go to the coordinator on the gate topic.
        """
        wall0 = time.monotonic()
        for index, t_s in enumerate(times_s):
            if realtime_speed is not None:
                due = wall0 + (t_s - times_s[0]) / realtime_speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await before_tick(t_s)
            self._seq = index
            self._acks = set()
            self._all_acked.clear()
            last = index == len(times_s) - 1
            for_all = last or t_s % slot_s == 0
            self._expected = self.participants if for_all else frozenset({self.market})
            topic = self.topics.tick if for_all else self.topics.gate
            await self.bus.publish(topic, ClockTick(index, t_s, last))
            self.stats.ticks += 1
            if realtime_speed is None or last:
                await self._wait_acks(index)
            await after_tick(index, t_s)

    async def _wait_acks(self, seq: int) -> None:
        try:
            await asyncio.wait_for(self._all_acked.wait(), self.ack_timeout_s)
        except TimeoutError:
            missing = sorted(self._expected - self._acks)
            raise ClockStalled(
                f"tick {seq}: no acknowledgement within {self.ack_timeout_s:.0f} s from "
                f"{', '.join(missing[:10])}"
            ) from None


def tick_times(first_slot: int, slots: int, slot_s: int, gate_closure_s: int) -> list[int]:
    """The virtual times of a run of ``slots`` slots starting at ``first_slot``.

    One slot ahead of the first, agents place their first orders; gate closures and
    slot starts alternate; two more gate closures after the last slot settle it.
    """
    times = [(first_slot - 1) * slot_s]
    for slot in range(first_slot, first_slot + slots + 2):
        times.append(slot * slot_s - gate_closure_s)
        if slot <= first_slot + slots:
            times.append(slot * slot_s)
    return times
