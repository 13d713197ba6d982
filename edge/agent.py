"""The edge agent's loop: the bus, the clock and the devices around :class:`AgentCore`.

With ``clock: bus`` the agent acts on the virtual clock's ticks and acknowledges each
tick once the coordinator has answered everything it sent (results for its report and
order at a slot start, its award at a gate closure). With ``clock: wall`` it acts at
each slot start of the system clock. A lost broker connection is retried with
backoff; the devices keep their last setpoint meanwhile. With federated rounds on, the
agent also shares its forecasting statistics and takes released models
(:mod:`edge.model_updates`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from broker.bus import BusConnection, Endpoint, Received, connect, keep_connected
from broker.clock import WallClock
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
)
from broker.model_messages import ModelRelease
from broker.topics import TopicError, Topics, parse_topic
from edge.agent_core import AgentCore
from edge.model_updates import ModelUpdates
from edge.readings import Readings

log = logging.getLogger("gridmesh.edge")
ACK_WAIT_S = 30.0


class HouseholdDevices(Protocol):
    """The household's devices as the agent sees them (see :mod:`edge.drivers`)."""

    async def read(self, t_s: int) -> Readings: ...

    async def set_battery_w(self, power_w: int) -> bool: ...

    async def release_battery(self) -> bool: ...

    async def set_pv_limit_pct(self, limit_pct: int) -> bool: ...

    def stats(self) -> dict[str, int]: ...

    async def close(self) -> None: ...


class Agent:
    def __init__(
        self, core: AgentCore, devices: HouseholdDevices, endpoint: Endpoint, clock_mode: str
    ) -> None:
        self.core = core
        self.devices = devices
        self.endpoint = endpoint
        self.clock_mode = clock_mode
        self.topics = Topics(core.community.id)
        self.times = core.community.market.times
        self._awaiting: set[str] = set()
        self._answered = asyncio.Event()
        self._tick_task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self.updates = ModelUpdates.for_member(core.device, core.community, core.identity, core.forecaster,
                                               core.counts)

    @property
    def device(self) -> str:
        return self.core.device

    async def run(self) -> None:
        """Run until the virtual clock's last tick (bus clock) or until cancelled."""
        def retry(exc: Exception, delay: float) -> None:
            self.core.counts["reconnects"] += 1
            log.warning("%s: broker %s unreachable (%s); retrying in %.1f s",
                        self.device, self.endpoint, exc, delay)

        await keep_connected(self._session, self.finished, retry)
        await self.devices.close()

    async def _session(self) -> None:
        status_topic = self.topics.device(self.device, "status")
        will = (status_topic, Status(self.device, "offline", 0))
        client_id = f"{self.core.community.id}-{self.device}"
        async with connect(self.endpoint, client_id, will=will) as bus:
            kinds = ("result", "award", "settlement", "proof")
            filters = [self.topics.device(self.device, k) for k in kinds]
            filters.append(self.topics.block)  # headers, to check the member's proofs against
            if self.core.storage:
                filters.append(self.topics.clearing)
            if self.updates is not None:
                filters.append(self.topics.models)  # retained: the latest release of each at once
            if self.clock_mode == "bus":
                filters.append(self.topics.tick)
            await bus.subscribe(filters)
            await bus.publish(status_topic, Status(self.device, "online", WallClock().now_s()),
                              retain=True)
            timer = None
            if self.clock_mode == "wall":
                timer = asyncio.create_task(self._wall_clock(bus))
            reader = asyncio.create_task(self._read(bus))
            finished = asyncio.create_task(self.finished.wait())
            try:
                await asyncio.wait({reader, finished}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, finished, timer):
                    if task is not None:
                        task.cancel()
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]

    async def _read(self, bus: BusConnection) -> None:
        async for received in bus.messages():
            await self._dispatch(bus, received)

    async def _dispatch(self, bus: BusConnection, received: Received) -> None:
        try:
            kind = parse_topic(received.topic).kind
            if kind == "tick":
                tick = decode(received.payload, ClockTick)
                assert isinstance(tick, ClockTick)
                self._tick_task = asyncio.create_task(self._on_tick(bus, tick))
                return
            msg = decode(received.payload)
        except (PayloadError, TopicError) as exc:
            self.core.counts["bad_payload"] += 1
            log.warning("%s: ignored a bad message on %s: %s", self.device, received.topic, exc)
            return
        ref: str | None = None
        if isinstance(msg, Result):
            ref = self.core.on_result(msg)
        elif isinstance(msg, Award):
            ref = self.core.on_award(msg)
        elif isinstance(msg, Settlement):
            self.core.on_settlement(msg)
        elif isinstance(msg, Clearing):
            ref = self.core.on_clearing(msg)
        elif isinstance(msg, BlockHeader) and self.core.proofs is not None:
            self.core.proofs.on_header(msg)
        elif isinstance(msg, InclusionProof) and self.core.proofs is not None:
            self.core.proofs.on_proof(msg)
        elif isinstance(msg, ModelRelease) and self.updates is not None:
            self.updates.on_release(msg, self.core.history)
        if ref is not None:
            self._awaiting.discard(ref)
            if not self._awaiting:
                self._answered.set()

    async def _on_tick(self, bus: BusConnection, tick: ClockTick) -> None:
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
            await self._slot_start(bus, slot, t_s)
        await self._wait_answered()
        await bus.publish(self.topics.ack(self.device), ClockAck(self.device, tick.seq))
        if tick.last:
            self.finished.set()

    def stats(self) -> dict[str, int]:
        """What the agent counted (messages, faults, reconnects) and its device layer's
        (failures, skipped reads, re-applied commands, time spent in Modbus), and which
        released forecasters it runs since when."""
        updates = self.updates.stats() if self.updates is not None else {}
        return {**self.core.counts, **self.devices.stats(), **updates}

    async def _slot_start(self, bus: BusConnection, slot: int, t_s: int) -> None:
        started = time.perf_counter()
        readings = await self.devices.read(t_s)
        read_s = time.perf_counter() - started
        if self.updates is not None:
            self.updates.switch(slot)  # a released model runs from its effective slot on
        actions = self.core.on_slot_start(slot, readings)
        shares = self.updates.shares(slot, self.core.history, t_s) if self.updates is not None else []
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
        publishes = []
        for msg in (*actions.messages, *shares):
            qos = 0 if isinstance(msg, Telemetry) else 1
            kind = "telemetry" if isinstance(msg, Telemetry) else msg.TYPE
            publishes.append(bus.publish(self.topics.device(self.device, kind), msg, qos=qos))
        await asyncio.gather(*publishes)

    async def _wait_answered(self) -> None:
        if not self._awaiting:
            return
        self._answered.clear()
        try:
            await asyncio.wait_for(self._answered.wait(), ACK_WAIT_S)
        except TimeoutError:
            self.core.counts["answers_missing"] += 1
            log.warning("%s: no answer for %s within %.0f s", self.device,
                        sorted(self._awaiting), ACK_WAIT_S)

    async def _wall_clock(self, bus: BusConnection) -> None:
        clock = WallClock()
        while True:
            now = clock.now_s()
            next_start = self.times.start_s(self.times.slot_of(now) + 1)
            await asyncio.sleep(next_start - now)
            await self._slot_start(bus, self.times.slot_of(next_start), next_start)
