"""The coordinator's pen: writes the genesis block once, then the sealed block(s) of each slot.

A slot's transactions go into one block, or, beyond ``ledger.max_tx_per_block``, into
as many consecutive blocks of that slot as they need (split in canonical order). Each
block is mined at the difficulty :mod:`ledger.difficulty` requires and records how long
mining the block before it took.

Both operations are safe to repeat after a restart. :meth:`LedgerWriter.genesis`
returns the existing genesis header when it records the same community, and
:meth:`LedgerWriter.seal` returns the slot's headers when the chain already seals that
slot with the same transactions. Anything else that does not fit the chain is a
:class:`ChainError`, and nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from broker.community import Community, LedgerRules
from broker.identity import Identity
from broker.messages import BlockHeader
from broker.schema import SchemaError, from_dict
from ledger.blocks import GENESIS_SLOT, Block, build_block
from ledger.difficulty import required_bits, window_size
from ledger.errors import ChainError
from ledger.store import LedgerStore
from ledger.transactions import Transaction, canonical_order


class LedgerWriter:
    """Builds, mines, signs and appends blocks to ``store`` as ``signer`` (the coordinator)."""

    def __init__(
        self, store: LedgerStore, signer: Identity, rules: LedgerRules | int,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.store = store
        self.signer = signer
        self.rules = rules if isinstance(rules, LedgerRules) else LedgerRules(difficulty_bits=rules)
        self.last_sealed: tuple[Block, ...] = ()  # the blocks the last seal() wrote
        self._timer = timer
        head = store.head()
        self._last_mine_ms = head.prev_mine_ms if head is not None else 0  # after a restart: a guess

    @property
    def difficulty_bits(self) -> int:
        return self.rules.difficulty_bits

    def genesis(self, community_dict: dict[str, Any], t_s: int) -> BlockHeader:
        """Write the genesis block recording the community (or confirm the one already there)."""
        try:
            community = from_dict(Community, community_dict)
        except SchemaError as exc:
            raise ChainError(f"genesis community: {exc}") from None
        if community.coordinator_key != self.signer.public_key_hex:
            raise ChainError("genesis community: coordinator_key is not the signer's public key")
        if community.ledger != self.rules:
            raise ChainError(
                f"genesis community: its ledger rules {community.ledger} are not the writer's {self.rules}"
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

    def seal(self, slot: int, t_s: int, transactions: Sequence[Transaction]) -> tuple[BlockHeader, ...]:
        """Mine, sign and append the block(s) of ``slot`` holding ``transactions``."""
        head = self.store.head()
        if head is None:
            raise ChainError(f"{self.store.path} has no genesis block; write it before sealing slots")
        ordered = canonical_order(tuple(transactions))
        if head.height > 0 and head.slot == slot:
            sealed = self._slot_blocks(head)
            if tuple(tx for b in sealed for tx in b.transactions) == ordered:
                self.last_sealed = tuple(sealed)
                return tuple(b.header for b in sealed)
            raise ChainError(f"slot {slot} is already sealed with other transactions")
        cap = self.rules.max_tx_per_block
        chunks = [ordered[i:i + cap] for i in range(0, len(ordered), cap)] or [()]
        blocks: list[Block] = []
        prev = head
        for index, chunk in enumerate(chunks):
            block = self._mine(prev, slot, t_s, chunk, continuation=index > 0)
            self.store.append(block)
            blocks.append(block)
            prev = block.header
        self.last_sealed = tuple(blocks)
        return tuple(b.header for b in blocks)

    def _mine(self, prev: BlockHeader, slot: int, t_s: int, txs: Sequence[Transaction],
              continuation: bool) -> Block:
        window = list(self.store.headers(max(0, prev.height - window_size(self.rules) + 1), prev.height))
        bits = required_bits(self.rules, window, prev.height + 1)
        # Mining times are recorded only where the difficulty retargets on them: they depend on
        # the machine, and a chain mined at a fixed difficulty stays a function of its inputs.
        recorded = self._last_mine_ms if self.rules.target_mine_ms else 0
        started = self._timer()
        block = build_block(prev, slot, t_s, txs, bits, self.signer, recorded, continuation)
        self._last_mine_ms = round((self._timer() - started) * 1000)
        return block

    def _slot_blocks(self, head: BlockHeader) -> list[Block]:
        """The blocks that seal the head's slot, oldest first."""
        found: list[Block] = []
        height = head.height
        while height > 0:
            block = self.store.block(height)
            if block is None or block.header.slot != head.slot:
                break
            found.insert(0, block)
            height -= 1
        return found
