"""Ledger transactions: what the market accepted, decided and settled, as signed records.

A transaction is a ``kind`` and a ``body``. For messages the body is the message's
wire form (:func:`broker.messages.message_dict`, signature included), so anyone can
check the signature of the device or coordinator that made it. The genesis block
holds one ``community`` transaction whose body is the community's rules, members
and public keys: the keys every later signature is checked against.

A transaction's hash is the SHA-256 of the canonical JSON of
``{"kind": kind, "body": body}``; integers only, as for everything hashed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from broker.codec import PayloadError, canonical_json
from broker.community import Community
from broker.messages import (
    Award,
    Clearing,
    Message,
    MeterReport,
    Order,
    Settlement,
    encode,
    message_dict,
    message_from_dict,
)
from broker.schema import SchemaError, from_dict, to_dict
from ledger.errors import TransactionError

COMMUNITY = "community"

DEVICE_SIGNED: dict[str, type[Message]] = {"order": Order, "report": MeterReport}
"""Kinds signed by the member named in the message's ``device`` field."""

COORDINATOR_SIGNED: dict[str, type[Message]] = {
    "clearing": Clearing,
    "award": Award,
    "settlement": Settlement,
}
"""Kinds signed by the community's coordinator."""

MESSAGE_KINDS: dict[str, type[Message]] = {**DEVICE_SIGNED, **COORDINATOR_SIGNED}

KIND_ORDER: tuple[str, ...] = (COMMUNITY, "order", "clearing", "award", "report", "settlement")
"""Every kind, in the order a block lists them (see :func:`canonical_order`)."""


@dataclass(frozen=True)
class Transaction:
    """One ledger record. Treat ``body`` as read-only: the hash is fixed at construction."""

    kind: str
    body: dict[str, Any]
    body_encoded: bytes = field(default=b"", repr=False, compare=False)
    """The canonical JSON of ``body``: what the store keeps (computed when not given;
    a message's wire form is exactly this)."""
    encoded: bytes = field(init=False, repr=False, compare=False)
    """The canonical JSON of ``{"body": ..., "kind": ...}``: what the hash covers."""

    def __post_init__(self) -> None:
        if self.kind not in KIND_ORDER:
            raise TransactionError(f"unknown transaction kind {self.kind!r}")
        if not isinstance(self.body, dict):
            raise TransactionError(f"{self.kind} body must be a JSON object")
        body = self.body_encoded
        if not body:
            try:
                body = canonical_json(self.body)
            except PayloadError as exc:
                raise TransactionError(f"{self.kind} body: {exc.reason}") from None
            object.__setattr__(self, "body_encoded", body)
        # Keys sorted, no spaces: exactly canonical_json({"kind": kind, "body": body}),
        # without encoding the body twice (kinds are plain ASCII names).
        object.__setattr__(self, "encoded", b'{"body":' + body + b',"kind":"' + self.kind.encode() + b'"}')

    def __hash__(self) -> int:
        return hash(self.encoded)

    @property
    def tx_hash(self) -> str:
        """Hex SHA-256 of the canonical encoding: the Merkle tree's leaf data."""
        return hashlib.sha256(self.encoded).hexdigest()

    @classmethod
    def from_message(cls, kind: str, msg: Message) -> Transaction:
        """Record a signed bus message; ``kind`` must match the message's type."""
        expected = MESSAGE_KINDS.get(kind)
        if expected is None:
            raise TransactionError(f"{kind!r} is not a message kind (known: {', '.join(MESSAGE_KINDS)})")
        if type(msg) is not expected:
            raise TransactionError(f"a {kind} transaction holds a {expected.__name__}, got {msg.TYPE}")
        return cls(kind, message_dict(msg), encode(msg))

    @classmethod
    def from_community(cls, community: Community) -> Transaction:
        """The genesis record of a community's rules, members and keys."""
        return cls(COMMUNITY, to_dict(community))

    def message(self) -> Message:
        """Decode the body back into its message; TransactionError says why it does not."""
        expected = MESSAGE_KINDS.get(self.kind)
        if expected is None:
            raise TransactionError(f"a {self.kind} transaction holds no message")
        try:
            return message_from_dict(self.body, expected)
        except PayloadError as exc:
            raise TransactionError(f"{self.kind} body: {exc.reason}") from None

    def community(self) -> Community:
        """Decode a ``community`` body; TransactionError says why it does not."""
        if self.kind != COMMUNITY:
            raise TransactionError(f"a {self.kind} transaction holds no community")
        try:
            return from_dict(Community, self.body)
        except SchemaError as exc:
            raise TransactionError(f"community body: {exc}") from None

    def label(self) -> str:
        """A short human name, e.g. ``order h001:5:0``; just the kind if the body does not decode."""
        try:
            if self.kind == COMMUNITY:
                return f"community {self.community().id}"
            return f"{self.kind} {message_label(self.message())}"
        except TransactionError:
            return self.kind


def message_label(msg: Message) -> str:
    """The id a person would use for a recorded message."""
    if isinstance(msg, Order):
        return msg.order_id
    if isinstance(msg, MeterReport):
        return msg.report_id
    if isinstance(msg, Award):
        return msg.order_id
    if isinstance(msg, Settlement):
        return f"{msg.device}:{msg.slot}"
    if isinstance(msg, Clearing):
        return f"slot {msg.slot}"
    return msg.TYPE


def sort_key(tx: Transaction) -> tuple[int, str]:
    """Where ``tx`` sits in a block: by kind (in :data:`KIND_ORDER`), then by hash."""
    return KIND_ORDER.index(tx.kind), tx.tx_hash


def canonical_order(transactions: list[Transaction] | tuple[Transaction, ...]) -> tuple[Transaction, ...]:
    """The transactions in the one order a block may hold them.

    A fixed order makes any reordering of stored transactions detectable and lets
    the audit name the first transaction out of place.
    """
    return tuple(sorted(transactions, key=sort_key))
