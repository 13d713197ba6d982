"""The audit: replay a chain and check everything that makes it trustworthy.

For every block, in order: the header fits its schema; heights run 0, 1, 2, ...;
each block links to the hash of the one before; slots increase (a block may repeat the
slot of a full block before it: the overflow of that slot, continuing its canonical
order); the declared transaction count holds and stays within the community's cap; the
difficulty is the one :mod:`ledger.difficulty` requires; the proof of work meets it;
the header is signed by the coordinator; every transaction decodes, is in canonical form
and is signed by whoever must sign it; the transactions are in canonical order (by
kind, then hash); and the Merkle root covers exactly these transactions.

The genesis block is the trust anchor: it must hold exactly one ``community``
transaction, whose members' keys check ``order`` and ``report`` signatures and whose
coordinator key checks headers and ``clearing``, ``award`` and ``settlement``
signatures. Whoever audits should compare that coordinator key (printed in the
summary) with the one they expect.

The audit stops at the first problem and names its block and transaction.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from broker.codec import canonical_json
from broker.community import Community
from broker.identity import Verifier
from broker.messages import BlockHeader, Message, message_dict
from broker.schema import SchemaError, check_bounds, to_dict
from ledger.blocks import GENESIS_PREV, GENESIS_SLOT, Block, header_hash, tx_root
from ledger.difficulty import required_bits, window_size
from ledger.errors import RecordError, TransactionError
from ledger.pow import header_digest, leading_zero_bits
from ledger.transactions import COMMUNITY, DEVICE_SIGNED, Transaction, sort_key

HASH_SHOWN = 12


@dataclass(frozen=True)
class AuditFailure:
    """The first problem found: which block, which transaction (if any), and why."""

    height: int
    tx_index: int | None
    tx_hash: str | None
    reason: str

    def __str__(self) -> str:
        return f"{place(self.height, self.tx_index, self.tx_hash)}: {self.reason}"


def place(height: int, tx_index: int | None, tx_hash: str | None) -> str:
    """``block H``, with ``, transaction I (hash..)`` where one is named."""
    where = f"block {height}"
    if tx_index is not None:
        where += f", transaction {tx_index}"
        if tx_hash:
            where += f" ({tx_hash[:HASH_SHOWN]}..)"
    return where


@dataclass(frozen=True)
class AuditSummary:
    """What a chain that passed the audit holds."""

    blocks: int
    transactions_by_kind: dict[str, int]
    members: int
    head_height: int
    head_hash: str
    first_slot: int | None
    """The slot of the first block after genesis; ``None`` if there is none."""
    last_slot: int | None
    community_id: str
    coordinator_key: str

    @property
    def transactions(self) -> int:
        return sum(self.transactions_by_kind.values())


class _Stop(Exception):
    """Carries the first failure out of the nested checks."""

    def __init__(self, failure: AuditFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _fail(height: int, reason: str, index: int | None = None, tx: Transaction | None = None) -> _Stop:
    return _Stop(AuditFailure(height, index, tx.tx_hash if tx is not None else None, reason))


@dataclass(frozen=True)
class _Anchor:
    """What the genesis block establishes for every later block."""

    community: Community
    member_keys: dict[str, str]


MAX_CLOCK_SKEW_S = 300  # how far ahead of the auditor's clock a block's time may be


def verify_chain(
    blocks: Iterable[Block], *, after: tuple[Block, Block, list[BlockHeader]] | None = None,
    now_s: int | None = None,
) -> AuditSummary | AuditFailure:
    """Audit ``blocks`` (from height 0); the summary, or the first failure.

    With ``after=(genesis, previous_block, window)`` it audits a segment that continues
    the chain after ``previous_block`` (``window``: the headers up to it that the
    difficulty depends on), trusting the genesis block's community, so that segments can
    be checked in parallel and joined with :func:`join_segments`.

    With ``now_s`` (the auditor's clock), a block whose time lies more than
    :data:`MAX_CLOCK_SKEW_S` after it is a block from the future, and fails.

    A :class:`RecordError` raised while ``blocks`` is read (a stored row that is not what
    was written, see :mod:`ledger.store`) is reported as a failure like any other.
    """
    verifier = Verifier()
    counts: Counter[str] = Counter()
    anchor: _Anchor | None = None
    prev: BlockHeader | None = None
    prev_block: Block | None = None
    window: collections.deque[BlockHeader] = collections.deque()
    first_slot: int | None = None
    try:
        if after is not None:
            anchor, prev_block = _check_genesis(after[0], verifier), after[1]
            prev = prev_block.header
            window = collections.deque(after[2], maxlen=window_size(anchor.community.ledger))
        for block in blocks:
            if now_s is not None and block.header.t_s > now_s + MAX_CLOCK_SKEW_S:
                raise _fail(block.height, f"a block from the future: its time {block.header.t_s} is "
                            f"after the audit's clock {now_s}")
            if anchor is None:
                anchor = _check_genesis(block, verifier)
                window = collections.deque(maxlen=window_size(anchor.community.ledger))
            else:
                assert prev is not None and prev_block is not None
                _check_block(block, prev_block, anchor, verifier, list(window))
                if first_slot is None:
                    first_slot = block.header.slot
            counts.update(tx.kind for tx in block.transactions)
            prev, prev_block = block.header, block
            window.append(block.header)
    except _Stop as stop:
        return stop.failure
    except RecordError as exc:
        return AuditFailure(exc.height, exc.tx_index, exc.tx_hash, exc.reason)
    if anchor is None or prev is None:
        return AuditFailure(0, None, None, "the ledger holds no blocks (no genesis block)")
    return AuditSummary(
        blocks=prev.height + 1,
        transactions_by_kind={kind: counts[kind] for kind in sorted(counts)},
        members=len(anchor.community.members),
        head_height=prev.height,
        head_hash=header_hash(prev),
        first_slot=first_slot,
        last_slot=prev.slot if prev.height > 0 else None,
        community_id=anchor.community.id,
        coordinator_key=anchor.community.coordinator_key,
    )


def join_segments(segments: Iterable[AuditSummary | AuditFailure]) -> AuditSummary | AuditFailure:
    """Join the audits of consecutive segments (the first from genesis): the first
    failure in chain order, or one summary of the whole chain."""
    joined: AuditSummary | None = None
    for segment in segments:
        if isinstance(segment, AuditFailure):
            return segment
        if joined is None:
            joined = segment
            continue
        counts = Counter(joined.transactions_by_kind) + Counter(segment.transactions_by_kind)
        joined = dataclasses.replace(
            segment,
            transactions_by_kind={kind: counts[kind] for kind in sorted(counts)},
            first_slot=joined.first_slot if joined.first_slot is not None else segment.first_slot,
        )
    if joined is None:
        return AuditFailure(0, None, None, "the ledger holds no blocks (no genesis block)")
    return joined


def _check_genesis(block: Block, verifier: Verifier) -> _Anchor:
    header, height = block.header, block.header.height
    _check_linkage(block, expected_height=0, prev_hash=GENESIS_PREV)
    if header.slot != GENESIS_SLOT:
        raise _fail(height, f"the genesis block must have slot {GENESIS_SLOT}, has {header.slot}")
    kinds = [tx.kind for tx in block.transactions]
    if kinds != [COMMUNITY]:
        raise _fail(height, f"the genesis block must hold exactly one community transaction, holds {kinds}")
    tx = block.transactions[0]
    try:
        community = tx.community()
    except TransactionError as exc:
        raise _fail(height, str(exc), 0, tx) from None
    if to_dict(community) != tx.body:
        raise _fail(height, "community body is not in canonical form", 0, tx)
    if not community.coordinator_key:
        raise _fail(height, "the community names no coordinator_key to check signatures with", 0, tx)
    anchor = _Anchor(community, {m.id: m.public_key for m in community.members})
    _check_sealing(block, anchor, verifier, community.ledger.difficulty_bits)
    _check_root(block)
    return anchor


def _check_block(block: Block, prev_block: Block, anchor: _Anchor, verifier: Verifier,
                 window: list[BlockHeader]) -> None:
    header, height, prev = block.header, block.header.height, prev_block.header
    rules = anchor.community.ledger
    _check_linkage(block, expected_height=prev.height + 1, prev_hash=header_hash(prev))
    if header.tx_count > rules.max_tx_per_block:
        raise _fail(height, f"{header.tx_count} transactions, over the community's cap of "
                    f"{rules.max_tx_per_block} per block")
    overflow = prev.height > 0 and prev.tx_count == rules.max_tx_per_block
    if header.slot < prev.slot or (header.slot == prev.slot and not overflow):
        raise _fail(height, f"slot {header.slot} does not follow the previous block's slot {prev.slot}")
    _check_sealing(block, anchor, verifier, required_bits(rules, window, height))
    for index, tx in enumerate(block.transactions):
        _check_transaction(height, index, tx, anchor, verifier)
    _check_order(block)
    if (header.slot == prev.slot and block.transactions and prev_block.transactions
            and sort_key(block.transactions[0]) <= sort_key(prev_block.transactions[-1])):
            raise _fail(height, "the overflow of a slot does not continue its canonical order", 0,
                        block.transactions[0])
    _check_root(block)


def _check_linkage(block: Block, expected_height: int, prev_hash: str) -> None:
    """Schema bounds, height, link to the previous block and the transaction count."""
    header, height = block.header, block.header.height
    try:
        check_bounds(header)
    except SchemaError as exc:
        raise _fail(height, f"header {exc}") from None
    if height != expected_height:
        raise _fail(height, f"height {height} where {expected_height} was expected")
    if header.prev_hash != prev_hash:
        raise _fail(height, f"prev_hash {header.prev_hash[:HASH_SHOWN]}.. does not match the previous "
                    f"block's hash {prev_hash[:HASH_SHOWN]}..")
    held, declared = len(block.transactions), header.tx_count
    if held < declared:
        raise _fail(height, f"transaction missing: the header declares {declared}, the block holds {held}",
                    held)
    if held > declared:
        raise _fail(height, f"extra transaction: the header declares {declared}, the block holds {held}",
                    declared, block.transactions[declared])


def _check_sealing(block: Block, anchor: _Anchor, verifier: Verifier, required: int) -> None:
    """Difficulty, proof of work and the coordinator's header signature."""
    header, height = block.header, block.header.height
    if header.difficulty_bits != required:
        raise _fail(height, f"difficulty {header.difficulty_bits} bits differs from the "
                    f"{required} the community's rules require")
    zeros = leading_zero_bits(header_digest(header))
    if zeros < required:
        raise _fail(height, f"proof of work fails: hash has {zeros} leading zero bits, needs {required}")
    if not verifier.verify(header, anchor.community.coordinator_key):
        raise _fail(height, "header signature does not verify with the coordinator key")


def _check_order(block: Block) -> None:
    """Canonical order, checked after every transaction's content so that an altered
    transaction is named for what is wrong with it, and a moved one for being out of place.
    """
    for index, (tx, following) in enumerate(itertools.pairwise(block.transactions)):
        if sort_key(tx) == sort_key(following):
            raise _fail(block.height, f"{tx.label()}: recorded twice in a row", index, tx)
        if sort_key(tx) > sort_key(following):
            raise _fail(block.height, f"{tx.label()}: out of canonical order (by kind, then hash)", index, tx)


def _check_root(block: Block) -> None:
    if tx_root(block.transactions) != block.header.merkle_root:
        raise _fail(block.header.height, "merkle root does not match the block's transactions")


def _check_transaction(height: int, index: int, tx: Transaction, anchor: _Anchor, verifier: Verifier) -> None:
    """Decodes, is canonical, and is signed by the member or the coordinator as its kind requires."""
    if tx.kind == COMMUNITY:
        raise _fail(height, "a community transaction outside the genesis block", index, tx)
    try:
        msg: Message = tx.message()
    except TransactionError as exc:
        raise _fail(height, str(exc), index, tx) from None
    if message_dict(msg) != tx.body:
        raise _fail(height, f"{tx.label()}: body is not in canonical form", index, tx)
    if tx.kind in DEVICE_SIGNED:
        device = str(getattr(msg, "device", ""))
        key = anchor.member_keys.get(device)
        if key is None:
            raise _fail(height, f"{tx.label()}: device {device!r} is not a member of the community",
                        index, tx)
    else:
        key = anchor.community.coordinator_key
    # The body equals the message's wire form, so its canonical JSON without ``sig`` is
    # exactly the signing payload: no need to rebuild it from the message.
    unsigned = canonical_json({k: v for k, v in tx.body.items() if k != "sig"})
    if not verifier.verify_bytes(unsigned, str(tx.body.get("sig", "")), key):
        raise _fail(height, f"{tx.label()}: bad signature", index, tx)
