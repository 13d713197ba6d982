"""Island mode on real parts: an agent whose broker is unreachable keeps running its
household's slots against virtual devices served over Modbus TCP, hands the battery to
its own control, queues its meter reports and orders nothing; once a broker listens at
its address it connects, publishes the queued reports oldest first, and forgets each only
when the coordinator's signed answer closes it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from broker.bus import Endpoint, connect
from broker.clock import ManualClock
from broker.community import Community, Member
from broker.identity import Identity
from broker.launcher import free_port, start_broker
from broker.messages import MeterReport, Result, Settlement, decode
from broker.topics import Topics
from edge.agent import Agent
from edge.agent_core import AgentCore
from edge.config import DeviceConfig, ModbusConfig
from edge.delivery import Delivery
from edge.drivers import ModbusHousehold
from edge.forecast import SeasonalNaive
from edge.outbox import Outbox
from simulators.device_farm import BATTERY_UNIT, INVERTER_UNIT, METER_UNIT, TEMPLATES, DeviceFarm
from simulators.fleet import make_households
from simulators.profiles import ProfileSet

pytestmark = pytest.mark.broker
START = int(dt.datetime(2016, 6, 6, 10, tzinfo=dt.UTC).timestamp())  # a slot start
SLOT = START // 900
BOSS = Identity.derived("coordinator", 1)
TOPICS = Topics("demo")


class WatchedOutbox(Outbox):
    """An outbox that tells which confirmations the agent handed it, as they come."""

    def __init__(self, path: Path, counts: Counter[str]) -> None:
        super().__init__(path, counts)
        self.confirmed: asyncio.Queue[str] = asyncio.Queue()

    def confirm(self, ref: str) -> bool:
        gone = super().confirm(ref)
        self.confirmed.put_nowait(ref)
        return gone

    async def next_confirmed(self) -> str:
        return await asyncio.wait_for(self.confirmed.get(), 10)


def test_an_island_keeps_the_household_safe_and_delivers_its_reports_once_back(
        broker_kind: str, tmp_path: Path) -> None:
    spec = next(h for h in make_households(4, 5, prosumer_pct=100) if h.battery is not None)
    identity = Identity.derived(spec.id, 1)
    community = Community(coordinator_key=BOSS.public_key_hex,
                          members=(Member(spec.id, identity.public_key_hex),))
    port = free_port()  # where the broker will be: nothing listens there yet

    async def main() -> None:
        async with DeviceFarm([spec], ProfileSet.load_bundled(), START) as farm:
            host, modbus_port = farm.endpoint(spec.id)
            devices = ModbusHousehold(ModbusConfig(
                host, modbus_port, 2000, DeviceConfig(TEMPLATES[METER_UNIT], METER_UNIT),
                DeviceConfig(TEMPLATES[INVERTER_UNIT], INVERTER_UNIT),
                DeviceConfig(TEMPLATES[BATTERY_UNIT], BATTERY_UNIT)), spec.id)
            core = AgentCore(spec.id, community, identity, SeasonalNaive())
            outbox = WatchedOutbox(tmp_path / "state" / f"{spec.id}.outbox.db", core.counts)
            agent = Agent(core, devices, Endpoint("127.0.0.1", port), "wall",
                          Delivery(spec.id, TOPICS, outbox, core.counts), wall=ManualClock(START + 1))
            assert await devices.set_battery_w(-1000)  # under the agent's command, as when trading
            assert farm.state(spec.id).remote

            for k in range(3):  # three slots without a broker
                farm.advance_to(START + 900 * k)
                await agent.slot_start(SLOT + k, START + 900 * k)
            assert not farm.state(spec.id).remote  # the battery follows the household on its own
            queued = outbox.waiting()
            assert [(e.kind, e.slot) for e in queued] == [("report", SLOT), ("report", SLOT + 1)]
            assert (core.counts["island_slots"], core.counts["orders_sent"]) == (3, 0)

            with start_broker(broker_kind, port=port, workdir=tmp_path / "broker") as broker:
                endpoint = Endpoint(broker.host, broker.port)
                async with connect(endpoint, "coordinator-stand-in", persistent=False) as boss:
                    await boss.subscribe([TOPICS.device(spec.id, "report")])
                    running = asyncio.create_task(agent.run())
                    got = []
                    async for received in boss.messages():
                        got.append(received.payload)
                        if len(got) == 2:
                            break
                    assert got == [e.payload for e in queued]  # byte for byte, oldest first
                    first, second = (decode(p, MeterReport) for p in got)
                    assert isinstance(first, MeterReport) and isinstance(second, MeterReport)

                    # An unsigned settlement closes nothing; the signed one closes the first
                    # report, a signed refusal the second.
                    settlement = Settlement(spec.id, first.slot, 0, first.net_wh, first.net_wh, 0, 0, 0, 0)
                    await boss.publish(TOPICS.device(spec.id, "settlement"), settlement)
                    await boss.publish(TOPICS.device(spec.id, "settlement"), BOSS.sign(settlement))
                    assert await outbox.next_confirmed() == first.report_id
                    assert len(outbox) == 1
                    assert core.counts["bad_coordinator_signature"] == 1
                    assert [e.slot for e in outbox.waiting()] == [second.slot]
                    refusal = Result(spec.id, second.report_id, "report", "rejected", "already settled",
                                     START + 3000)
                    await boss.publish(TOPICS.device(spec.id, "result"), BOSS.sign(refusal))
                    assert await outbox.next_confirmed() == second.report_id
                    assert len(outbox) == 0
                    agent.finished.set()
                    await asyncio.wait_for(running, 10)
            assert core.counts["sessions"] == 1 and core.counts["outbox_replayed"] == 2
            assert core.counts["outbox_pending"] == 0

    asyncio.run(main())
