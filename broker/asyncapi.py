"""The AsyncAPI 3 document of the bus, built from the contract itself.

Channels come from :mod:`broker.topics`, payload schemas from the message dataclasses
and their bounds, examples from real messages signed with derived demo keys. The
committed ``broker/asyncapi.yaml`` is this module's output; a test checks that it is
current and that every example decodes with the codec.

    python -m broker.asyncapi > broker/asyncapi.yaml
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import types
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np
import yaml

from broker.identity import Identity
from broker.messages import (
    GRID,
    SCHEMA_VERSION,
    Award,
    BlockData,
    BlockHeader,
    Clearing,
    ClockAck,
    ClockTick,
    FaultCommand,
    InclusionProof,
    LedgerTx,
    MerkleStep,
    Message,
    MeterReport,
    Order,
    ProvenTx,
    Result,
    Settlement,
    Status,
    Step,
    Telemetry,
    Trade,
    encode,
    message_dict,
)
from broker.model_messages import ForecastShare, ModelRelease, model_text, pack_matrix
from broker.schema import Bounds

EXAMPLE_SEED = 1  # demo keys: Identity.derived(name, EXAMPLE_SEED)
SLOT = 1_627_969  # 2016-06-05 00:00 UTC, the testbed's default first slot
T_S = SLOT * 900


@dataclass(frozen=True)
class Channel:
    name: str
    address: str
    message: type[Message]
    publisher: str
    receiver: str
    qos: int
    retain: bool
    description: str


CHANNELS = (
    Channel("status", "gm/v1/{community}/dev/{device}/status", Status, "every device and service",
            "monitors, the clock master", 1, True,
            "Presence, retained; the last will sets it to offline."),
    Channel("telemetry", "gm/v1/{community}/dev/{device}/telemetry", Telemetry, "edge agent",
            "monitors", 0, False, "Live readings once per slot; a missing reading is null."),
    Channel("order", "gm/v1/{community}/dev/{device}/order", Order, "edge agent", "coordinator", 1,
            False, "A signed bid or offer for one slot, sent before its gate closes."),
    Channel("report", "gm/v1/{community}/dev/{device}/report", MeterReport, "edge agent",
            "coordinator", 1, False, "Signed metered energy of the slot that just ended."),
    Channel("result", "gm/v1/{community}/dev/{device}/result", Result, "coordinator", "edge agent", 1,
            False, "The answer to every order, and to a meter report or payload that was refused, "
            "with the reason."),
    Channel("award", "gm/v1/{community}/dev/{device}/award", Award, "coordinator", "edge agent", 1,
            False, "What one order won at gate closure, published even when nothing cleared."),
    Channel("settlement", "gm/v1/{community}/dev/{device}/settlement", Settlement, "coordinator",
            "edge agent", 1, False, "The member's bill for a slot, metered against contracted."),
    Channel("proof", "gm/v1/{community}/dev/{device}/proof", InclusionProof, "coordinator", "edge agent",
            1, False, "The Merkle inclusion proof of each of the member's orders, reports, awards and "
            "settlements, to check against the signed block header."),
    Channel("clearing", "gm/v1/{community}/market/clearing", Clearing, "coordinator", "everyone", 1,
            False, "The public outcome of a slot's auction: price, volumes, trades."),
    Channel("block", "gm/v1/{community}/ledger/block", BlockHeader, "coordinator", "members, replicas",
            1, False, "The header of each mined ledger block."),
    Channel("blockdata", "gm/v1/{community}/ledger/data", BlockData, "coordinator", "replicas", 1, False,
            "Each whole block (header and transactions as canonical JSON) for replicas to verify "
            "and store."),
    Channel("tick", "gm/v1/{community}/clock/tick", ClockTick, "clock master", "every participant", 1,
            False, "Virtual clock: a slot start (or the last tick); every participant acknowledges."),
    Channel("gate", "gm/v1/{community}/clock/gate", ClockTick, "clock master", "coordinator", 1, False,
            "Virtual clock: a gate closure, for the market alone."),
    Channel("ack", "gm/v1/{community}/clock/ack/{participant}", ClockAck, "every participant",
            "clock master", 1, False, "A participant has finished its work for a tick."),
    Channel("fault", "gm/v1/{community}/sim/fault", FaultCommand, "operator of a test bench "
            "(gridmesh fault)", "simulated devices (testbed, gridmesh simulate)", 1, False,
            "Make a virtual device misbehave, or behave again; unsigned, for test benches only."),
    Channel("share", "gm/v1/{community}/dev/{device}/share", ForecastShare, "edge agent (households)",
            "coordinator", 1, False, "A federated round's statistics of one forecaster over the member's "
            "own history (X^T X upper triangle and X^T Y: float64 little-endian row-major, deflated, "
            "base64), sent at the round's first slot start; answered with a result."),
    Channel("model", "gm/v1/{community}/model/{kind}", ModelRelease, "coordinator", "edge agents", 1, True,
            "A forecaster pooled from a round's shares, signed, retained: the ONNX file in base64 with "
            "its SHA-256; agents switch to it from effective_slot."),
)

PARAMETERS = {
    "community": "The community id, e.g. demo.",
    "device": "A member device id (its Ed25519 key is in the community registry).",
    "participant": "A device id or the coordinator id.",
    "kind": "A forecaster: load or pv.",
}


def examples() -> dict[str, Message]:
    """One real example per message type, signed where the type is signed."""
    h001 = Identity.derived("h001", EXAMPLE_SEED)
    boss = Identity.derived("coordinator", EXAMPLE_SEED)
    order = h001.sign(Order("h001", SLOT + 1, 0, "buy", (Step(420, 300_000), Step(200, 150_000)), T_S))
    # Statistics of two windows of a one-input model (real shares are 100 or 196 rows by 96),
    # and a model shortened to a few bytes (a real one is 39 or 76 KB).
    xtx, xty = np.array([[2.5, 2.0], [2.0, 2.0]]), np.array([[1.25], [3.0]])
    model = b"ONNX model bytes, shortened for this example"
    share = ForecastShare("h001", 16_958, "load", 2, 1, 2, 1, pack_matrix(xtx, upper=True), pack_matrix(xty),
                          T_S)
    return {
        "status": Status("h001", "online", T_S),
        "telemetry": Telemetry("h001", T_S, 850, 1200, -300, 64),
        "order": order,
        "report": h001.sign(MeterReport("h001", SLOT - 1, 310, 0, 51_310, 2_040, T_S)),
        "result": boss.sign(Result("h001", order.order_id, "order", "accepted", "", T_S + 1)),
        "award": boss.sign(Award("h001", SLOT + 1, order.order_id, "buy", "filled", 620, 620,
                                 190_000, 117_800, "", T_S + 600)),
        "settlement": boss.sign(Settlement("h001", SLOT - 1, 400, 310, -90, 76_000, -7_200, 68_800,
                                           93_000, "", T_S + 600)),
        "clearing": boss.sign(Clearing(
            SLOT + 1, "pay_as_bid", 211_290, 620, 620, 500, 120, 0, 2,
            (Trade("h001", "h003", 500, 190_000), Trade("h001", GRID, 120, 300_000)), T_S + 600)),
        "block": boss.sign(BlockHeader(5, "00" * 32, "ab" * 32, SLOT + 1, T_S + 600, 12, 1_024, 4)),
        "tick": ClockTick(12, T_S, False),
        "ack": ClockAck("h001", 12),
        "fault": FaultCommand("h001", "meter", "timeout", T_S),
        "proof": InclusionProof("h001", 5, (ProvenTx("order", "3f" * 32, (
            MerkleStep("ab" * 32, True), MerkleStep("cd" * 32, False))),)),
        "blockdata": BlockData(
            boss.sign(BlockHeader(5, "00" * 32, "ab" * 32, SLOT + 1, T_S + 600, 12, 1_024, 1)),
            (LedgerTx("order", encode(order).decode()),)),
        "share": h001.sign(share),
        "release": boss.sign(ModelRelease("load", 2, 16_958, SLOT + 2, 1, 3000, ("h001", "h002", "h003"),
                                          1443, hashlib.sha256(model).hexdigest(), model_text(model),
                                          T_S + 900)),
    }


# -- JSON Schema from dataclasses --------------------------------------------------


def _bounded(schema: dict[str, Any], bounds: Bounds | None) -> dict[str, Any]:
    if bounds is None:
        return schema
    for key, value in (("minimum", bounds.min), ("maximum", bounds.max), ("enum", bounds.choices),
                       ("maxLength", bounds.max_len), ("minItems", bounds.min_items),
                       ("maxItems", bounds.max_items)):
        if value is not None:
            schema[key] = list(value) if isinstance(value, tuple) else value
    if bounds.pattern is not None:
        schema["pattern"] = f"^{bounds.pattern}$"
    return schema


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = next(a for a in get_args(tp) if a is not type(None))
        schema = _type_schema(inner)
        schema["type"] = [schema["type"], "null"]
        return schema
    if origin is tuple:
        return {"type": "array", "items": _type_schema(get_args(tp)[0])}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return object_schema(tp)
    return {"type": {int: "integer", str: "string", bool: "boolean"}[tp]}


def object_schema(cls: type, envelope: dict[str, Any] | None = None) -> dict[str, Any]:
    hints = get_type_hints(cls)
    properties: dict[str, Any] = dict(envelope or {})
    required = list(properties)
    for fld in dataclasses.fields(cls):
        properties[fld.name] = _bounded(_type_schema(hints[fld.name]), fld.metadata.get("bounds"))
        if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
            required.append(fld.name)
    return {"type": "object", "required": required, "properties": properties,
            "additionalProperties": False}


def message_schema(cls: type[Message]) -> dict[str, Any]:
    envelope = {"schema": {"const": SCHEMA_VERSION}, "type": {"const": cls.TYPE}}
    schema = object_schema(cls, envelope)
    if cls.SIGNED:
        schema["properties"]["sig"]["description"] = (
            "hex Ed25519 signature of the canonical JSON of this object without sig")
    return schema


# -- the document ------------------------------------------------------------------


def document() -> dict[str, Any]:
    samples = examples()
    messages: dict[str, Any] = {}
    for kind, msg in samples.items():
        cls = type(msg)
        messages[kind] = {
            "name": cls.__name__,
            "summary": (cls.__doc__ or "").strip().splitlines()[0],
            "payload": message_schema(cls),
            "examples": [{"name": f"{kind}-example", "payload": message_dict(msg)}],
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for ch in CHANNELS:
        message_key = ch.message.TYPE
        channels[ch.name] = {
            "address": ch.address,
            "description": ch.description,
            "parameters": {p: {"description": PARAMETERS[p]} for p in PARAMETERS
                           if "{" + p + "}" in ch.address},
            "messages": {message_key: {"$ref": f"#/components/messages/{message_key}"}},
        }
        operations[f"publish-{ch.name}"] = {
            "action": "send",
            "summary": f"Published by the {ch.publisher}; read by the {ch.receiver}.",
            "channel": {"$ref": f"#/channels/{ch.name}"},
            "bindings": {"mqtt": {"qos": ch.qos, "retain": ch.retain, "bindingVersion": "0.2.0"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "gridmesh bus",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": (
                "MQTT topics and payloads of a gridmesh community. Payloads are canonical "
                "JSON (UTF-8, sorted keys, no spaces, integers only) carrying schema and "
                "type; energy in Wh, power in W, time in Unix seconds, money in micro-units. "
                "Generated from broker/messages.py and broker/topics.py by "
                "`python -m broker.asyncapi`."),
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:1883", "protocol": "mqtt",
                              "description": "a broker started by `gridmesh broker`"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> str:
    return yaml.safe_dump(document(), sort_keys=False, width=100, allow_unicode=True)


if __name__ == "__main__":
    sys.stdout.write(render())
