"""One bus suite, run against mosquitto and the embedded broker alike.

Each test starts its broker through the launcher on a free port and talks to it with
the project's own bus client; where a test needs what the bus client does not show
(the retain flag, what the broker sent before filtering) it adds a plain aiomqtt
client. Waits are bounded: :func:`take` gives up after ``IDLE_S`` without a message
and returns what it has, so a failure says how many arrived.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import aiomqtt
import pytest

from broker import launcher
from broker.bus import BusConnection, Endpoint, Received, connect
from broker.identity import Identity, Verifier
from broker.launcher import BrokerError, BrokerHandle, start_broker
from broker.messages import Message, Order, Status, Step, decode
from broker.model_messages import ForecastShare
from broker.topics import Topics
from gridmesh.cli import main

pytestmark = pytest.mark.broker
TOPICS = Topics("demo")
WAIT_S = 30.0  # a whole scenario
IDLE_S = 5.0  # the longest wait for any one message
T = TypeVar("T")


def endpoint(handle: BrokerHandle) -> Endpoint:
    return Endpoint(handle.host, handle.port)


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, WAIT_S)
    return asyncio.run(bounded())


async def take(bus: BusConnection, count: int) -> list[Received]:
    """The next ``count`` messages, or fewer if ``IDLE_S`` passes without one."""
    got: list[Received] = []
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(IDLE_S) as idle:
            async for received in bus.messages():
                got.append(received)
                if len(got) == count:
                    break
                idle.reschedule(loop.time() + IDLE_S)
    except TimeoutError:
        pass
    return got


async def next_raw(client: aiomqtt.Client) -> aiomqtt.Message:
    return await asyncio.wait_for(anext(client.messages), IDLE_S)


def payload_of(message: aiomqtt.Message) -> bytes:
    assert isinstance(message.payload, bytes)
    return message.payload


def test_a_signed_order_makes_a_qos1_round_trip(broker: BrokerHandle) -> None:
    alice = Identity.derived("alice", 1)
    order = alice.sign(Order("alice", 100, 0, "buy", (Step(500, 300_000),), 89_000))

    async def scenario() -> list[Received]:
        async with connect(endpoint(broker), "rt-sub", persistent=False) as sub:
            await sub.subscribe([TOPICS.all_devices("order")], qos=1)
            async with connect(endpoint(broker), "rt-pub", persistent=False) as pub:
                await pub.publish(TOPICS.device("alice", "order"), order, qos=1)
            return await take(sub, 1)

    [received] = run(scenario())
    assert received.topic == "gm/v1/demo/dev/alice/order"
    decoded = decode(received.payload, Order)
    assert decoded == order
    assert Verifier().verify(decoded, alice.public_key_hex)


def test_a_late_subscriber_gets_the_retained_status_flagged_retained(broker: BrokerHandle) -> None:
    topic = TOPICS.device("h001", "status")

    async def scenario() -> aiomqtt.Message:
        async with connect(endpoint(broker), "ret-pub", persistent=False) as pub:
            await pub.publish(topic, Status("h001", "online", 5), retain=True)
        async with aiomqtt.Client(broker.host, broker.port, identifier="ret-sub") as late:
            await late.subscribe(TOPICS.all_devices("status"), qos=1)
            return await next_raw(late)

    message = run(scenario())
    assert message.topic.value == topic
    assert message.retain
    assert decode(payload_of(message), Status) == Status("h001", "online", 5)


def test_the_largest_share_and_a_retained_release_cross_intact(broker: BrokerHandle) -> None:
    """A forecast share may be 1 MiB (a June PV share is ~160 KB) and a model release is
    ~100 KB, retained: both brokers pass them byte for byte, the release flagged retained."""
    share = bytes(range(256)) * (ForecastShare.MAX_BYTES // 256)
    release = b"r" * 102_000

    async def scenario() -> tuple[list[Received], aiomqtt.Message]:
        async with connect(endpoint(broker), "big-sub", persistent=False) as sub:
            await sub.subscribe([TOPICS.device("h001", "share")], qos=1)
            async with connect(endpoint(broker), "big-pub", persistent=False) as pub:
                await pub.publish(TOPICS.device("h001", "share"), share, qos=1)
                await pub.publish(TOPICS.model("pv"), release, qos=1, retain=True)
            got = await take(sub, 1)
        async with aiomqtt.Client(broker.host, broker.port, identifier="big-late") as late:
            await late.subscribe(TOPICS.models, qos=1)
            return got, await next_raw(late)

    got, retained = run(scenario())
    assert [r.payload for r in got] == [share]
    assert retained.retain and retained.topic.value == TOPICS.model("pv") and payload_of(retained) == release


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
    """The holder process dies by SIGKILL: its socket closes without DISCONNECT."""
    topic = TOPICS.device("h009", "status")

    async def scenario() -> tuple[list[Message], aiomqtt.Message]:
        holder = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WILL_HOLDER, broker.url, stdout=asyncio.subprocess.PIPE)
        try:
            assert holder.stdout is not None
            assert await asyncio.wait_for(holder.stdout.readline(), IDLE_S) == b"ready\n"
            async with connect(endpoint(broker), "will-watch", persistent=False) as sub:
                await sub.subscribe([topic])
                seen = await take(sub, 1)
                holder.kill()
                await holder.wait()
                seen += await take(sub, 1)
        finally:
            if holder.returncode is None:
                holder.kill()
                await holder.wait()
        async with aiomqtt.Client(broker.host, broker.port, identifier="will-late") as late:
            await late.subscribe(topic, qos=1)
            retained = await next_raw(late)
        return [decode(r.payload, Status) for r in seen], retained

    states, retained = run(scenario())
    assert states == [Status("h009", "online", 1), Status("h009", "offline", 0)]
    assert retained.retain
    assert decode(payload_of(retained), Status) == Status("h009", "offline", 0)


def test_no_queued_message_is_lost_for_an_offline_persistent_session(broker: BrokerHandle) -> None:
    """1500 QoS 1 messages queue for an offline subscriber; all arrive, in order.

    Unconfigured, mosquitto would keep 1000 (max_queued_messages) and amqtt with
    anonymous sessions none.
    """
    count = 1500
    topic = TOPICS.device("h001", "settlement")

    async def scenario() -> list[bytes]:
        async with connect(endpoint(broker), "queue-sub", persistent=True) as sub:
            await sub.subscribe([topic], qos=1)
        async with connect(endpoint(broker), "queue-pub", persistent=False) as pub:
            await asyncio.gather(*(pub.publish(topic, str(i).encode(), qos=1) for i in range(count)))
        async with connect(endpoint(broker), "queue-sub", persistent=True) as sub:
            await sub.subscribe([topic], qos=1)
            return [r.payload for r in await take(sub, count)]

    payloads = run(scenario())
    assert len(payloads) == count
    assert payloads == [str(i).encode() for i in range(count)]


def test_a_subscriber_sees_only_what_it_subscribed_to(broker: BrokerHandle, broker_kind: str) -> None:
    """amqtt 0.12 hands a connecting client the retained messages matching *any*
    client's filters. A plain client shows what the broker sent; the bus connection
    beside it must yield only the topic it subscribed to."""
    stray = TOPICS.device("h001", "status")

    async def scenario() -> tuple[list[Received], list[str]]:
        async with connect(endpoint(broker), "wide", persistent=False) as wide:
            await wide.subscribe([TOPICS.all_devices("status")])
            async with connect(endpoint(broker), "pub", persistent=False) as pub:
                await pub.publish(stray, Status("h001", "online", 1), retain=True)
                async with (
                    connect(endpoint(broker), "narrow", persistent=False) as narrow,
                    aiomqtt.Client(broker.host, broker.port, identifier="narrow-raw") as raw,
                ):
                    await narrow.subscribe([TOPICS.device("h002", "result"), TOPICS.tick])
                    await raw.subscribe(TOPICS.tick, qos=1)
                    await pub.publish(TOPICS.tick, b"tick")
                    sent = [(await next_raw(raw)).topic.value]
                    while sent[-1] != TOPICS.tick:
                        sent.append((await next_raw(raw)).topic.value)
                    return await take(narrow, 1), sent

    got, sent = run(scenario())
    assert [r.topic for r in got] == [TOPICS.tick]
    # What each broker itself delivers: the embedded one shows the scenario provokes
    # the stray message the bus connection has to drop.
    assert sent == ([stray, TOPICS.tick] if broker_kind == "embedded" else [TOPICS.tick])


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
            start_broker(broker_kind, port=port, workdir=tmp_path / "b").stop()
        assert main(["broker", "--kind", broker_kind, "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err


def test_a_port_taken_after_the_check_is_refused_too(broker_kind: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Another program may take the port between the launcher's check and the broker's
    bind; its listener must not pass for the broker."""
    monkeypatch.setattr(launcher, "_port_in_use", lambda host, port: False)
    sock, port = occupied_port()
    with sock, pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is already in use"):
        start_broker(broker_kind, port=port, workdir=tmp_path / "b").stop()


def test_a_broker_runs_and_stops_without_an_error_in_its_output(broker: BrokerHandle) -> None:
    """Its log and (mosquitto) its database are writable, whoever starts it."""
    async def traffic() -> list[Received]:
        async with connect(endpoint(broker), "log-sub", persistent=True) as sub:
            await sub.subscribe([TOPICS.tick])
            await sub.publish(TOPICS.tick, b"tick")
            return await take(sub, 1)

    assert len(run(traffic())) == 1
    broker.stop()
    assert broker.process.returncode == 0
    output = (broker.workdir / "broker.out").read_text()
    assert [line for line in output.splitlines() if "error" in line.lower()] == []


def monitor(handle: BrokerHandle, count: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "gridmesh", "monitor", "--broker", handle.url, "--community", "demo",
         "--count", str(count)],
        capture_output=True, text=True, timeout=WAIT_S, check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line.split(" ", 1)[1] for line in done.stdout.splitlines()]  # without the time


def test_monitor_prints_one_decoded_line_per_message_and_stops_at_count(
        broker: BrokerHandle, capsys: pytest.CaptureFixture[str]) -> None:
    """Retained messages, so the monitor gets them whenever it subscribes."""
    devices = [f"h00{i}" for i in range(1, 6)]
    lines = {f"demo/dev/{d}/status status {d} online" for d in devices}

    async def publish() -> None:
        async with connect(endpoint(broker), "mon-pub", persistent=False) as pub:
            for device in devices:
                await pub.publish(TOPICS.device(device, "status"), Status(device, "online", 7),
                                  retain=True)

    run(publish())
    assert sorted(monitor(broker, len(devices))) == sorted(lines)
    first = monitor(broker, 2)
    assert len(first) == 2 and len(set(first)) == 2 and set(first) <= lines
    assert main(["monitor", "--broker", broker.url, "--count", "0"]) == 2
    assert "--count must be at least 1" in capsys.readouterr().err
