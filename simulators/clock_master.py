"""The virtual clock: time moves on when every participant has finished its step.

The master publishes a tick, waits for an acknowledgement from each participant and
only then moves to the next tick, so a run's outcome depends on its seed and
configuration, never on the machine's speed. In real-time mode ticks follow the wall
clock (scaled by ``speed``) and late acknowledgements are only counted.

The master survives the broker going away: :meth:`ClockMaster.listen` keeps its session,
reconnecting with backoff, and publishes the tick it waits on again when it is back and
whenever a participant it waits for comes back online (a participant acknowledges a tick
it has seen again without acting on it twice). The wait for acknowledgements starts over
after a lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from broker.bus import BusConnection, BusError, Endpoint, Received, connect, keep_connected
from broker.codec import PayloadError
from broker.messages import Clearing, ClockAck, ClockTick, Status, decode
from broker.topics import TopicError, Topics, parse_topic

log = logging.getLogger("gridmesh.clock")
RESEND_S = 5.0  # after a lost connection, how often a tick still missing acknowledgements goes out again

class ClockStalled(RuntimeError):
    """Participants did not acknowledge a tick in time."""


@dataclass
class ClockStats:
    ticks: int = 0
    late_acks: int = 0
    reconnects: int = 0
    ticks_sent_again: int = 0
    clearings: list[Clearing] = field(default_factory=list)


class ClockMaster:
    def __init__(
        self,
        endpoint: Endpoint,
        client_id: str,
        topics: Topics,
        participants: Sequence[str],
        market: str,
        ack_timeout_s: float = 60.0,
        observers: Sequence[str] = (),
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.bus: BusConnection | None = None  # the open session
        self._connected = asyncio.Event()
        self._stopped = asyncio.Event()
        self._current: tuple[str, ClockTick] | None = None  # the tick whose acks are awaited
        self._sending: set[asyncio.Task[None]] = set()
        self.topics = topics
        self.participants = frozenset(participants)
        self.observers = frozenset(observers)  # must be online before the first tick; never ack
        self.market = market
        self._expected = self.participants
        self.ack_timeout_s = ack_timeout_s
        self.stats = ClockStats()
        self._online: set[str] = set()
        self._online_since: dict[str, int] = {}  # each one's latest "online" time
        self._acks: set[str] = set()
        self._seq = -1
        self._all_online = asyncio.Event()
        self._all_acked = asyncio.Event()

    async def listen(self) -> None:
        """Keep a session and consume the bus: presence, acknowledgements and clearings
        (for progress); reconnect after a lost connection until :meth:`stop`."""
        def retry(exc: Exception, delay: float) -> None:
            self.stats.reconnects += 1
            log.warning("clock: broker %s unreachable (%s); retrying in %.1f s", self.endpoint, exc, delay)

        await keep_connected(self._session, self._stopped, retry)

    def stop(self) -> None:
        self._stopped.set()

    async def _session(self) -> None:
        async with connect(self.endpoint, self.client_id, persistent=False) as bus:
            await bus.subscribe(
                [self.topics.all_devices("status"), self.topics.all_acks, self.topics.clearing]
            )
            self.bus = bus
            self._connected.set()
            try:
                if self._current is not None:
                    await self._send_again(bus)
                async for received in bus.messages():
                    self._on_message(received)
            finally:
                self.bus = None
                self._connected.clear()

    async def _send_again(self, bus: BusConnection) -> None:
        """Publish the tick being waited on again (what it reached may have been lost)."""
        if self._current is None:
            return
        topic, tick = self._current
        self.stats.ticks_sent_again += 1
        with contextlib.suppress(BusError):  # the session ends; the next one sends it
            await bus.publish(topic, tick)

    def _send_again_soon(self) -> None:
        if self.bus is not None and self._current is not None:
            task = asyncio.create_task(self._send_again(self.bus))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _on_message(self, received: Received) -> None:
        try:
            parsed = parse_topic(received.topic)
            msg = decode(received.payload)
        except (TopicError, PayloadError):
            return
        if isinstance(msg, Status) and parsed.name in self.participants | self.observers:
            if msg.state == "online":
                since = self._online_since.get(parsed.name)
                back = since is not None and (since != msg.t_s or parsed.name not in self._online)
                if back and parsed.name in self._expected - self._acks:
                    self._send_again_soon()  # a new session: it may have missed the tick
                self._online_since[parsed.name] = msg.t_s
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
        after_publish: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> None:
        """Tick through ``times_s``; ``before_tick(t)`` runs first (the physics),
        ``after_publish(index, t)`` (a drill) as soon as the tick is out.

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
            await self._publish(topic, ClockTick(index, t_s, last))
            self.stats.ticks += 1
            if after_publish is not None:
                await after_publish(index, t_s)
            if realtime_speed is None or last:
                await self._wait_acks(index)
                self._current = None
            await after_tick(index, t_s)

    async def _publish(self, topic: str, tick: ClockTick) -> None:
        """Publish a tick once connected; if the connection fails under it, the next
        session publishes it again."""
        self._current = (topic, tick)
        try:
            await asyncio.wait_for(self._connected.wait(), self.ack_timeout_s)
        except TimeoutError:
            raise ClockStalled(f"tick {tick.seq}: no connection to the broker {self.endpoint} "
                               f"within {self.ack_timeout_s:.0f} s") from None
        assert self.bus is not None
        with contextlib.suppress(BusError):
            await self.bus.publish(topic, tick)

    async def _wait_acks(self, seq: int) -> None:
        """Wait for every acknowledgement. After a lost connection the tick is sent again
        every ``RESEND_S`` while acknowledgements are missing, and the timeout starts over."""
        waited_s, troubled, reconnects = 0.0, False, self.stats.reconnects
        while True:
            try:
                await asyncio.wait_for(self._all_acked.wait(), RESEND_S)
                return
            except TimeoutError:
                waited_s += RESEND_S
            if self.stats.reconnects != reconnects:
                waited_s, troubled, reconnects = 0.0, True, self.stats.reconnects
            if troubled:
                self._send_again_soon()
            if waited_s >= self.ack_timeout_s:
                missing = sorted(self._expected - self._acks)
                raise ClockStalled(
                    f"tick {seq}: no acknowledgement within {self.ack_timeout_s:.0f} s from "
                    f"{', '.join(missing[:10])}"
                )


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
