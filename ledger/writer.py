"""The coordinator's pen: writes the genesis block once, then one sealed block per slot.

Both operations are safe to repeat after a restart. :meth:`LedgerWriter.genesis`
returns the existing genesis header when it records the same community, and
:meth:`LedgerWriter.seal` returns the head's header when that head already seals the
same slot with the same transactions. Anything else that does not fit the chain is a
:class:`ChainError`, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.community import Community
from broker.identity import Identity
from broker.messages import BlockHeader
from broker.schema import SchemaError, from_dict
from ledger.blocks import GENESIS_SLOT, build_block
from ledger.errors import ChainError
from ledger.store import LedgerStore
from ledger.transactions import Transaction, canonical_order


class LedgerWriter:
    """Builds, mines, signs and appends blocks to ``store`` as ``signer`` (the coordinator)."""

    def __init__(self, store: LedgerStore, signer: Identity, difficulty_bits: int) -> None:
        self.store = store
        self.signer = signer
        self.difficulty_bits = difficulty_bits

    def genesis(self, community_dict: dict[str, Any], t_s: int) -> BlockHeader:
        """Write the genesis block recording the community (or confirm the one already there)."""
        try:
            community = from_dict(Community, community_dict)
        except SchemaError as exc:
            raise ChainError(f"genesis community: {exc}") from None
        if community.coordinator_key != self.signer.public_key_hex:
            raise ChainError("genesis community: coordinator_key is not the signer's public key")
        if community.ledger.difficulty_bits != self.difficulty_bits:
            raise ChainError(
                f"genesis community: ledger.difficulty_bits is {community.ledger.difficulty_bits}, "
                f"the writer mines at {self.difficulty_bits}"
            )
        tx = Transaction.from_community(community)
        existing = self.store.block(0)
        if existing is not None:
            if existing.transactions != (tx,):
                raise ChainError(f"{self.store.path} already has a genesis block for a different community")
            return existing.header
        block = build_block(None, GENESIS_SLOT, t_s, [tx], self.difficulty_bits, self.signer)
        self.store.append(block)
        return block.header

    def seal(self, slot: int, t_s: int, transactions: Sequence[Transaction]) -> BlockHeader:
        """Mine, sign and append the block of ``slot`` holding ``transactions``."""
        head = self.store.head()
        if head is None:
            raise ChainError(f"{self.store.path} has no genesis block; write it before sealing slots")
        if head.height > 0 and head.slot == slot:
            sealed = self.store.block(head.height)
            if sealed is not None and sealed.transactions == canonical_order(tuple(transactions)):
                return head
            raise ChainError(f"slot {slot} is already sealed with other transactions")
        block = build_block(head, slot, t_s, transactions, self.difficulty_bits, self.signer)
        self.store.append(block)
        return block.header
