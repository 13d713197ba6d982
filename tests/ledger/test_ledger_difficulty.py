"""The chain's own rules: a difficulty that retargets towards a mining time, and a cap on
transactions per block whose overflow continues in the next block of the same slot."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ledger_chain import COORDINATOR, FIRST_SLOT, GENESIS_T_S, gate_s, make_community, market_blocks

from broker.community import LedgerRules
from broker.messages import BlockHeader
from broker.schema import to_dict
from ledger.blocks import Block, build_block
from ledger.difficulty import required_bits
from ledger.store import LedgerStore
from ledger.verify import AuditFailure, AuditSummary, verify_chain
from ledger.writer import LedgerWriter

RETARGET = LedgerRules(difficulty_bits=6, target_mine_ms=10, retarget_every=4, min_difficulty_bits=2,
                       max_difficulty_bits=12)


def header(height: int, bits: int, mine_ms: int) -> BlockHeader:
    return BlockHeader(height, "00" * 32, "ab" * 32, FIRST_SLOT + height, 0, bits, 0, 0, mine_ms)


def test_a_fixed_difficulty_never_moves() -> None:
    rules = LedgerRules(difficulty_bits=9)
    assert required_bits(rules, [header(i, 9, 5000) for i in range(1, 40)], 40) == 9


def test_the_difficulty_retargets_at_window_boundaries_by_at_most_two_bits() -> None:
    slow = [header(i, 6, 40) for i in range(1, 5)]  # four times the target: two bits easier
    assert required_bits(RETARGET, slow, 5) == 4
    assert required_bits(RETARGET, slow[:3], 4) == 6  # not a boundary: unchanged
    fast = [header(i, 6, 1) for i in range(1, 5)]  # ten times faster: +3.3 bits, capped at +2
    assert required_bits(RETARGET, fast, 5) == 8
    at_floor = [header(i, 2, 1000) for i in range(1, 5)]
    assert required_bits(RETARGET, at_floor, 5) == 2  # kept at the community's minimum
    assert required_bits(RETARGET, [header(i, 12, 0) for i in range(1, 5)], 5) == 12  # and maximum


class Ticks:
    """A mining clock: every block takes ``ms`` milliseconds."""

    def __init__(self, ms: float) -> None:
        self.ms, self.now = ms, 0.0
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:
            self.now += self.ms / 1000
        return self.now


def retargeting_chain(path: Path, ms: float, slots: int) -> list[Block]:
    community = dataclasses.replace(make_community(), ledger=RETARGET)
    with LedgerStore(path) as store:
        writer = LedgerWriter(store, COORDINATOR, RETARGET, timer=Ticks(ms))
        writer.genesis(to_dict(community), GENESIS_T_S)
        for offset in range(slots):
            writer.seal(FIRST_SLOT + offset, gate_s(FIRST_SLOT + offset), [])
        return list(store.blocks())


def test_a_writer_that_mines_too_slowly_is_eased_and_the_audit_agrees(tmp_path: Path) -> None:
    blocks = retargeting_chain(tmp_path / "l.db", ms=80, slots=12)
    bits = [b.header.difficulty_bits for b in blocks]
    # Blocks 1..4 at the start's 6 bits; block 5 sees means of 80 ms (from block 2 on) and
    # eases by two bits; block 9 again, down to the floor of 2.
    assert bits == [6, 6, 6, 6, 6, 4, 4, 4, 4, 2, 2, 2, 2]
    assert all(b.header.prev_mine_ms == 80 for b in blocks[2:])
    assert isinstance(verify_chain(blocks), AuditSummary)
    # A block mined easier than the rules allow is refused, even when signed and mined right.
    forged = build_block(blocks[8].header, blocks[9].header.slot, blocks[9].header.t_s, [], 6,
                         COORDINATOR, blocks[9].header.prev_mine_ms)
    found = verify_chain([*blocks[:9], forged])
    assert isinstance(found, AuditFailure) and found.height == 9
    assert found.reason == "difficulty 6 bits differs from the 2 the community's rules require"


def test_a_slot_beyond_the_cap_overflows_into_blocks_of_the_same_slot(tmp_path: Path) -> None:
    capped = dataclasses.replace(make_community(), ledger=LedgerRules(difficulty_bits=6, max_tx_per_block=4))
    with LedgerStore(tmp_path / "l.db") as store:
        writer = LedgerWriter(store, COORDINATOR, capped.ledger)
        writer.genesis(to_dict(capped), GENESIS_T_S)
        slot, t_s, txs = market_blocks()[0]  # 7 transactions
        headers = writer.seal(slot, t_s, txs)
        assert [h.tx_count for h in headers] == [4, 3] and {h.slot for h in headers} == {slot}
        assert writer.seal(slot, t_s, list(reversed(txs))) == headers  # idempotent across its blocks
        blocks = list(store.blocks())
    assert isinstance(verify_chain(blocks), AuditSummary)
    # A block that repeats the slot of a block that was not full is refused.
    short = build_block(blocks[0].header, slot, t_s, txs[:3], 6, COORDINATOR)
    again = build_block(short.header, slot, t_s, txs[3:5], 6, COORDINATOR, continuation=True)
    found = verify_chain([blocks[0], short, again])
    assert isinstance(found, AuditFailure) and found.height == 2
    assert found.reason == f"slot {slot} does not follow the previous block's slot {slot}"
