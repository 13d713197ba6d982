"""Persistent sessions on both brokers: what an agent or the coordinator gets back after
being away, and what each broker keeps across its own restart.

mosquitto speaks MQTT 5: a session with a session expiry keeps its subscriptions and
queued QoS 1 messages while the client is away, on disk across a restart of the broker.
The embedded amqtt broker refuses MQTT 5, the client falls back to MQTT 3.1.1 with clean
session off, and the broker keeps sessions in memory only. Waits end on a marker message
published after the ones that matter (per-connection ordering), never on idle time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from broker.bus import MQTT5, MQTT311, BusConnection, Endpoint, connect
from broker.launcher import BrokerError, BrokerHandle
from broker.topics import Topics

pytestmark = pytest.mark.broker
TOPICS = Topics("demo")
WAIT_S = 30.0
MARKER = b"marker"
T = TypeVar("T")
# One topic of each kind that must not be lost, as the agents and coordinator use them.
KINDS = ("order", "report", "share", "result", "award", "settlement")


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, WAIT_S)
    return asyncio.run(bounded())


def endpoint(handle: BrokerHandle) -> Endpoint:
    return Endpoint(handle.host, handle.port)


async def until_marker(bus: BusConnection) -> list[tuple[str, bytes]]:
    """Everything the connection receives up to the marker (not included)."""
    got: list[tuple[str, bytes]] = []
    async for received in bus.messages():
        if received.payload == MARKER:
            return got
        got.append((received.topic, received.payload))
    raise AssertionError("the connection closed before the marker")


def queued_messages(count: int) -> list[tuple[str, bytes]]:
    return [(TOPICS.device("h001", KINDS[i % len(KINDS)]), f"{i}".encode()) for i in range(count)]


async def publish_all(handle: BrokerHandle, messages: list[tuple[str, bytes]]) -> None:
    async with connect(endpoint(handle), "sess-pub", persistent=False) as pub:
        for topic, payload in messages:
            await pub.publish(topic, payload, qos=1)


async def leave_subscribed(handle: BrokerHandle, client_id: str, expiry_s: int) -> str:
    """Connect, subscribe to the member's topics and go away; returns the protocol spoken."""
    async with connect(endpoint(handle), client_id, session_expiry_s=expiry_s) as bus:
        await bus.subscribe([TOPICS.device("h001", kind) for kind in KINDS], qos=1)
        return bus.protocol


async def come_back(handle: BrokerHandle, client_id: str) -> list[tuple[str, bytes]]:
    """Reconnect under the same id and subscribe again, as agents do: a message
    published while the client was away arrives only if its session kept it."""
    async with connect(endpoint(handle), client_id) as bus:
        await bus.subscribe([*(TOPICS.device("h001", kind) for kind in KINDS), TOPICS.tick], qos=1)
        async with connect(endpoint(handle), "sess-marker", persistent=False) as pub:
            await pub.publish(TOPICS.tick, MARKER, qos=1)
        return await until_marker(bus)


def test_an_offline_member_gets_every_qos1_message_of_its_session_back(
        broker: BrokerHandle, broker_kind: str) -> None:
    messages = queued_messages(120)

    async def scenario() -> tuple[str, list[tuple[str, bytes]]]:
        protocol = await leave_subscribed(broker, "demo-h001", expiry_s=3600)
        await publish_all(broker, messages)
        return protocol, await come_back(broker, "demo-h001")

    protocol, got = run(scenario())
    assert protocol == (MQTT5 if broker_kind == "mosquitto" else MQTT311)
    assert got == messages  # all of them, in order


def test_a_session_that_expires_with_its_connection_keeps_nothing(broker: BrokerHandle) -> None:
    """Session expiry 0 (MQTT 5) or clean session (3.1.1): the broker forgets the client,
    its subscription and the messages published while it was away."""
    async def scenario() -> list[tuple[str, bytes]]:
        await leave_subscribed(broker, "demo-h002", expiry_s=0)
        await publish_all(broker, queued_messages(5))
        return await come_back(broker, "demo-h002")

    assert run(scenario()) == []


def test_only_mosquitto_keeps_sessions_and_queued_messages_across_its_restart(
        broker: BrokerHandle, broker_kind: str) -> None:
    """The broker is stopped (SIGTERM) and started again on the same port and working
    directory while the member is away. mosquitto saves its sessions and the queued
    messages and hands them over; the embedded broker starts empty (the agents'
    outboxes cover that)."""
    messages = queued_messages(30)

    async def before() -> None:
        await leave_subscribed(broker, "demo-h003", expiry_s=3600)
        await publish_all(broker, messages)

    run(before())
    broker.halt()
    assert broker.process.returncode == 0
    broker.start_again()
    got = run(come_back(broker, "demo-h003"))
    assert got == (messages if broker_kind == "mosquitto" else [])


def test_a_running_broker_cannot_be_started_again(broker: BrokerHandle) -> None:
    with pytest.raises(BrokerError, match="is still running"):
        broker.start_again()
