"""The coordinator on the bus: receive, hand to :class:`Coordinator`, publish what it returns.

With the bus clock it runs each tick's gate closures, publishes the outcome and then
acknowledges the tick (a tick sent again is acknowledged again: the gate closures it
asks for are done); with the wall clock a timer triggers each gate closure.

The session is persistent (docs/reliability.md): while the coordinator is away the
broker keeps the members' submissions for it for ``SESSION_EXPIRY_S``. What a lost
connection keeps from being published of a gate closure's outcome is published again
first thing in the next session; answers to submissions are not kept here (the members'
outboxes submit again, and a resubmission is answered again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from broker.bus import BusConnection, Endpoint, connect, keep_connected
from broker.clock import Clock, ManualClock, WallClock
from broker.codec import PayloadError
from broker.messages import Clearing, ClockAck, ClockTick, Status, decode
from broker.topics import TopicError, parse_topic
from coordinator.metrics import CoordinatorMetrics
from coordinator.service import Coordinator, Outgoing

log = logging.getLogger("gridmesh.coordinator")

SUBMISSIONS = ("order", "report", "share")
MAX_BATCH = 256
SESSION_EXPIRY_S = 7 * 86_400  # the broker keeps submissions for a coordinator away this long
MAX_HELD = 10_000  # submissions kept for the first tick of a bus-clock coordinator; refused beyond


class CoordinatorLoop:
    def __init__(self, coordinator: Coordinator, endpoint: Endpoint, clock_mode: str,
                 metrics: CoordinatorMetrics | None = None) -> None:
        self.coordinator = coordinator
        self.metrics = metrics
        self.endpoint = endpoint
        self.clock_mode = clock_mode
        self.clock: Clock = WallClock()
        self.clock_started = clock_mode == "wall"
        if clock_mode == "bus":  # restarted, it resumes at the last tick it saw
            resumed_s = coordinator.store.progress("clock_s")
            self.clock = ManualClock(max(resumed_s, 0))
            self.clock_started = resumed_s >= 0
        self.finished = asyncio.Event()
        self._answers: set[asyncio.Task[None]] = set()
        self._answer_error: BaseException | None = None
        self._unsent: list[Outgoing] = []  # a gate closure's outcome a lost connection held back
        # submissions that came before the first tick, and reports ahead of this one's clock
        self._held: list[tuple[str, str, bytes]] = []

    async def run(self) -> None:
        def retry(exc: Exception, delay: float) -> None:
            self.coordinator.counts["reconnects"] += 1
            if self.metrics is not None:
                self.metrics.connected = False
            log.warning("broker %s unreachable (%s); retrying in %.1f s", self.endpoint, exc, delay)

        await keep_connected(self._session, self.finished, retry)

    async def _session(self) -> None:
        coord = self.coordinator
        topics = coord.topics
        name = coord.community.coordinator_id
        status_topic = topics.device(name, "status")
        will = (status_topic, Status(name, "offline", 0))
        async with connect(self.endpoint, f"{coord.community.id}-{name}", will=will,
                           session_expiry_s=SESSION_EXPIRY_S) as bus:
            for task in self._answers:  # answers the last session could not publish
                task.cancel()
            self._answers.clear()
            self._answer_error = None
            filters = [topics.all_devices(kind) for kind in SUBMISSIONS]
            if self.clock_mode == "bus":
                filters.extend((topics.tick, topics.gate))
            await bus.subscribe(filters)
            await bus.publish(status_topic, Status(name, "online", WallClock().now_s()), retain=True)
            await self._publish_outcome(bus, [])
            if self.metrics is not None:
                self.metrics.connected = True
            timer = None
            if self.clock_mode == "wall":
                timer = asyncio.create_task(self._wall_clock(bus))
            # Submissions that arrive together are handled together: one database
            # commit, then their answers, while the next ones are already being read.
            waiting: list[tuple[str, str, bytes]] = []
            try:
                async for received in bus.messages():
                    try:
                        parsed = parse_topic(received.topic)
                    except TopicError:
                        parsed = None
                    if parsed is not None and parsed.kind in ("tick", "gate"):
                        self._answer(bus, waiting)
                        await self._on_tick(bus, received.payload)
                        if self.finished.is_set():  # a clean end sends no last will: say it
                            await bus.publish(status_topic, Status(name, "offline", WallClock().now_s()),
                                              retain=True)
                            return
                    elif parsed is not None and parsed.name is not None and parsed.kind in SUBMISSIONS:
                        waiting.append((parsed.kind, parsed.name, received.payload))
                    if waiting and (bus.backlog() == 0 or len(waiting) >= MAX_BATCH):
                        self._answer(bus, waiting)
            finally:
                if timer is not None:
                    timer.cancel()

    def _answer(self, bus: BusConnection, waiting: list[tuple[str, str, bytes]]) -> None:
        """Handle the waiting submissions and start publishing their answers."""
        if not waiting:
            return
        now_s = self.clock.now_s()
        if self.clock_started:
            # A report of the slot running by this coordinator's clock waits for the next
            # tick: the members sent it on a tick this coordinator has not seen yet (it was
            # restarted and their outboxes' replays came first). Judged now it would be
            # refused as early, and that verdict would close it for good.
            hold = self._held if self.clock_mode == "bus" and len(self._held) < MAX_HELD else None
            out = self.coordinator.handle_many(waiting, now_s, hold)
        else:
            # Before its first tick a new bus-clock coordinator does not know the time: what
            # its session kept for it, and the members' replays, wait for the tick.
            room = max(0, MAX_HELD - len(self._held))
            self._held.extend(waiting[:room])
            out = [o for _, device, _ in waiting[room:] for o in self.coordinator.refuse(
                device, "the market clock has not started yet", now_s)]
        waiting.clear()
        if out:
            self._answering(_publish_all(bus, out))

    def _answering(self, publishing: Coroutine[Any, Any, None]) -> None:
        """Publish answers without waiting for the broker, so the next submission is
        read at once; :meth:`_answered` waits for them all before a tick is acknowledged."""
        task = asyncio.create_task(publishing)
        self._answers.add(task)
        task.add_done_callback(self._answer_done)

    def _answer_done(self, task: asyncio.Task[None]) -> None:
        self._answers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._answer_error = task.exception()

    async def _answered(self) -> None:
        if self._answers:
            await asyncio.gather(*self._answers, return_exceptions=True)
        error, self._answer_error = self._answer_error, None
        if error is not None:
            raise error

    async def _on_tick(self, bus: BusConnection, payload: bytes) -> None:
        started = time.perf_counter()
        try:
            tick = decode(payload, ClockTick)
        except PayloadError as exc:
            log.warning("ignored a bad clock tick: %s", exc.reason)
            return
        assert isinstance(tick, ClockTick) and isinstance(self.clock, ManualClock)
        if tick.t_s > self.clock.now_s() or not self.clock_started:
            self.clock.set(tick.t_s)
            self.coordinator.store.record_clock(tick.t_s)
        self.clock_started = True
        held, self._held = self._held, []
        self._answer(bus, held)  # at the tick's time, as they would have been without the restart
        await self._answered()
        await self._publish_outcome(bus, self.coordinator.advance(tick.t_s), started)
        name = self.coordinator.community.coordinator_id
        await bus.publish(self.coordinator.topics.ack(name), ClockAck(name, tick.seq))
        if tick.last:
            self.finished.set()

    async def _wall_clock(self, bus: BusConnection) -> None:
        while True:
            delay = self.coordinator.next_event_s(self.clock.now_s()) - self.clock.now_s()
            if delay > 0:
                await asyncio.sleep(delay)
            started = time.perf_counter()
            await self._publish_outcome(bus, self.coordinator.advance(self.clock.now_s()), started)

    async def _publish_outcome(self, bus: BusConnection, out: list[Outgoing],
                               started: float | None = None) -> None:
        """Publish gate closures' outcomes (stored already), after whatever an earlier
        lost connection held back; kept for the next session if this one fails too.
        ``started``: the gate closure's moment (perf_counter), for its latency."""
        self._unsent.extend(out)
        if self._unsent:
            await _publish_all(bus, self._unsent)
            self._unsent = []
        if started is not None and self.metrics is not None and any(isinstance(o.message, Clearing)
                                                                    for o in out):
            self.metrics.gate_published(time.perf_counter() - started)


async def _publish_all(bus: BusConnection, out: list[Outgoing]) -> None:
    await asyncio.gather(*(bus.publish(o.topic, o.message, retain=o.retain) for o in out))
