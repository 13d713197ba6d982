"""Watch the bus: every message decoded, one line each.

:func:`format_message` is pure; :func:`watch` subscribes with paho and prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from broker.codec import PayloadError
from broker.credentials import Credentials, client_arguments
from broker.messages import (
    MESSAGE_TYPES,
    Award,
    BlockHeader,
    Clearing,
    ClockAck,
    ClockTick,
    FaultCommand,
    Message,
    MeterReport,
    Order,
    Result,
    Settlement,
    Status,
    Telemetry,
    decode,
)
from broker.model_messages import ForecastShare, ModelRelease
from broker.topics import PREFIX, TYPE_OF_KIND, TopicError, parse_topic


def _fields(msg: Message) -> str:
    if isinstance(msg, Order):
        steps = " ".join(f"{s.energy_wh}Wh@{s.price_u_per_kwh}" for s in msg.steps)
        return f"{msg.order_id} {msg.side} {steps}"
    if isinstance(msg, Result):
        tail = f" ({msg.reason})" if msg.reason else ""
        return f"{msg.kind} {msg.ref or '-'} {msg.status}{tail}"
    if isinstance(msg, Award):
        return (f"{msg.order_id} {msg.side} {msg.status} {msg.energy_wh}/{msg.ordered_wh}Wh "
                f"@{msg.price_u_per_kwh} amount {msg.amount_u}u")
    if isinstance(msg, Clearing):
        return (f"slot {msg.slot} price {msg.price_u_per_kwh} orders {msg.orders} p2p {msg.p2p_wh}Wh "
                f"grid +{msg.grid_import_wh}/-{msg.grid_export_wh}Wh trades {len(msg.trades)}")
    if isinstance(msg, MeterReport):
        return f"{msg.device} slot {msg.slot} import {msg.import_wh}Wh export {msg.export_wh}Wh"
    if isinstance(msg, Settlement):
        return (f"{msg.device} slot {msg.slot} bill {msg.bill_u}u (no trade {msg.notrade_bill_u}u) "
                f"deviation {msg.deviation_wh}Wh")
    if isinstance(msg, BlockHeader):
        return f"height {msg.height} slot {msg.slot} txs {msg.tx_count} nonce {msg.nonce}"
    if isinstance(msg, Telemetry):
        return (f"{msg.device} grid {msg.grid_power_w}W pv {msg.pv_power_w}W "
                f"battery {msg.battery_power_w}W soc {msg.soc_pct}%")
    if isinstance(msg, Status):
        return f"{msg.device} {msg.state}"
    if isinstance(msg, ClockTick):
        return f"seq {msg.seq} t {msg.t_s}{' last' if msg.last else ''}"
    if isinstance(msg, ClockAck):
        return f"{msg.participant} seq {msg.seq}"
    if isinstance(msg, FaultCommand):
        return f"{msg.household} {msg.device} -> {'clear' if msg.fault == 'none' else msg.fault}"
    if isinstance(msg, ForecastShare):
        return f"{msg.share_id} {msg.kind} windows {msg.windows} on version {msg.base_version}"
    if isinstance(msg, ModelRelease):
        return (f"{msg.kind} version {msg.version} round {msg.round} from slot {msg.effective_slot} "
                f"members {len(msg.members)} windows {msg.windows} sha256 {msg.sha256[:12]}")
    return ""


def format_message(topic: str, msg: Message, t_s: float | None = None) -> str:
    """One line: local time, topic without the ``gm/v1/`` prefix, type and key fields."""
    stamp = time.strftime("%H:%M:%S", time.localtime(t_s if t_s is not None else time.time()))
    short = topic.removeprefix(f"{PREFIX}/")
    return f"{stamp} {short} {msg.TYPE} {_fields(msg)}"


def decode_by_topic(topic: str, payload: bytes) -> Message:
    """The message ``payload`` holds, of the type ``topic`` carries; PayloadError or
    TopicError says why it is none."""
    return decode(payload, MESSAGE_TYPES[TYPE_OF_KIND[parse_topic(topic).kind]])


def format_payload(topic: str, payload: bytes, t_s: float | None = None) -> str:
    """Decode by topic and format; a payload that does not decode gives a ``!!`` line."""
    try:
        return format_message(topic, decode_by_topic(topic, payload), t_s)
    except (PayloadError, TopicError) as exc:
        return f"!! {topic}: {exc}"


def paho_client(credentials: Credentials | None = None) -> mqtt.Client:
    """A paho client (callback API 2) that logs in with ``credentials`` when given: an
    observer's, for a locked-down broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    arguments = client_arguments(credentials)
    if "username" in arguments:
        client.username_pw_set(arguments["username"], arguments["password"])
    if "tls_context" in arguments:
        client.tls_set_context(arguments["tls_context"])
    return client


def watch(host: str, port: int, topic_filter: str, count: int | None,
          emit: Callable[[str], None] = print, credentials: Credentials | None = None) -> int:
    """Print messages until ``count`` have been seen (or forever); returns how many.
    ``credentials``: an observer's, for a locked-down broker."""
    seen = 0
    client = paho_client(credentials)

    def on_connect(c: mqtt.Client, _u: object, _f: object, _rc: object, _p: object = None) -> None:
        c.subscribe(topic_filter, qos=1)

    def on_message(c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        nonlocal seen
        if count is not None and seen >= count:
            return  # paho still hands over what arrived with the last one before disconnecting
        emit(format_payload(message.topic, bytes(message.payload)))
        seen += 1
        if count is not None and seen >= count:
            c.disconnect()

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, port)
    client.loop_forever()
    return seen
