"""A real coordinator process killed with SIGKILL after a gate closure and started again
on the same files: it comes back online at the virtual time it had reached, answers the
member's replayed order with the result and award it gave the first time, and
acknowledges the gate's tick sent again without clearing the slot a second time."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from broker.bus import BusConnection, Endpoint, connect
from broker.launcher import BrokerHandle
from broker.messages import Award, ClockAck, ClockTick, Message, Order, Result, Status, Step, decode
from ledger.store import LedgerStore
from tests.coordinator.test_coordinator_process import ALICE, START_S, TOPICS, write_config

pytestmark = pytest.mark.broker
SLOT = START_S // 900 + 1
GATE_S = SLOT * 900 - 300


async def next_message(bus: BusConnection) -> Message:
    async for received in bus.messages():
        return decode(received.payload)
    raise AssertionError("the bus closed")


async def until_online(bus: BusConnection) -> None:
    while True:
        msg = await next_message(bus)
        if isinstance(msg, Status) and msg.state == "online":
            return


async def until_offline(bus: BusConnection) -> None:
    while True:
        msg = await next_message(bus)
        if isinstance(msg, Status) and msg.state == "offline":
            return


def test_a_killed_coordinator_clears_nothing_twice_and_answers_a_replay_as_before(
        broker: BrokerHandle, tmp_path: Path) -> None:
    config = write_config(tmp_path, broker)
    command = [sys.executable, "-m", "gridmesh", "coordinator", "--config", str(config)]
    order = ALICE.sign(Order("alice", SLOT, 0, "buy", (Step(500, 299_999),), START_S))

    async def scenario() -> tuple[list[Message], list[Message]]:
        first = subprocess.Popen(command)
        second = None
        try:
            async with connect(Endpoint(broker.host, broker.port), "alice-test", persistent=False) as bus:
                await bus.subscribe([TOPICS.device("alice", k) for k in ("result", "award")] +
                                    [TOPICS.ack("coordinator"), TOPICS.device("coordinator", "status")])
                await until_online(bus)
                before: list[Message] = []
                await bus.publish(TOPICS.tick, ClockTick(0, START_S))
                before.append(await next_message(bus))  # the ack
                await bus.publish(TOPICS.device("alice", "order"), order)
                before.append(await next_message(bus))  # the result
                await bus.publish(TOPICS.gate, ClockTick(1, GATE_S))
                before += [await next_message(bus), await next_message(bus)]  # award and ack, in some order
                first.kill()  # SIGKILL: no goodbye, its last will says offline
                first.wait(10)
                await until_offline(bus)
                second = subprocess.Popen(command)
                await until_online(bus)
                # Alice replays her outbox before any tick: the coordinator resumes at the last
                # tick it saw, so it answers at once, as it would have.
                await bus.publish(TOPICS.device("alice", "order"), order)
                after = [await next_message(bus), await next_message(bus)]
                await bus.publish(TOPICS.gate, ClockTick(1, GATE_S))  # the clock master asks again
                after.append(await next_message(bus))
                return before, after
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait(10)

    before, after = asyncio.run(asyncio.wait_for(scenario(), 60))
    ack0, result, *gate = before
    assert isinstance(ack0, ClockAck) and isinstance(result, Result) and result.status == "accepted"
    [award] = [m for m in gate if isinstance(m, Award)]
    assert [m for m in gate if isinstance(m, ClockAck)] == [ClockAck("coordinator", 1)]
    assert after == [result, award, ClockAck("coordinator", 1)]  # the same answers, signed as before
    with sqlite3.connect(tmp_path / "data" / "coordinator.db") as conn:
        assert conn.execute("SELECT slot FROM clearings").fetchall() == [(SLOT,)]
        assert conn.execute("SELECT count(*) FROM awards").fetchall() == [(1,)]
        assert conn.execute("SELECT count(*) FROM verdicts").fetchall() == [(1,)]
    ledger = LedgerStore(tmp_path / "data" / "ledger.db")
    assert [h.slot for h in ledger.headers()][1:] == [SLOT]  # one block for the slot
