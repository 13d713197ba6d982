"""The edge agent's loop: the bus, the clock and the devices around :class:`AgentCore`.

With ``clock: bus`` the agent acts on the virtual clock's ticks and acknowledges each
tick once the coordinator has answered everything it sent (results for its report and
order at a slot start, its award at a gate closure); a tick sent again (the clock master
lost the acknowledgement) is only acknowledged again. With ``clock: wall`` it acts at
each slot start of the system clock, connected or not. With federated rounds on, the
agent also shares its forecasting statistics and takes released models
(:mod:`edge.model_updates`).

Never lose a message (docs/reliability.md): orders, reports and shares go into the
outbox before they are published and stay there until the coordinator's answer closes
them (:mod:`edge.delivery`); after every reconnect, and whenever the coordinator comes
back online, what is still there is published again. A lost broker connection is
retried with backoff; meanwhile a wall-clock agent runs in island mode: each slot it
reads its devices, hands the battery to its own self-consumption control, queues its
meter report and places no order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from broker.bus import SESSION_EXPIRY_S, BusConnection, BusError, Endpoint, Received, connect, keep_connected
from broker.clock import Clock, WallClock
from broker.codec import PayloadError
from broker.messages import (
    Award,
    BlockHeader,
    Clearing,
    ClockAck,
    ClockTick,
    InclusionProof,
    Result,
    Settlement,
    Status,
    Telemetry,
    decode,
    report_id,
)
from broker.model_messages import ModelRelease
from broker.topics import TopicError, Topics, parse_topic
from edge.agent_core import AgentCore
from edge.capabilities import HouseholdDevices
from edge.delivery import Delivery
from edge.home_assistant import Discovery, HouseholdFeed
from edge.model_updates import ModelUpdates
from edge.sd_notify import LoopHealth
from gridmesh.logs import ContextLogger

if TYPE_CHECKING:
    from edge.metrics import AgentMetrics  # loaded only by a process that serves metrics

log = logging.getLogger("gridmesh.edge")
ACK_WAIT_S = 30.0


class Agent:
    def __init__(
        self, core: AgentCore, devices: HouseholdDevices, endpoint: Endpoint, clock_mode: str,
        delivery: Delivery | None = None, *, session_expiry_s: int = SESSION_EXPIRY_S,
        health: LoopHealth | None = None, wall: Clock | None = None,
        home_assistant: Discovery | None = None,
    ) -> None:
        self.core = core
        self.devices = devices
        self.endpoint = endpoint
        self.clock_mode = clock_mode
        self.delivery = delivery
        self.session_expiry_s = session_expiry_s
        self.wall: Clock = wall or WallClock()
        slot_s = core.community.market.slot_s if clock_mode == "wall" else None
        self.health = health or LoopHealth(limit_s=120, slot_s=slot_s)
        self.topics = Topics(core.community.id)
        self.times = core.community.market.times
        self._awaiting: set[str] = set()
        self._answered = asyncio.Event()
        self._tick_task: asyncio.Task[None] | None = None
        self._tick_running = -1  # the tick being handled
        self._tick_done = -1  # the last tick handled (and acknowledged at least once)
        self._bus: BusConnection | None = None  # the open session; None: island
        self._coordinator_since: int | None = None  # the coordinator's last "online" time
        self._coordinator_away = False  # its last will ("offline") seen since
        self._replays: set[asyncio.Task[None]] = set()
        self.finished = asyncio.Event()
        self.running = asyncio.Event()  # connected once, or through a first cycle without the broker
        self.home_assistant = HouseholdFeed(home_assistant) if home_assistant is not None else None
        self.metrics: AgentMetrics | None = None  # set by AgentMetrics: a Prometheus endpoint
        self.log = ContextLogger(log, {"device": core.device})  # JSON logs name the device
        self.updates = ModelUpdates.for_member(core.device, core.community, core.identity, core.forecaster,
                                               core.counts)

    @property
    def device(self) -> str:
        return self.core.device

    @property
    def connected(self) -> bool:
        return self._bus is not None

    @property
    def in_island(self) -> bool:
        """Running its household without the broker (wall clock only)."""
        return self.clock_mode == "wall" and self._bus is None and self.running.is_set()

    async def run(self) -> None:
        """Run until the virtual clock's last tick (bus clock) or until cancelled."""
        def retry(exc: Exception, delay: float) -> None:
            self.core.counts["reconnects"] += 1
            self.running.set()  # without the broker from the start: island mode is running too
            self.log.warning("%s: broker %s unreachable (%s); retrying in %.1f s",
                             self.device, self.endpoint, exc, delay)

        timer = asyncio.create_task(self._wall_clock()) if self.clock_mode == "wall" else None
        try:
            await keep_connected(self._session, self.finished, retry)
        finally:
            if timer is not None:
                timer.cancel()
            await self.devices.close()
            if self.delivery is not None:
                self.core.counts["outbox_pending"] = self.delivery.pending()
                self.delivery.outbox.close()

    async def _session(self) -> None:
        status_topic = self.topics.device(self.device, "status")
        will = (status_topic, Status(self.device, "offline", 0))
        client_id = f"{self.core.community.id}-{self.device}"
        expiry_s = self.session_expiry_s
        async with connect(self.endpoint, client_id, will=will, session_expiry_s=expiry_s) as bus:
            kinds = ("result", "award", "settlement", "proof")
            filters = [self.topics.device(self.device, k) for k in kinds]
            filters.append(self.topics.block)  # headers, to check the member's proofs against
            filters.append(self.topics.device(self.core.community.coordinator_id, "status"))
            if self.core.storage:
                filters.append(self.topics.clearing)
            if self.updates is not None:
                filters.append(self.topics.models)  # retained: the latest release of each at once
            if self.clock_mode == "bus":
                filters.append(self.topics.tick)
            await bus.subscribe(filters)
            await bus.publish(status_topic, Status(self.device, "online", self.wall.now_s()), retain=True)
            if self.home_assistant is not None:  # retained: Home Assistant finds them whenever it starts
                await asyncio.gather(*(bus.publish(topic, payload, retain=True)
                                       for topic, payload in self.home_assistant.configs()))
            self.core.counts["sessions"] += 1
            self._bus = bus
            reader = finished = None
            try:
                self.running.set()
                await self._replay(bus)
                reader = asyncio.create_task(self._read(bus))
                finished = asyncio.create_task(self.finished.wait())
                await asyncio.wait({reader, finished}, return_when=asyncio.FIRST_COMPLETED)
                if finished.done():  # a clean end sends no last will: say it
                    await bus.publish(status_topic, Status(self.device, "offline", self.wall.now_s()),
                                      retain=True)
            finally:
                self._bus = None
                for task in (reader, finished):
                    if task is not None:
                        task.cancel()
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]

    async def _replay(self, bus: BusConnection) -> None:
        """Publish again, oldest first, what the outbox still holds."""
        if self.delivery is None:
            return
        waiting = self.delivery.waiting()
        if waiting:
            self.log.info("%s: publishing %d message(s) from the outbox again", self.device, len(waiting))
            await asyncio.gather(*(bus.publish(e.topic, e.payload) for e in waiting))

    def _replay_soon(self) -> None:
        bus = self._bus
        if bus is not None:
            task = asyncio.create_task(self._replay_quietly(bus))
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)

    def _publish_retained_soon(self, topic: str, payload: bytes) -> None:
        """Publish a retained state (Home Assistant's) without holding up the message loop."""
        bus = self._bus
        if bus is not None:
            task = asyncio.create_task(self._publish_quietly(bus, topic, payload))
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)

    async def _publish_quietly(self, bus: BusConnection, topic: str, payload: bytes) -> None:
        with contextlib.suppress(BusError):  # the next slot publishes it again
            await bus.publish(topic, payload, retain=True)

    async def _replay_quietly(self, bus: BusConnection) -> None:
        with contextlib.suppress(BusError):  # the next session replays it all again
            await self._replay(bus)

    async def _read(self, bus: BusConnection) -> None:
        async for received in bus.messages():
            await self._dispatch(received)

    async def _dispatch(self, received: Received) -> None:
        try:
            kind = parse_topic(received.topic).kind
            if kind == "tick":
                tick = decode(received.payload, ClockTick)
                assert isinstance(tick, ClockTick)
                self._tick_task = asyncio.create_task(self._on_tick(tick))
                return
            msg = decode(received.payload)
        except (PayloadError, TopicError) as exc:
            self.core.counts["bad_payload"] += 1
            self.log.warning("%s: ignored a bad message on %s: %s", self.device, received.topic, exc)
            return
        ref: str | None = None
        delivery = self.delivery
        if isinstance(msg, Result):
            ref = self.core.on_result(msg)
            if ref is not None and delivery is not None:
                delivery.on_result(msg)
        elif isinstance(msg, Award):
            ref = self.core.on_award(msg)
            if ref is not None and delivery is not None:
                delivery.on_award(msg)
        elif isinstance(msg, Settlement):
            if self.core.on_settlement(msg):
                ref = report_id(self.device, msg.slot)
                if delivery is not None:
                    delivery.on_settlement(msg)
        elif isinstance(msg, Status):
            self._on_coordinator_status(msg)
        elif isinstance(msg, Clearing):
            ref = self.core.on_clearing(msg)
        elif isinstance(msg, BlockHeader) and self.core.proofs is not None:
            self.core.proofs.on_header(msg)
        elif isinstance(msg, InclusionProof) and self.core.proofs is not None:
            self.core.proofs.on_proof(msg)
        elif isinstance(msg, ModelRelease) and self.updates is not None:
            self.updates.on_release(msg, self.core.history)
        if ref is not None and self.home_assistant is not None and isinstance(msg, Award | Settlement):
            self._publish_retained_soon(*self.home_assistant.on_answer(msg))
        if ref is not None:
            if delivery is not None and self.metrics is not None:
                self.metrics.outbox_depth[self.device] = delivery.pending()
            self._awaiting.discard(ref)
            if not self._awaiting:
                self._answered.set()

    def _on_coordinator_status(self, status: Status) -> None:
        """The coordinator online again after a restart: it may have lost what was in
        flight, so publish the outbox again."""
        if status.device != self.core.community.coordinator_id:
            return
        if status.state != "online":
            self._coordinator_away = True
            return
        since = self._coordinator_since
        if since is not None and (status.t_s != since or self._coordinator_away):
            self.core.counts["coordinator_restarts"] += 1
            self._replay_soon()
        self._coordinator_since, self._coordinator_away = status.t_s, False

    async def _on_tick(self, tick: ClockTick) -> None:
        if tick.seq <= self._tick_done or tick.seq == self._tick_running:
            self.core.counts["ticks_repeated"] += 1  # the master lost our acknowledgement
            if tick.seq <= self._tick_done:
                await self._acknowledge(tick)
            return  # else: the handler at work acknowledges it
        self._tick_running = tick.seq
        t_s = tick.t_s
        self._awaiting = set()
        if t_s % self.times.slot_s == 0:
            slot = self.times.slot_of(t_s)
            # The award must be in hand before the slot is played (and, for the community's
            # battery, the slot's clearing: its market signal).
            expected = {self.core.award_expected(slot), self.core.clearing_expected(slot)} - {None}
            if expected:
                self._awaiting = {ref for ref in expected if ref is not None}
                await self._wait_answered()
            await self.slot_start(slot, t_s)
        if tick.last and self.delivery is not None:  # the run's end: every report's settlement is due
            self._awaiting |= {entry.ref for entry in self.delivery.outbox.waiting("report")}
        await self._wait_answered()
        self._tick_done = tick.seq
        await self._acknowledge(tick)

    async def _acknowledge(self, tick: ClockTick) -> None:
        bus = self._bus
        if bus is None:
            return  # the clock master sends the tick again once it sees us back online
        try:
            await bus.publish(self.topics.ack(self.device), ClockAck(self.device, tick.seq))
        except BusError:
            return
        if tick.last:
            self.finished.set()

    def healthy(self) -> bool:
        """Whether the slot loop deserves a systemd watchdog ping now."""
        return self.health.healthy(self.wall.now_s())

    def stats(self) -> dict[str, int]:
        """What the agent counted (messages, faults, reconnects) and its device layer's
        (failures, skipped reads, re-applied commands, time spent in Modbus), and which
        released forecasters it runs since when."""
        updates = self.updates.stats() if self.updates is not None else {}
        return {**self.core.counts, **self.devices.stats(), **updates}

    async def slot_start(self, slot: int, t_s: int) -> None:
        """One slot cycle: read the devices, act, keep and publish what must be delivered.
        Without a session (wall clock) the slot runs in island mode."""
        bus = self._bus
        trading = bus is not None or self.clock_mode == "bus"  # bus: ticks wait for the market
        self.health.cycle_started(self.wall.now_s())
        started = cycle_started = time.perf_counter()
        readings = await self.devices.read(t_s)
        read_s = time.perf_counter() - started
        if self.updates is not None:
            self.updates.switch(slot)  # a released model runs from its effective slot on
        actions = self.core.on_slot_start(slot, readings, trading)
        shares = []
        if self.updates is not None and trading:
            shares = self.updates.shares(slot, self.core.history, t_s)
        if not trading:
            self.core.counts["island_slots"] += 1
            self.log.info("%s: slot %d in island mode (broker %s unreachable): battery on its own "
                          "self-consumption, report queued, no order", self.device, slot, self.endpoint,
                          extra={"slot": slot})
        started = time.perf_counter()
        if actions.release_battery:
            await self.devices.release_battery()
        elif actions.battery_setpoint_w is not None:
            await self.devices.set_battery_w(actions.battery_setpoint_w)
        if actions.pv_limit_pct is not None:
            await self.devices.set_pv_limit_pct(actions.pv_limit_pct)
        counts = self.core.counts
        counts["device_us"] += round((read_s + time.perf_counter() - started) * 1e6)
        counts["device_cycles"] += 1
        self._awaiting = set(actions.awaiting) | {share.share_id for share in shares}
        self._answered.clear()
        messages = [*actions.messages, *shares]
        if self.delivery is not None:  # kept before it is published
            self.delivery.keep([m for m in messages if not isinstance(m, Telemetry)], t_s)
        state = self.home_assistant.on_readings(readings) if self.home_assistant is not None else None
        if bus is not None:
            publishes = []
            if state is not None:
                publishes.append(bus.publish(*state, retain=True))
            for msg in messages:
                qos = 0 if isinstance(msg, Telemetry) else 1
                kind = "telemetry" if isinstance(msg, Telemetry) else msg.TYPE
                publishes.append(bus.publish(self.topics.device(self.device, kind), msg, qos=qos))
            try:
                await asyncio.gather(*publishes)
            except BusError as exc:  # in the outbox: the next session publishes it again
                self.log.warning("%s: slot %d: publishing failed (%s)", self.device, slot, exc,
                                 extra={"slot": slot})
        self.health.cycle_finished(self.wall.now_s())
        if self.metrics is not None:
            depth = self.delivery.pending() if self.delivery is not None else None
            self.metrics.cycle_done(self.device, read_s, time.perf_counter() - cycle_started, depth)
        if not trading:
            self.running.set()  # running without the broker counts as running

    async def _wait_answered(self) -> None:
        if not self._awaiting:
            return
        self._answered.clear()
        try:
            await asyncio.wait_for(self._answered.wait(), ACK_WAIT_S)
        except TimeoutError:
            self.core.counts["answers_missing"] += 1
            self.log.warning("%s: no answer for %s within %.0f s", self.device,
                             sorted(self._awaiting), ACK_WAIT_S)

    async def _wall_clock(self) -> None:
        """Each slot start of the wall clock, connected or not."""
        while True:
            now = self.wall.now_s()
            next_start = self.times.start_s(self.times.slot_of(now) + 1)
            await asyncio.sleep(next_start - now)
            await self.slot_start(self.times.slot_of(next_start), next_start)
