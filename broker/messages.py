"""Every message on the bus, as a frozen dataclass, and its wire form.

A payload is the canonical JSON of ``{"schema": 1, "type": TYPE, **fields}``. Messages
marked ``SIGNED`` carry ``sig``: the hex Ed25519 signature of the canonical JSON of the
same object without ``sig`` (see :mod:`broker.identity`). ``decode`` rejects anything
that does not fit, with a reason naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from broker.codec import PayloadError, canonical_json, parse_json_object
from broker.message_base import HASH as HASH
from broker.message_base import ID as ID
from broker.message_base import MAX_T_S as MAX_T_S
from broker.message_base import SCHEMA_VERSION as SCHEMA_VERSION
from broker.message_base import SIG as SIG
from broker.message_base import Message as Message
from broker.model_messages import ForecastShare, ModelRelease
from broker.schema import SchemaError, bounded, from_dict, to_dict

MAX_ENERGY_WH = 10_000_000
MAX_PRICE_U_PER_KWH = 100_000_000
MAX_POWER_W = 10_000_000
MAX_MONEY_U = 10**15
GRID = "grid"  # the grid as a party to trades


@dataclass(frozen=True)
class Status(Message):
    """A device's or service's presence; retained, and set to offline by the last will."""

    TYPE: ClassVar[str] = "status"
    device: str = bounded(pattern=ID)
    state: str = bounded(choices=("online", "offline", "island"))
    t_s: int = bounded(min=0, max=MAX_T_S)


@dataclass(frozen=True)
class Telemetry(Message):
    """A household's live readings; ``None`` where a reading is unavailable."""

    TYPE: ClassVar[str] = "telemetry"
    device: str = bounded(pattern=ID)
    t_s: int = bounded(min=0, max=MAX_T_S)
    grid_power_w: int | None = bounded(min=-MAX_POWER_W, max=MAX_POWER_W)
    pv_power_w: int | None = bounded(min=0, max=MAX_POWER_W)
    battery_power_w: int | None = bounded(min=-MAX_POWER_W, max=MAX_POWER_W)
    soc_pct: int | None = bounded(min=0, max=100)


@dataclass(frozen=True)
class Step:
    """One price-quantity step of an order."""

    energy_wh: int = bounded(min=1, max=MAX_ENERGY_WH)
    price_u_per_kwh: int = bounded(min=0, max=MAX_PRICE_U_PER_KWH)


@dataclass(frozen=True)
class Order(Message):
    """A bid (buy) or offer (sell) for one slot. Its id is derived, never sent."""

    TYPE: ClassVar[str] = "order"
    SIGNED: ClassVar[bool] = True
    device: str = bounded(pattern=ID)
    slot: int = bounded(min=0, max=MAX_T_S)
    seq: int = bounded(min=0, max=2**31)
    side: str = bounded(choices=("buy", "sell"))
    steps: tuple[Step, ...] = bounded(min_items=1, max_items=8)
    t_s: int = bounded(min=0, max=MAX_T_S)
    sig: str = bounded("", pattern=SIG)

    @property
    def order_id(self) -> str:
        return order_id(self.device, self.slot, self.seq)

    @property
    def energy_wh(self) -> int:
        return sum(step.energy_wh for step in self.steps)


def order_id(device: str, slot: int, seq: int) -> str:
    return f"{device}:{slot}:{seq}"


def report_id(device: str, slot: int) -> str:
    return f"{device}:{slot}:report"


@dataclass(frozen=True)
class Result(Message):
    """The coordinator's answer to one order, meter report or forecast share: accepted or rejected."""

    TYPE: ClassVar[str] = "result"
    SIGNED: ClassVar[bool] = True
    device: str = bounded(pattern=ID)
    ref: str = bounded(max_len=200)
    kind: str = bounded(choices=("order", "report", "payload", "share"))
    status: str = bounded(choices=("accepted", "rejected"))
    reason: str = bounded(max_len=500)
    t_s: int = bounded(min=0, max=MAX_T_S)
    sig: str = bounded("", pattern=SIG)


@dataclass(frozen=True)
class Trade:
    """Energy from ``seller`` to ``buyer`` in one slot at a price; either may be the grid."""

    buyer: str = bounded(pattern=ID)
    seller: str = bounded(pattern=ID)
    energy_wh: int = bounded(min=1, max=MAX_ENERGY_WH)
    price_u_per_kwh: int = bounded(min=0, max=MAX_PRICE_U_PER_KWH)


@dataclass(frozen=True)
class Clearing(Message):
    """The public outcome of one slot's auction."""

    TYPE: ClassVar[str] = "clearing"
    SIGNED: ClassVar[bool] = True
    slot: int = bounded(min=0, max=MAX_T_S)
    mechanism: str = bounded(max_len=40)
    price_u_per_kwh: int | None = bounded(min=0, max=MAX_PRICE_U_PER_KWH)
    buy_wh: int = bounded(min=0)
    sell_wh: int = bounded(min=0)
    p2p_wh: int = bounded(min=0)
    grid_import_wh: int = bounded(min=0)
    grid_export_wh: int = bounded(min=0)
    orders: int = bounded(min=0)
    trades: tuple[Trade, ...] = ()
    t_s: int = bounded(0, min=0, max=MAX_T_S)
    sig: str = bounded("", pattern=SIG)


@dataclass(frozen=True)
class Award(Message):
    """What one order won at clearing. ``amount_u`` is positive when the device pays."""

    TYPE: ClassVar[str] = "award"
    SIGNED: ClassVar[bool] = True
    device: str = bounded(pattern=ID)
    slot: int = bounded(min=0, max=MAX_T_S)
    order_id: str = bounded(max_len=200)
    side: str = bounded(choices=("buy", "sell"))
    status: str = bounded(choices=("filled", "partial", "unfilled"))
    ordered_wh: int = bounded(min=0, max=MAX_ENERGY_WH * 8)
    energy_wh: int = bounded(min=0, max=MAX_ENERGY_WH * 8)
    price_u_per_kwh: int | None = bounded(min=0, max=MAX_PRICE_U_PER_KWH)
    amount_u: int = bounded(min=-MAX_MONEY_U, max=MAX_MONEY_U)
    reason: str = bounded(max_len=500)
    t_s: int = bounded(min=0, max=MAX_T_S)
    curtail_wh: int = bounded(0, min=0, max=MAX_ENERGY_WH * 8)  # PV to hold back: feeder export limit
    p2p_wh: int = bounded(0, min=0, max=MAX_ENERGY_WH * 8)  # of energy_wh, traded with members
    sig: str = bounded("", pattern=SIG)

    @property
    def contracted_wh(self) -> int:
        """Net energy bought: positive for a buy, negative for a sell."""
        return self.energy_wh if self.side == "buy" else -self.energy_wh


@dataclass(frozen=True)
class MeterReport(Message):
    """Metered energy of one household over one slot, read from its meter's counters."""

    TYPE: ClassVar[str] = "report"
    SIGNED: ClassVar[bool] = True
    device: str = bounded(pattern=ID)
    slot: int = bounded(min=0, max=MAX_T_S)
    import_wh: int = bounded(min=0, max=MAX_ENERGY_WH)
    export_wh: int = bounded(min=0, max=MAX_ENERGY_WH)
    import_total_wh: int = bounded(min=0, max=2**53)
    export_total_wh: int = bounded(min=0, max=2**53)
    t_s: int = bounded(min=0, max=MAX_T_S)
    pv_wh: int | None = bounded(None, min=0, max=MAX_ENERGY_WH)  # the household's PV over the slot
    sig: str = bounded("", pattern=SIG)

    @property
    def report_id(self) -> str:
        return report_id(self.device, self.slot)

    @property
    def net_wh(self) -> int:
        return self.import_wh - self.export_wh


@dataclass(frozen=True)
class Settlement(Message):
    """One member's bill for one slot. Money is positive when the member pays."""

    TYPE: ClassVar[str] = "settlement"
    SIGNED: ClassVar[bool] = True
    device: str = bounded(pattern=ID)
    slot: int = bounded(min=0, max=MAX_T_S)
    contracted_wh: int = bounded(min=-MAX_ENERGY_WH * 8, max=MAX_ENERGY_WH * 8)
    metered_wh: int | None = bounded(min=-MAX_ENERGY_WH, max=MAX_ENERGY_WH)
    deviation_wh: int = bounded(min=-MAX_ENERGY_WH * 9, max=MAX_ENERGY_WH * 9)
    trade_u: int = bounded(min=-MAX_MONEY_U, max=MAX_MONEY_U)
    imbalance_u: int = bounded(min=-MAX_MONEY_U, max=MAX_MONEY_U)
    bill_u: int = bounded(min=-MAX_MONEY_U, max=MAX_MONEY_U)
    notrade_bill_u: int = bounded(min=-MAX_MONEY_U, max=MAX_MONEY_U)
    reason: str = bounded("", max_len=500)
    t_s: int = bounded(0, min=0, max=MAX_T_S)
    fees_u: int = bounded(0, min=-MAX_MONEY_U, max=MAX_MONEY_U)  # network charges and losses
    rules_u: int = bounded(0, min=-MAX_MONEY_U, max=MAX_MONEY_U)  # the community's penalties less bonuses
    sig: str = bounded("", pattern=SIG)


@dataclass(frozen=True)
class BlockHeader(Message):
    """A ledger block's header; its hash is the SHA-256 of its canonical JSON without ``sig``."""

    TYPE: ClassVar[str] = "block"
    SIGNED: ClassVar[bool] = True
    height: int = bounded(min=0)
    prev_hash: str = bounded(pattern=HASH)
    merkle_root: str = bounded(pattern=HASH)
    slot: int = bounded(min=-1, max=MAX_T_S)
    t_s: int = bounded(min=0, max=MAX_T_S)
    difficulty_bits: int = bounded(min=0, max=64)
    nonce: int = bounded(min=0, max=2**63)
    tx_count: int = bounded(min=0)
    prev_mine_ms: int = bounded(0, min=0, max=10**9)  # how long mining the previous block took
    sig: str = bounded("", pattern=SIG)


@dataclass(frozen=True)
class ClockTick(Message):
    """The virtual clock moved to ``t_s``; every participant acts, then acknowledges."""

    TYPE: ClassVar[str] = "tick"
    seq: int = bounded(min=0)
    t_s: int = bounded(min=0, max=MAX_T_S)
    last: bool = False


@dataclass(frozen=True)
class ClockAck(Message):
    """A participant has finished its work for tick ``seq``."""

    TYPE: ClassVar[str] = "ack"
    participant: str = bounded(pattern=ID)
    seq: int = bounded(min=0)


@dataclass(frozen=True)
class LedgerTx:
    """One ledger transaction as carried on the bus: its kind and its canonical JSON body."""

    kind: str = bounded(max_len=20)
    body: str = bounded(max_len=1_000_000)


@dataclass(frozen=True)
class BlockData(Message):
    """A whole block for replicas: the signed header and every transaction. Not signed
    itself: a replica checks the header's signature, proof of work and Merkle root."""

    TYPE: ClassVar[str] = "blockdata"
    header: BlockHeader
    transactions: tuple[LedgerTx, ...] = ()


@dataclass(frozen=True)
class MerkleStep:
    """One step of an inclusion proof: the sibling's hash and whether it sits on the left."""

    sibling: str = bounded(pattern=HASH)
    left: bool = False


@dataclass(frozen=True)
class ProvenTx:
    """One transaction's hash and its path to the block's Merkle root."""

    tx_kind: str = bounded(choices=("order", "award", "report", "settlement"))
    tx_hash: str = bounded(pattern=HASH)
    steps: tuple[MerkleStep, ...] = ()


@dataclass(frozen=True)
class InclusionProof(Message):
    """Where a member's transactions sit in one block. Not signed: each path is checked
    against the (signed) block header."""

    TYPE: ClassVar[str] = "proof"
    device: str = bounded(pattern=ID)
    height: int = bounded(min=0)
    items: tuple[ProvenTx, ...] = ()


FAULT_DEVICES = ("meter", "inverter", "battery")
FAULT_KINDS = ("timeout", "slow", "busy", "failure", "frozen", "counter_reset", "dropped", "none")


@dataclass(frozen=True)
class FaultCommand(Message):
    """Make a virtual device misbehave (``fault``), or behave again (``none``).

    A test bench's control, not market data: unsigned, obeyed only by simulated devices
    (a testbed, ``gridmesh simulate``); a locked-down broker grants the topic to the
    operator alone."""

    TYPE: ClassVar[str] = "fault"
    household: str = bounded(pattern=ID)
    device: str = bounded(choices=FAULT_DEVICES)
    fault: str = bounded(choices=FAULT_KINDS)
    t_s: int = bounded(0, min=0, max=MAX_T_S)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Status, Telemetry, Order, Result, Clearing, Award,
        MeterReport, Settlement, BlockHeader, ClockTick, ClockAck, FaultCommand, BlockData,
        InclusionProof, ForecastShare, ModelRelease,
    )
}
MAX_WIRE_BYTES = max(cls.MAX_BYTES for cls in MESSAGE_TYPES.values())


def message_dict(msg: Message) -> dict[str, Any]:
    """The wire form of ``msg`` as a dict (with ``schema`` and ``type``)."""
    return {"schema": SCHEMA_VERSION, "type": msg.TYPE, **to_dict(msg)}


def encode(msg: Message) -> bytes:
    """The canonical wire form; computed once per message object (messages are frozen)."""
    wire: bytes | None = msg.__dict__.get(_WIRE)
    if wire is None:
        wire = canonical_json(message_dict(msg))
        object.__setattr__(msg, _WIRE, wire)  # not a field: equality and hashing ignore it
    return wire


_WIRE = "_wire"


def signing_payload(msg: Message) -> bytes:
    """The bytes a signature covers: the canonical wire form without ``sig``."""
    data = message_dict(msg)
    data.pop("sig", None)
    return canonical_json(data)


def decode(data: bytes, expected: type[Message] | None = None) -> Message:
    """Parse and validate a payload; raise PayloadError with a reason naming the field.

    A payload may be as large as its type allows (``MAX_BYTES``: a forecast share is
    larger than the rest); without ``expected``, as large as the largest type allows."""
    limit = expected.MAX_BYTES if expected is not None else MAX_WIRE_BYTES
    msg = message_from_dict(parse_json_object(data, limit), expected)
    if len(data) > msg.MAX_BYTES:
        raise PayloadError(f"payload too large: {len(data)} bytes > {msg.MAX_BYTES} for {msg.TYPE} messages")
    return msg


def message_from_dict(obj: dict[str, Any], expected: type[Message] | None = None) -> Message:
    schema = obj.get("schema")
    if schema is None:
        raise PayloadError("schema: missing")
    if schema != SCHEMA_VERSION:
        raise PayloadError(f"schema: unknown version {schema!r} (this build speaks {SCHEMA_VERSION})")
    kind = obj.get("type")
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise PayloadError(f"type: unknown message type {kind!r}")
    if expected is not None and cls is not expected:
        raise PayloadError(f"type: expected {expected.TYPE!r} here, got {kind!r}")
    try:
        return from_dict(cls, obj, cls.TYPE, skip=("schema", "type"))
    except SchemaError as exc:
        raise PayloadError(str(exc)) from None
