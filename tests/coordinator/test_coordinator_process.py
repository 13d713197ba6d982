"""A real coordinator process on a real broker: bad payloads are refused with a reason
on the sender's result topic, and the coordinator keeps serving."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from broker.bus import BusConnection, Endpoint, connect
from broker.identity import Identity, Verifier
from broker.launcher import BrokerHandle
from broker.messages import ClockAck, ClockTick, Message, Order, Result, Status, Step, decode
from broker.topics import Topics

pytestmark = pytest.mark.broker
TOPICS = Topics("demo")
ALICE = Identity.derived("alice", 1)
BOSS = Identity.derived("coordinator", 1)
START_S = 1_627_969 * 900  # a slot start: orders for the next slot are open
M = TypeVar("M", bound=Message)


def write_config(tmp_path: Path, broker: BrokerHandle, community: dict[str, Any] | None = None) -> Path:
    (tmp_path / "coordinator.key").write_text(BOSS.private_hex() + "\n")
    config = tmp_path / "coordinator.yaml"
    config.write_text(yaml.safe_dump({
        "coordinator": {"key_file": "coordinator.key", "broker": broker.url, "clock": "bus",
                        "data_dir": "data"},
        "community": community or {"id": "demo", "coordinator_key": BOSS.public_key_hex,
                                   "members": [{"id": "alice", "public_key": ALICE.public_key_hex}]},
    }))
    return config


async def next_of(bus: BusConnection, kind: type[M]) -> M:
    async for received in bus.messages():
        msg = decode(received.payload)
        if isinstance(msg, kind):
            return msg
    raise AssertionError("the bus closed")


def test_bad_payloads_are_refused_with_reasons_and_the_coordinator_goes_on(
    broker: BrokerHandle, tmp_path: Path
) -> None:
    process = subprocess.Popen([sys.executable, "-m", "gridmesh", "coordinator", "--config",
                                str(write_config(tmp_path, broker))])

    async def scenario() -> list[Result | ClockAck | Status]:
        async with connect(Endpoint(broker.host, broker.port), "alice-test", persistent=False) as bus:
            await bus.subscribe([TOPICS.device("alice", "result"), TOPICS.ack("coordinator"),
                                 TOPICS.device("coordinator", "status")])
            await next_of(bus, Status)  # "online" comes once it has subscribed
            await bus.publish(TOPICS.tick, ClockTick(0, START_S))
            seen: list[Result | ClockAck | Status] = [await next_of(bus, ClockAck)]
            order_topic = TOPICS.device("alice", "order")
            good = ALICE.sign(Order("alice", 1_627_970, 0, "buy", (Step(500, 299_999),), START_S))
            for payload in (b"{not json", Order("alice", 1_627_970, 0, "buy", (Step(500, 1),), START_S),
                            good):
                await bus.publish(order_topic, payload)
                seen.append(await next_of(bus, Result))
            return seen

    try:
        ack, junk, unsigned, accepted = asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        process.terminate()
        process.wait(10)
    assert isinstance(ack, ClockAck) and ack.seq == 0
    for result in (junk, unsigned, accepted):
        assert isinstance(result, Result) and result.device == "alice"
        assert Verifier().verify(result, BOSS.public_key_hex)
    assert (junk.status, unsigned.status, accepted.status) == ("rejected", "rejected", "accepted")
    assert "not JSON" in junk.reason and unsigned.reason == "bad signature"
    # The unsigned order named the same id; it could not block the signed one.
    assert unsigned.ref == accepted.ref == "alice:1627970:0"
