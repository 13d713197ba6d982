"""Topic names under ``gm/v1/{community}/``, built and parsed in one place.

    gm/v1/{c}/dev/{device}/{kind}   kind: status telemetry order report result award settlement proof
                                    share
    gm/v1/{c}/market/clearing       public clearing results
    gm/v1/{c}/ledger/block          block headers
    gm/v1/{c}/ledger/data           whole blocks, for replicas
    gm/v1/{c}/model/{kind}          forecaster releases (kind: load, pv), retained
    gm/v1/{c}/clock/tick            virtual clock ticks for everyone (slot starts, the last)
    gm/v1/{c}/clock/gate            virtual clock ticks for the market alone (gate closures)
    gm/v1/{c}/clock/ack/{name}      acknowledgements of ticks
    gm/v1/{c}/sim/fault             fault commands for simulated devices (test benches)

A device's own topics end in its id, so a broker ACL can grant ``dev/{id}/order`` to
that device alone.

Home Assistant's MQTT discovery lives under its own prefix (``homeassistant`` unless set),
outside the community's tree, with the device id as the node id:

    {prefix}/sensor/{device}/{object}/config    a sensor's discovery config, retained
    {prefix}/sensor/{device}/state              the household's values for them, retained
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from broker.model_messages import MODEL_KINDS

PREFIX = "gm/v1"
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEVICE_KINDS = ("status", "telemetry", "order", "report", "result", "award", "settlement", "proof",
                "share")
# Which message type each topic carries: the monitor decodes by topic.
TYPE_OF_KIND = {
    "status": "status", "telemetry": "telemetry", "order": "order", "report": "report",
    "result": "result", "award": "award", "settlement": "settlement", "proof": "proof",
    "clearing": "clearing", "block": "block", "tick": "tick", "gate": "tick", "ack": "ack",
    "fault": "fault", "blockdata": "blockdata", "share": "share", "model": "release",
}


class TopicError(ValueError):
    pass


def _name(value: str, what: str) -> str:
    if not NAME.fullmatch(value):
        raise TopicError(f"{what} {value!r} must match {NAME.pattern}")
    return value


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise TopicError(f"unknown {what} {value!r}")
    return value


@dataclass(frozen=True)
class Topics:
    """Topic builders for one community."""

    community: str

    def __post_init__(self) -> None:
        _name(self.community, "community")

    @property
    def root(self) -> str:
        return f"{PREFIX}/{self.community}"

    def device(self, device: str, kind: str) -> str:
        return f"{self.root}/dev/{_name(device, 'device')}/{_one_of(kind, DEVICE_KINDS, 'device topic kind')}"

    def all_devices(self, kind: str) -> str:
        """Filter for ``kind`` from every device, e.g. all orders."""
        return f"{self.root}/dev/+/{_one_of(kind, DEVICE_KINDS, 'device topic kind')}"

    @property
    def clearing(self) -> str:
        return f"{self.root}/market/clearing"

    @property
    def block(self) -> str:
        return f"{self.root}/ledger/block"

    @property
    def block_data(self) -> str:
        return f"{self.root}/ledger/data"

    def model(self, kind: str) -> str:
        """Where the coordinator releases the ``kind`` forecaster (retained)."""
        return f"{self.root}/model/{_one_of(kind, MODEL_KINDS, 'model kind')}"

    @property
    def models(self) -> str:
        """Filter for every forecaster release."""
        return f"{self.root}/model/+"

    @property
    def tick(self) -> str:
        return f"{self.root}/clock/tick"

    @property
    def gate(self) -> str:
        return f"{self.root}/clock/gate"

    def ack(self, participant: str) -> str:
        return f"{self.root}/clock/ack/{_name(participant, 'participant')}"

    @property
    def all_acks(self) -> str:
        return f"{self.root}/clock/ack/+"

    @property
    def sim_fault(self) -> str:
        return f"{self.root}/sim/fault"

    @property
    def everything(self) -> str:
        return f"{self.root}/#"


@dataclass(frozen=True)
class ParsedTopic:
    community: str
    kind: str  # one of TYPE_OF_KIND's keys
    name: str | None  # the device, participant or model kind, where the topic names one


def parse_topic(topic: str) -> ParsedTopic:
    """Split a gridmesh topic into community, kind and device; TopicError if it is not one."""
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise TopicError(f"not a {PREFIX} topic: {topic!r}")
    community = parts[2]
    if not NAME.fullmatch(community):
        raise TopicError(f"bad community in {topic!r}")
    rest = parts[3:]
    if rest[0] == "dev" and len(rest) == 3 and NAME.fullmatch(rest[1]) and rest[2] in DEVICE_KINDS:
        return ParsedTopic(community, rest[2], rest[1])
    if rest == ["market", "clearing"]:
        return ParsedTopic(community, "clearing", None)
    if rest == ["ledger", "block"]:
        return ParsedTopic(community, "block", None)
    if rest == ["ledger", "data"]:
        return ParsedTopic(community, "blockdata", None)
    if len(rest) == 2 and rest[0] == "model" and rest[1] in MODEL_KINDS:
        return ParsedTopic(community, "model", rest[1])
    if rest == ["clock", "tick"]:
        return ParsedTopic(community, "tick", None)
    if rest == ["clock", "gate"]:
        return ParsedTopic(community, "gate", None)
    if rest == ["sim", "fault"]:
        return ParsedTopic(community, "fault", None)
    if len(rest) == 3 and rest[:2] == ["clock", "ack"] and NAME.fullmatch(rest[2]):
        return ParsedTopic(community, "ack", rest[2])
    raise TopicError(f"unknown topic {topic!r}")


@dataclass(frozen=True)
class HomeAssistantTopics:
    """Home Assistant MQTT discovery topics under ``prefix`` (edge/home_assistant.py)."""

    prefix: str = "homeassistant"

    def __post_init__(self) -> None:
        _name(self.prefix, "discovery prefix")

    def config(self, device: str, object_id: str) -> str:
        return f"{self.prefix}/sensor/{_name(device, 'device')}/{_name(object_id, 'object id')}/config"

    def state(self, device: str) -> str:
        return f"{self.prefix}/sensor/{_name(device, 'device')}/state"

    def node(self, device: str) -> str:
        """Filter for everything ``device`` publishes for Home Assistant."""
        return f"{self.prefix}/sensor/{device}/#"

    @property
    def everything(self) -> str:
        return f"{self.prefix}/#"
