"""One bus suite, run against mosquitto and the embedded broker alike.

Each test starts its broker through the launcher on a free port and talks to it with
the project's own bus client; the fault drill kills a real process.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from broker.bus import BusConnection, Endpoint, Received, connect
from broker.identity import Identity
from broker.launcher import BrokerError, BrokerHandle, start_broker
from broker.messages import Order, Status, Step, decode
from broker.topics import Topics
from gridmesh.cli import main

pytestmark = pytest.mark.broker
TOPICS = Topics("demo")
WAIT_S = 20.0
T = TypeVar("T")


def endpoint(handle: BrokerHandle) -> Endpoint:
    return Endpoint(handle.host, handle.port)


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, WAIT_S)
    return asyncio.run(bounded())


async def take(bus: BusConnection, count: int) -> list[Received]:
    got: list[Received] = []
    async for received in bus.messages():
        got.append(received)
        if len(got) == count:
            break
    return got


def test_a_signed_order_makes_a_qos1_round_trip(broker: BrokerHandle) -> None:
    alice = Identity.derived("alice", 1)
    order = alice.sign(Order("alice", 100, 0, "buy", (Step(500, 300_000),), 89_000))

    async def scenario() -> list[Received]:
        async with connect(endpoint(broker), "rt-sub", persistent=False) as sub:
            await sub.subscribe([TOPICS.all_devices("order")])
            async with connect(endpoint(broker), "rt-pub", persistent=False) as pub:
                await pub.publish(TOPICS.device("alice", "order"), order)
            return await take(sub, 1)

    [received] = run(scenario())
    assert received.topic == "gm/v1/demo/dev/alice/order"
    assert decode(received.payload, Order) == order


def test_a_late_subscriber_gets_the_retained_status(broker: BrokerHandle) -> None:
    async def scenario() -> list[Received]:
        async with connect(endpoint(broker), "ret-pub", persistent=False) as pub:
            await pub.publish(TOPICS.device("h001", "status"), Status("h001", "online", 5), retain=True)
        async with connect(endpoint(broker), "ret-sub", persistent=False) as sub:
            await sub.subscribe([TOPICS.all_devices("status")])
            return await take(sub, 1)

    [received] = run(scenario())
    assert decode(received.payload, Status) == Status("h001", "online", 5)


WILL_HOLDER = """
import asyncio, sys
from broker.bus import Endpoint, connect
from broker.messages import Status
async def hold():
    topic = "gm/v1/demo/dev/h009/status"
    will = (topic, Status("h009", "offline", 0))
    async with connect(Endpoint.parse(sys.argv[1]), "will-holder", will=will) as bus:
        await bus.publish(topic, Status("h009", "online", 1), retain=True)
        print("ready", flush=True)
        await asyncio.Event().wait()
asyncio.run(hold())
"""


def test_a_killed_client_leaves_its_last_will(broker: BrokerHandle) -> None:
    holder = subprocess.Popen([sys.executable, "-c", WILL_HOLDER, broker.url],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"

        async def scenario() -> list[Status]:
            async with connect(endpoint(broker), "will-watch", persistent=False) as sub:
                await sub.subscribe([TOPICS.device("h009", "status")])
                states = [decode(r.payload, Status) for r in await take(sub, 1)]
                holder.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends the will
                states += [decode(r.payload, Status) for r in await take(sub, 1)]
                return states  # type: ignore[return-value]

        states = run(scenario())
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert [s.state for s in states] == ["online", "offline"]


def test_no_queued_message_is_lost_for_an_offline_persistent_session(broker: BrokerHandle) -> None:
    """1500 QoS 1 messages queue for an offline subscriber; all arrive, in order.

    Unconfigured, mosquitto would keep 1000 (max_queued_messages) and amqtt with
    anonymous sessions none.
    """
    count = 1500
    topic = TOPICS.device("h001", "settlement")

    async def scenario() -> list[bytes]:
        async with connect(endpoint(broker), "queue-sub") as sub:
            await sub.subscribe([topic])
        async with connect(endpoint(broker), "queue-pub", persistent=False) as pub:
            await asyncio.gather(*(pub.publish(topic, str(i).encode()) for i in range(count)))
        async with connect(endpoint(broker), "queue-sub") as sub:
            await sub.subscribe([topic])
            return [r.payload for r in await take(sub, count)]

    payloads = run(scenario())
    assert payloads == [str(i).encode() for i in range(count)]


def test_a_subscriber_sees_only_what_it_subscribed_to(broker: BrokerHandle) -> None:
    """amqtt 0.12 hands a connecting client the retained messages matching *any*
    client's filters; the bus connection drops those."""

    async def scenario() -> list[Received]:
        async with connect(endpoint(broker), "wide", persistent=False) as wide:
            await wide.subscribe([TOPICS.all_devices("status")])
            async with connect(endpoint(broker), "pub", persistent=False) as pub:
                await pub.publish(TOPICS.device("h001", "status"), Status("h001", "online", 1),
                                  retain=True)
                async with connect(endpoint(broker), "narrow", persistent=False) as narrow:
                    await narrow.subscribe([TOPICS.device("h002", "result"), TOPICS.tick])
                    await pub.publish(TOPICS.tick, b"tick")
                    return await take(narrow, 1)

    [received] = run(scenario())
    assert received.topic == TOPICS.tick


def occupied_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_a_port_in_use_is_refused_naming_it(broker_kind: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    sock, port = occupied_port()
    with sock:
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is already in use"):
            start_broker(broker_kind, port=port, workdir=tmp_path / "b")
        assert main(["broker", "--kind", broker_kind, "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err


def test_monitor_prints_one_decoded_line_per_message_and_stops_at_count(broker: BrokerHandle) -> None:
    async def publish() -> None:
        async with connect(endpoint(broker), "mon-pub", persistent=False) as pub:
            for device in ("h001", "h002", "h003"):
                await pub.publish(TOPICS.device(device, "status"), Status(device, "online", 7),
                                  retain=True)

    run(publish())
    done = subprocess.run(
        [sys.executable, "-m", "gridmesh", "monitor", "--broker", broker.url, "--community", "demo",
         "--count", "3"],
        capture_output=True, text=True, timeout=WAIT_S, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert sorted(line.split(" status ")[1] for line in lines) == [
        "h001 online", "h002 online", "h003 online"]
