"""A replica of the ledger: every block received is verified before it is stored.

:class:`Replica` is the logic (given blocks, it verifies and appends, or refuses with the
reason); ``gridmesh ledger follow`` (:mod:`ledger.follow`) feeds it from the bus. A block
is checked exactly as the audit checks it, against the replica's own copy of the chain:
its link to the head, proof of work at the difficulty the rules require, the header's
and every transaction's signature, and its Merkle root; a genesis block must record a
community signed by its own coordinator key (and, when the replica was told which key to
expect, that one). A block the replica already holds is ignored if it is the same and
refused if it differs; one that comes early (a gap) waits until the blocks before it
arrive.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from ledger.blocks import Block, header_hash
from ledger.difficulty import window_size
from ledger.store import LedgerStore
from ledger.verify import AuditFailure, verify_chain

MAX_WAITING = 1000  # blocks held while a gap before them is open


@dataclass
class Replica:
    store: LedgerStore
    coordinator_key: str = ""  # the key the genesis must name ("": the first genesis seen)
    counts: Counter[str] = field(default_factory=Counter)
    waiting: dict[int, Block] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        head = self.store.head()
        return -1 if head is None else head.height

    def receive(self, block: Block, now_s: int | None = None) -> list[str]:
        """Take in a block (and any waiting ones it lets through); returns the refusals."""
        refused: list[str] = []
        self.waiting[block.height] = block
        while self.height + 1 in self.waiting:
            problem = self._append(self.waiting.pop(self.height + 1), now_s)
            if problem:
                refused.append(problem)
        for height in [h for h in self.waiting if h <= self.height]:
            held = self.store.block(height)
            duplicate = self.waiting.pop(height)
            if held is not None and header_hash(held.header) == header_hash(duplicate.header):
                self.counts["duplicates"] += 1
            else:
                refused.append(f"block {height}: differs from the block {height} already held")
        if len(self.waiting) > MAX_WAITING:
            oldest = min(self.waiting)
            del self.waiting[oldest]
            refused.append(f"block {oldest}: dropped, {MAX_WAITING} blocks already wait for block "
                           f"{self.height + 1}")
        self.counts["refused"] += len(refused)
        self.refusals.extend(refused)
        return refused

    def _append(self, block: Block, now_s: int | None) -> str:
        now = int(time.time()) if now_s is None else now_s
        if block.height == 0:
            result = verify_chain([block], now_s=now)
            if isinstance(result, AuditFailure):
                return str(result)
            if self.coordinator_key and result.coordinator_key != self.coordinator_key:
                return (f"block 0: the genesis names coordinator key {result.coordinator_key[:12]}.., "
                        f"expected {self.coordinator_key[:12]}..")
        else:
            genesis = self.store.block(0)
            previous = self.store.block(block.height - 1)
            assert genesis is not None and previous is not None
            rules = genesis.transactions[0].community().ledger
            window = list(self.store.headers(max(0, block.height - window_size(rules)), block.height - 1))
            result = verify_chain([block], after=(genesis, previous, window), now_s=now)
            if isinstance(result, AuditFailure):
                return str(result)
        self.store.append(block)
        self.counts["stored"] += 1
        return ""
