"""An asyncio connection to the bus: publish gridmesh messages, receive raw ones.

A thin shell over aiomqtt (itself over paho-mqtt). It owns no policy: reconnecting,
island mode and outboxes belong to the agent and the coordinator, which catch
:class:`BusError` around a connection's lifetime.

Sessions speak MQTT 5 where the broker does (mosquitto): a persistent session starts
with clean start off and an explicit session expiry, so the broker keeps its
subscriptions and queued QoS 1 messages while the client is away. A broker that refuses
MQTT 5 (the embedded amqtt 0.12) gets MQTT 3.1.1 with clean session off instead: its
sessions last until the broker restarts (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from broker.credentials import Credentials, client_arguments
from broker.messages import Message, encode

BusError = aiomqtt.MqttError


class BusConnectError(aiomqtt.MqttError):
    """No session came about: the broker could not be reached, or it refused the client."""


# aiomqtt warns above 10 unacknowledged publishes; a coordinator answering a hundred
# members at a gate closure has that many in flight by design.
PENDING_WARNING = 10_000
SESSION_EXPIRY_S = 86_400  # a persistent session outlives its client by a day (MQTT 5)
MQTT5, MQTT311 = "5", "3.1.1"
_REFUSED_PROTOCOL = (1, 0x84)  # CONNACK: unacceptable protocol version (3.1.1 and 5)
# A connection that died unnoticed (it happens under uvloop when a broker restarts) is
# found out after at most twice this long without an answer to a ping.
KEEPALIVE_S = 10
CONNECT_TIMEOUT_S = 5.0  # for the broker's CONNACK (a connection lost before it goes unnoticed)


@dataclass(frozen=True)
class Endpoint:
    """Where a broker listens; parsed from ``HOST:PORT``. ``auth``: what this client
    presents to a locked-down broker (never part of the text form)."""

    host: str
    port: int
    auth: Credentials | None = field(default=None, repr=False)

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

    def __init__(self, client: aiomqtt.Client, protocol: str = MQTT5) -> None:
        self._client = client
        self.protocol = protocol  # the MQTT version the broker accepted: MQTT5 or MQTT311
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
        # aiomqtt leaves a publish waiting for its acknowledgement until the timeout when
        # the connection drops under it: give up as soon as the connection is lost.
        sending = asyncio.ensure_future(self._client.publish(topic, payload, qos=qos, retain=retain))
        lost = self._client._disconnected
        await asyncio.wait((sending, lost), return_when=asyncio.FIRST_COMPLETED)
        if not sending.done():
            sending.cancel()
            raise BusError("the connection was lost while publishing")
        try:
            sending.result()
        except BusError as exc:
            self._give_up(exc)
            raise

    def _give_up(self, exc: BusError) -> None:
        """A publish the broker never acknowledged: take the connection for dead (a socket
        can die unnoticed under the event loop), so that reading stops and the session
        ends and reconnects."""
        lost = self._client._disconnected
        if not lost.done():
            lost.set_exception(BusError(f"the broker stopped answering ({exc})"))

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
    session_expiry_s: int = SESSION_EXPIRY_S,
    will: tuple[str, Message] | None = None,
    keepalive_s: int = KEEPALIVE_S,
    timeout_s: float = 10.0,
) -> AsyncIterator[BusConnection]:
    """Open a session under a stable ``client_id``. ``persistent`` keeps subscriptions
    and queued QoS 1 messages while the client is away: for ``session_expiry_s`` under
    MQTT 5 (clean start off), until the broker restarts under MQTT 3.1.1 (clean session
    off). A session that is not persistent, or expires after 0 s, ends with its
    connection and starts clean. :class:`BusConnectError` if no session comes about."""
    protocol = MQTT5
    async with contextlib.AsyncExitStack() as stack:
        options = (endpoint, client_id, persistent, session_expiry_s, will, keepalive_s)
        try:
            try:
                client = await stack.enter_async_context(_client(protocol, *options))
            except MqttConnectError as exc:
                if _code(exc.rc) not in _REFUSED_PROTOCOL:
                    raise
                protocol = MQTT311
                client = await stack.enter_async_context(_client(protocol, *options))
        except BusError as exc:
            raise BusConnectError(str(exc)) from exc
        client.timeout = timeout_s
        stack.callback(_take_disconnect_error, client)
        _no_delay(client)
        yield BusConnection(client, protocol)


def _client(
    protocol: str, endpoint: Endpoint, client_id: str, persistent: bool, session_expiry_s: int,
    will: tuple[str, Message] | None, keepalive_s: int,
) -> aiomqtt.Client:
    will_arg = None
    if will is not None:
        will_arg = aiomqtt.Will(will[0], encode(will[1]), qos=1, retain=True)
    ends_with_connection = not persistent or session_expiry_s <= 0
    session: dict[str, Any] = {"clean_session": ends_with_connection}
    if protocol == MQTT5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if not ends_with_connection:
            properties.SessionExpiryInterval = session_expiry_s
        session = {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": ends_with_connection,
                   "properties": properties}
    client = aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        **client_arguments(endpoint.auth),
        identifier=client_id,
        will=will_arg,
        keepalive=keepalive_s,
        timeout=CONNECT_TIMEOUT_S,
        max_inflight_messages=100,
        **session,
    )
    client.pending_calls_threshold = PENDING_WARNING
    _forget_closed_sockets(client)
    return client


def _forget_closed_sockets(client: aiomqtt.Client) -> None:
    """Keep the event loop from watching a socket paho has closed.

    aiomqtt stops reading a closed socket but leaves its writer registered, and registers
    writers from a callback that may run after the socket closed. The next connection's
    socket often gets the same file descriptor; uvloop then keeps the stale watcher and the
    new connection is never read: it looks alive and hears nothing until its keepalive
    runs out. So: drop the writer with the reader, and register a reader or a writer only
    for the socket that is still the client's (aiomqtt's own, otherwise).
    """
    paho, loop = client._client, client._loop
    close = paho.on_socket_close
    assert close is not None  # aiomqtt's

    def on_socket_close(mqtt: Any, userdata: Any, sock: Any) -> None:
        if sock.fileno() > -1:
            loop.remove_writer(sock.fileno())
        close(mqtt, userdata, sock)

    def on_socket_register_write(mqtt: Any, userdata: Any, sock: Any) -> None:
        def writable() -> None:
            try:
                mqtt.loop_write()
            except Exception as exc:  # a broken connection: let the session see it
                if not client._disconnected.done():
                    client._disconnected.set_exception(exc)

        def register() -> None:
            if mqtt.socket() is sock and sock.fileno() > -1:
                _watch(client, loop.add_writer, sock.fileno(), writable)

        loop.call_soon_threadsafe(register)  # paho may call this from the connecting thread

    def on_socket_open(mqtt: Any, userdata: Any, sock: Any) -> None:
        def readable() -> None:
            try:
                while True:
                    mqtt.loop_read()
                    pending = getattr(sock, "pending", None)  # TLS: decoded bytes left over
                    if pending is None or pending() <= 0:
                        break
            except Exception as exc:  # a broken connection: let the session see it
                if not client._disconnected.done():
                    client._disconnected.set_exception(exc)

        def register() -> None:
            if mqtt.socket() is sock and sock.fileno() > -1:
                client._misc_task = loop.create_task(client._misc_loop())
                _watch(client, loop.add_reader, sock.fileno(), readable)

        loop.call_soon_threadsafe(register)  # paho calls this from the connecting thread

    paho.on_socket_open = on_socket_open
    paho.on_socket_close = on_socket_close
    paho.on_socket_register_write = on_socket_register_write


def _watch(client: aiomqtt.Client, add: Callable[..., None], fileno: int,
           callback: Callable[[], None]) -> None:
    """Have the loop watch ``fileno``; if it cannot (uvloop refuses a descriptor whose
    watcher it closed), the connection is deaf: end it now rather than at its keepalive."""
    try:
        add(fileno, callback)
    except (OSError, RuntimeError) as exc:
        if not client._disconnected.done():
            client._disconnected.set_exception(BusError(f"the event loop cannot watch the socket ({exc})"))


def _take_disconnect_error(client: aiomqtt.Client) -> None:
    """A lost connection's error has been raised where it mattered (reading, publishing);
    mark it taken, or asyncio reports it as never retrieved."""
    lost = client._disconnected
    if lost.done() and not lost.cancelled():
        lost.exception()


def _code(rc: int | ReasonCode | None) -> int | None:
    return int(rc.value) if isinstance(rc, ReasonCode) else rc


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
    """Run ``session`` again after each lost connection until ``finished``, backing off
    while attempts to connect fail (:class:`BusConnectError`) and from the shortest delay
    again once a session had come about."""
    attempt = 0
    while not finished.is_set():
        try:
            await session()
            attempt = 0
        except BusError as exc:
            if not isinstance(exc, BusConnectError):
                attempt = 0  # the session was up: this is a new outage
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            attempt += 1
            on_retry(exc, delay)
            await asyncio.sleep(delay)
