"""Blocks: a signed, mined header and the transactions its Merkle root covers.

One block per market slot. The genesis block (height 0, slot -1, previous hash all
zeros) holds the community's rules and keys; every later block links to the hash of
the one before. A block's transactions are kept in canonical order (by kind, then by
hash; see :func:`ledger.transactions.canonical_order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from broker.identity import Identity
from broker.messages import BlockData, BlockHeader, InclusionProof, LedgerTx, MerkleStep, ProvenTx
from ledger.errors import ChainError
from ledger.merkle import all_inclusion_proofs, merkle_root
from ledger.pow import header_digest, mine
from ledger.transactions import Transaction, canonical_order

GENESIS_PREV = "0" * 64
GENESIS_SLOT = -1


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    transactions: tuple[Transaction, ...]

    @property
    def hash(self) -> str:
        return header_hash(self.header)

    @property
    def height(self) -> int:
        return self.header.height


def header_hash(header: BlockHeader) -> str:
    """Hex SHA-256 of the header without its signature: the block's id and PoW hash."""
    return header_digest(header).hex()


def tx_root(transactions: Sequence[Transaction]) -> str:
    """The Merkle root over the transactions' hashes, in the order given."""
    return merkle_root([tx.tx_hash for tx in transactions])


def build_block(
    prev: BlockHeader | None,
    slot: int,
    t_s: int,
    transactions: Sequence[Transaction],
    difficulty_bits: int,
    signer: Identity,
    prev_mine_ms: int = 0,
    continuation: bool = False,
) -> Block:
    """Order, hash, mine and sign the block that follows ``prev`` (``None``: genesis).

    Raises ChainError if the slot does not fit: genesis has slot -1, and every later
    block's slot is greater than the previous block's, except a ``continuation`` that
    carries the overflow of the previous block's slot.
    """
    if prev is None:
        if slot != GENESIS_SLOT:
            raise ChainError(f"the genesis block has slot {GENESIS_SLOT}, got {slot}")
        height, prev_hash = 0, GENESIS_PREV
    else:
        if continuation and slot != prev.slot:
            raise ChainError(f"a continuation of slot {prev.slot} cannot have slot {slot}")
        if not continuation and slot <= prev.slot:
            raise ChainError(f"slot {slot} does not follow the head's slot {prev.slot}")
        height, prev_hash = prev.height + 1, header_hash(prev)
    ordered = canonical_order(tuple(transactions))
    header = BlockHeader(
        height=height,
        prev_hash=prev_hash,
        merkle_root=tx_root(ordered),
        slot=slot,
        t_s=t_s,
        difficulty_bits=difficulty_bits,
        nonce=0,
        tx_count=len(ordered),
        prev_mine_ms=prev_mine_ms,
    )
    return Block(signer.sign(mine(header)), ordered)


def block_data(block: Block) -> BlockData:
    """The block as it travels to replicas."""
    return BlockData(block.header, tuple(LedgerTx(tx.kind, tx.body_encoded.decode("utf-8"))
                                         for tx in block.transactions))


def from_block_data(data: BlockData) -> Block:
    """The block a replica received; ValueError (or TransactionError) if a body is not a
    canonical JSON object of integers."""
    import json

    def no_float(text: str) -> object:
        raise ValueError(f"number {text} is not an integer")

    transactions = []
    for index, tx in enumerate(data.transactions):
        body = json.loads(tx.body, parse_float=no_float, parse_constant=no_float)
        made = Transaction(tx.kind, body)
        if made.body_encoded.decode("utf-8") != tx.body:
            raise ValueError(f"transaction {index}: body is not in canonical form")
        transactions.append(made)
    return Block(data.header, tuple(transactions))


MEMBER_KINDS = ("order", "award", "report", "settlement")


def member_proofs(block: Block) -> list[InclusionProof]:
    """For each member, the inclusion proofs of the block's transactions that concern it."""
    paths = all_inclusion_proofs([tx.tx_hash for tx in block.transactions])
    by_device: dict[str, list[ProvenTx]] = {}
    for tx, path in zip(block.transactions, paths, strict=True):
        device = tx.body.get("device") if tx.kind in MEMBER_KINDS else None
        if isinstance(device, str):
            steps = tuple(MerkleStep(s.sibling, s.sibling_is_left) for s in path)
            by_device.setdefault(device, []).append(ProvenTx(tx.kind, tx.tx_hash, steps))
    return [InclusionProof(device, block.height, tuple(items)) for device, items in sorted(by_device.items())]
