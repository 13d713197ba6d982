"""An asyncio connection to the bus: publish gridmesh messages, receive raw ones.

A thin shell over aiomqtt (itself over paho-mqtt). It owns no policy: reconnecting,
island mode and outboxes belong to the agent and the coordinator, which catch
:class:`BusError` around a connection's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiomqtt

from broker.messages import Message, encode

BusError = aiomqtt.MqttError

# aiomqtt warns above 10 unacknowledged publishes; a coordinator answering a hundred
# members at a gate closure has that many in flight by design.
PENDING_WARNING = 10_000


@dataclass(frozen=True)
class Endpoint:
    """Where a broker listens; parsed from ``HOST:PORT``."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"address must be HOST:PORT, got {text!r}")
        return cls(host, int(port_text))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes


class BusConnection:
    """One open MQTT session.

    :meth:`messages` yields only messages whose topic matches a filter this connection
    subscribed to. A broker may deliver more: amqtt 0.12 sends a connecting client the
    retained messages matching *any* client's subscriptions.
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client
        self._filters: list[str] = []
        self._matched: dict[str, bool] = {}

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None:
        if filters:
            self._filters.extend(filters)
            self._matched.clear()
            await self._client.subscribe([(f, qos) for f in filters])

    def subscribed_to(self, topic: str) -> bool:
        known = self._matched.get(topic)
        if known is None:
            known = any(aiomqtt.Topic(topic).matches(f) for f in self._filters)
            self._matched[topic] = known
        return known

    async def publish(
        self, topic: str, msg: Message | bytes, qos: int = 1, retain: bool = False
    ) -> None:
        payload = msg if isinstance(msg, bytes) else encode(msg)
        await self._client.publish(topic, payload, qos=qos, retain=retain)

    def backlog(self) -> int:
        """Messages received and not yet taken from :meth:`messages`."""
        return len(self._client.messages)

    async def messages(self) -> AsyncIterator[Received]:
        async for message in self._client.messages:
            if not self.subscribed_to(message.topic.value):
                continue
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            yield Received(str(message.topic), data)


@contextlib.asynccontextmanager
async def connect(
    endpoint: Endpoint,
    client_id: str,
    *,
    persistent: bool = True,
    will: tuple[str, Message] | None = None,
    keepalive_s: int = 30,
    timeout_s: float = 10.0,
) -> AsyncIterator[BusConnection]:
    """Open a session; ``persistent`` keeps subscriptions and queued QoS 1 messages
    across reconnects (MQTT clean session off, a stable client id)."""
    will_arg = None
    if will is not None:
        will_arg = aiomqtt.Will(will[0], encode(will[1]), qos=1, retain=True)
    client = aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        identifier=client_id,
        clean_session=not persistent,
        will=will_arg,
        keepalive=keepalive_s,
        timeout=timeout_s,
        max_inflight_messages=100,
    )
    client.pending_calls_threshold = PENDING_WARNING
    async with client:
        _no_delay(client)
        yield BusConnection(client)


def _no_delay(client: aiomqtt.Client) -> None:
    """Send each MQTT packet at once: without TCP_NODELAY, Nagle's algorithm holds a
    small publish until the previous one is acknowledged (up to 40 ms on Linux)."""
    sock = client._client.socket()
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


async def keep_connected(
    session: Callable[[], Awaitable[None]],
    finished: asyncio.Event,
    on_retry: Callable[[Exception, float], None],
) -> None:
    """Run ``session`` again after each lost connection, backing off, until ``finished``."""
    attempt = 0
    while not finished.is_set():
        try:
            await session()
            attempt = 0
        except BusError as exc:
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            attempt += 1
            on_retry(exc, delay)
            await asyncio.sleep(delay)
