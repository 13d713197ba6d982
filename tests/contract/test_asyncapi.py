"""broker/asyncapi.yaml: current, complete, and every example a real message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.asyncapi import CHANNELS, EXAMPLE_SEED, document, render
from broker.codec import PayloadError, canonical_json
from broker.identity import Identity, Verifier
from broker.messages import MESSAGE_TYPES, decode, encode
from broker.topics import TYPE_OF_KIND, Topics, parse_topic

DOC_PATH = Path(__file__).parents[2] / "broker" / "asyncapi.yaml"
DOC = yaml.safe_load(DOC_PATH.read_text())
MESSAGES: dict[str, Any] = DOC["components"]["messages"]
EXAMPLES = [(kind, spec["payload"], ex["payload"])
            for kind, spec in MESSAGES.items() for ex in spec["examples"]]
SIGNERS = {"order": "h001", "report": "h001", "share": "h001"}  # the rest are signed by the coordinator


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """The JSON Schema subset the document uses; returns the problems found."""
    if "const" in schema:
        return [] if value == schema["const"] else [f"{path}: must be {schema['const']!r}"]
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    python = {"integer": int, "string": str, "boolean": bool, "array": list, "object": dict,
              "null": type(None)}
    if not any(type(value) is python[k] for k in kinds):
        return [f"{path}: must be {' or '.join(kinds)}"]
    problems: list[str] = []
    if type(value) is int and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        problems.append(f"{path}: out of range")
    if isinstance(value, str):
        if "enum" in schema and value not in schema["enum"]:
            problems.append(f"{path}: not one of {schema['enum']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{path}: does not match {schema['pattern']}")
        if len(value) > schema.get("maxLength", len(value)):
            problems.append(f"{path}: too long")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            problems.append(f"{path}: wrong number of items")
        for index, item in enumerate(value):
            problems += validate(item, schema["items"], f"{path}[{index}]")
    if isinstance(value, dict):
        problems += [f"{path}.{key}: missing" for key in schema["required"] if key not in value]
        for key, item in value.items():
            if key not in schema["properties"]:
                problems.append(f"{path}.{key}: not allowed")
            else:
                problems += validate(item, schema["properties"][key], f"{path}.{key}")
    return problems


def test_the_committed_document_is_the_generated_one() -> None:
    assert document() == DOC, "regenerate: python -m broker.asyncapi > broker/asyncapi.yaml"
    assert DOC_PATH.read_text() == render()
    assert DOC["asyncapi"] == "3.0.0"


def test_every_topic_and_every_message_type_is_documented() -> None:
    assert set(DOC["channels"]) == set(TYPE_OF_KIND)
    assert set(MESSAGES) == set(MESSAGE_TYPES)
    topics = Topics("demo")
    for channel in CHANNELS:
        address = channel.address.format(community="demo", device="h001", participant="h001", kind="load")
        parsed = parse_topic(address)
        assert parsed.kind == channel.name and TYPE_OF_KIND[parsed.kind] == channel.message.TYPE
        assert address.startswith(topics.root)
        spec = DOC["operations"][f"publish-{channel.name}"]
        assert spec["bindings"]["mqtt"]["qos"] in (0, 1)


@pytest.mark.parametrize(("kind", "schema", "payload"), EXAMPLES, ids=[k for k, _, _ in EXAMPLES])
def test_every_example_is_a_real_message(kind: str, schema: dict[str, Any], payload: dict[str, Any]) -> None:
    wire = canonical_json(payload)
    msg = decode(wire, MESSAGE_TYPES[kind])
    assert encode(msg) == wire  # canonical: it re-encodes byte for byte
    assert validate(payload, schema) == []
    if msg.SIGNED:
        signer = Identity.derived(SIGNERS.get(kind, "coordinator"), EXAMPLE_SEED)
        assert Verifier().verify(msg, signer.public_key_hex)


def test_a_broken_example_is_refused_by_codec_and_schema_alike() -> None:
    spec = MESSAGES["order"]
    payload = dict(spec["examples"][0]["payload"])
    payload["steps"] = [{"energy_wh": 0, "price_u_per_kwh": 300_000}]
    with pytest.raises(PayloadError, match=r"steps\[0\]\.energy_wh: must be >= 1"):
        decode(canonical_json(payload), MESSAGE_TYPES["order"])
    assert validate(payload, spec["payload"]) == ["$.steps[0].energy_wh: out of range"]
    del payload["side"]
    with pytest.raises(PayloadError, match="side: missing"):
        decode(canonical_json(payload), MESSAGE_TYPES["order"])
    assert "$.side: missing" in validate(payload, spec["payload"])
