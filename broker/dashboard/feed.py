"""A broker's messages for the dashboard: subscribed with paho, decoded by topic and
handed over from paho's network thread.

:class:`LiveFeed` connects like ``gridmesh monitor`` (with an observer's credentials
on a locked-down broker), subscribes again after every reconnect, and calls
``deliver`` with each decoded message (or :class:`~broker.dashboard.state.Undecodable`)
and ``connection`` with every change of link. Both run on paho's thread: the receiver
makes them thread-safe (the terminal view posts to its own loop; :func:`snapshot`
uses a queue). :func:`snapshot` listens for a while and returns the state.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt

from broker.codec import PayloadError
from broker.credentials import Credentials
from broker.dashboard.state import DashboardState, FeedItem, Undecodable, take
from broker.monitor import decode_by_topic, paho_client
from broker.topics import TopicError

Deliver = Callable[[FeedItem], None]
Connection = Callable[[str], None]  # what happened to the link


class LiveFeed:
    def __init__(self, host: str, port: int, topic_filter: str,
                 credentials: Credentials | None = None) -> None:
        self.host, self.port, self.topic_filter = host, port, topic_filter
        self.subscribed = threading.Event()  # set once the (first) subscription is granted
        self._deliver: Deliver = lambda _item: None
        self._connection: Connection = lambda _what: None
        self._client = paho_client(credentials)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> None:
        """Open the connection; OSError when the broker cannot be reached. Nothing is
        handed over before :meth:`start`."""
        self._client.connect(self.host, self.port)

    def start(self, deliver: Deliver, connection: Connection | None = None) -> None:
        """Start paho's network thread: messages go to ``deliver`` from now on."""
        self._deliver = deliver
        if connection is not None:
            self._connection = connection
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object,
                    _p: object = None) -> None:
        if getattr(reason, "is_failure", False):
            self._connection(f"refused: {reason}")
            return
        client.subscribe(self.topic_filter, qos=1)
        self._connection("connected")

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: object,
                       _p: object = None) -> None:
        self._connection(f"disconnected ({reason}), reconnecting")

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, _codes: object,
                      _p: object = None) -> None:
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            item: FeedItem = decode_by_topic(message.topic, bytes(message.payload))
        except (PayloadError, TopicError) as exc:
            item = Undecodable(message.topic, str(exc))
        self._deliver(item)


def snapshot(feed: LiveFeed, state: DashboardState, count: int | None, seconds: float) -> DashboardState:
    """Listen until ``count`` messages have come (every one when None) or ``seconds`` have
    passed, and return ``state`` with them applied. ``feed`` must be connected."""
    items: queue.SimpleQueue[FeedItem] = queue.SimpleQueue()
    enough = threading.Event()
    taken = 0

    def deliver(item: FeedItem) -> None:
        nonlocal taken
        if count is not None and taken >= count:
            return
        items.put(item)
        taken += 1
        if count is not None and taken >= count:
            enough.set()

    feed.start(deliver)
    try:
        enough.wait(seconds)
    finally:
        feed.stop()
    while not items.empty():
        state = take(state, items.get())
    return state
