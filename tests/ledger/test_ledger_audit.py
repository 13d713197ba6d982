"""The audit: a real chain passes; every kind of tampering is caught at its block and transaction.

Tampering is done the way an attacker with the file would do it: with plain sqlite3
on the closed ledger file. Layout of the test chain (see ``ledger_chain``): block 0
holds the community; blocks 1 and 2 hold 3 orders, a clearing and 3 awards (indexes
0-2, 3, 4-6); block 3 adds 2 reports and 2 settlements (indexes 7-8, 9-10).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from ledger_chain import (
    COORDINATOR,
    DIFFICULTY,
    FIRST_SLOT,
    MEMBERS,
    make_community,
    slot_orders,
    slot_outcome,
)

from broker.codec import canonical_json
from broker.identity import Identity
from broker.messages import Order, Step
from ledger import parallel_audit
from ledger.blocks import Block, build_block
from ledger.parallel_audit import audit_file
from ledger.store import LedgerStore
from ledger.transactions import Transaction
from ledger.verify import AuditFailure, AuditSummary, verify_chain

AUDIT_WORKERS = 1


@pytest.fixture(autouse=True, params=[1, 3], ids=["one-process", "three-processes"])
def audit_workers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs against the single-process audit and against the chain cut into
    three segments audited in parallel: both must name the same first failure."""
    monkeypatch.setattr(sys.modules[__name__], "AUDIT_WORKERS", request.param)
    monkeypatch.setattr(parallel_audit, "MIN_TX_PER_WORKER", 1)


def audit(path: Path) -> AuditSummary | AuditFailure:
    if AUDIT_WORKERS > 1:
        return parallel_audit.audit_file(path, AUDIT_WORKERS)
    with LedgerStore.open_readonly(path) as store:
        return verify_chain(store.blocks())


def failure(path: Path) -> AuditFailure:
    result = audit(path)
    assert isinstance(result, AuditFailure), result
    return result


def execute(path: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, params)
    conn.close()


def tx_row(path: Path, height: int, idx: int) -> tuple[str, str, dict[str, Any]]:
    conn = sqlite3.connect(path)
    kind, tx_hash, body = conn.execute(
        "SELECT kind, tx_hash, body FROM transactions WHERE height = ? AND idx = ?", (height, idx)
    ).fetchone()
    conn.close()
    return kind, tx_hash, json.loads(body)


def rewrite_body(path: Path, height: int, idx: int, body: dict[str, Any], update_hash: bool) -> str:
    """Store ``body`` at (height, idx); with ``update_hash`` also fix the stored hash. Returns it."""
    kind = tx_row(path, height, idx)[0]
    new_hash = hashlib.sha256(canonical_json({"kind": kind, "body": body})).hexdigest()
    text = canonical_json(body).decode()
    if update_hash:
        execute(path, "UPDATE transactions SET body = ?, tx_hash = ? WHERE height = ? AND idx = ?",
                (text, new_hash, height, idx))
    else:
        execute(path, "UPDATE transactions SET body = ? WHERE height = ? AND idx = ?", (text, height, idx))
    return new_hash


def test_a_real_chain_passes_with_a_summary(ledger_path: Path) -> None:
    result = audit(ledger_path)
    assert isinstance(result, AuditSummary), result
    assert result.blocks == 4
    assert result.transactions_by_kind == {
        "award": 9, "clearing": 3, "community": 1, "order": 9, "report": 2, "settlement": 2,
    }
    assert result.transactions == 26
    assert result.members == 3
    assert (result.first_slot, result.last_slot) == (FIRST_SLOT, FIRST_SLOT + 2)
    assert result.head_height == 3
    with LedgerStore.open_readonly(ledger_path) as store:
        blocks = list(store.blocks())
    assert result.head_hash == blocks[-1].hash
    assert result.coordinator_key == COORDINATOR.public_key_hex


def test_changed_body_with_stale_stored_hash(ledger_path: Path) -> None:
    kind, old_hash, body = tx_row(ledger_path, 2, 1)
    body["steps"][0]["energy_wh"] += 1
    rewrite_body(ledger_path, 2, 1, body, update_hash=False)
    found = failure(ledger_path)
    assert (found.height, found.tx_index, found.tx_hash) == (2, 1, old_hash)
    assert f"{kind} {body['device']}:{FIRST_SLOT + 1}:0: body does not match its stored hash" in found.reason


def test_changed_body_with_recomputed_hash_fails_its_signature(ledger_path: Path) -> None:
    _, _, body = tx_row(ledger_path, 2, 1)
    body["steps"][0]["price_u_per_kwh"] = 1
    new_hash = rewrite_body(ledger_path, 2, 1, body, update_hash=True)
    found = failure(ledger_path)
    assert found == AuditFailure(2, 1, new_hash, f"order {body['device']}:{FIRST_SLOT + 1}:0: bad signature")
    order_id = f"{body['device']}:{FIRST_SLOT + 1}:0"
    assert str(found) == f"block 2, transaction 1 ({new_hash[:12]}..): order {order_id}: bad signature"


def test_changed_settlement_amount_fails_the_coordinator_signature(ledger_path: Path) -> None:
    _, _, body = tx_row(ledger_path, 3, 9)
    body["bill_u"] -= 1000
    new_hash = rewrite_body(ledger_path, 3, 9, body, update_hash=True)
    found = failure(ledger_path)
    assert (found.height, found.tx_index, found.tx_hash) == (3, 9, new_hash)
    assert found.reason == f"settlement {body['device']}:{FIRST_SLOT}: bad signature"


def test_deleted_transaction_in_the_middle(ledger_path: Path) -> None:
    execute(ledger_path, "DELETE FROM transactions WHERE height = 2 AND idx = 4")
    assert failure(ledger_path) == AuditFailure(2, 4, None, "transaction missing from the store")


def test_deleted_last_transaction(ledger_path: Path) -> None:
    execute(ledger_path, "DELETE FROM transactions WHERE height = 3 AND idx = 10")
    assert failure(ledger_path) == AuditFailure(
        3, 10, None, "transaction missing: the header declares 11, the block holds 10"
    )


@pytest.mark.parametrize(("first", "second"), [(0, 2), (1, 2), (2, 5), (7, 10)])
def test_swapped_transactions(ledger_path: Path, first: int, second: int) -> None:
    a, b = tx_row(ledger_path, 3, first), tx_row(ledger_path, 3, second)
    for idx, (kind, tx_hash, body) in ((first, b), (second, a)):
        execute(ledger_path, "UPDATE transactions SET kind = ?, tx_hash = ?, body = ? "
                "WHERE height = 3 AND idx = ?", (kind, tx_hash, canonical_json(body).decode(), idx))
    found = failure(ledger_path)
    assert (found.height, found.tx_index, found.tx_hash) == (3, first, b[1])
    assert found.reason.endswith("out of canonical order (by kind, then hash)")


@pytest.mark.parametrize(("column", "value"), [("t_s", "t_s + 1"), ("slot", "slot + 7"),
                                               ("merkle_root", "'" + "0" * 64 + "'")])
def test_changed_header_field(ledger_path: Path, column: str, value: str) -> None:
    execute(ledger_path, f"UPDATE blocks SET {column} = {value} WHERE height = 2")
    found = failure(ledger_path)
    assert (found.height, found.tx_index, found.tx_hash) == (2, None, None)
    assert found.reason.startswith(("proof of work fails", "header signature does not verify"))


def test_changed_prev_hash(ledger_path: Path) -> None:
    execute(ledger_path, "UPDATE blocks SET prev_hash = ? WHERE height = 2", ("1" * 64,))
    found = failure(ledger_path)
    assert (found.height, found.tx_index) == (2, None)
    assert found.reason.startswith("prev_hash 111111111111.. does not match the previous block's hash")


def test_replaced_header_signature(ledger_path: Path) -> None:
    execute(ledger_path, "UPDATE blocks SET sig = (SELECT sig FROM blocks WHERE height = 1) WHERE height = 2")
    assert failure(ledger_path) == AuditFailure(
        2, None, None, "header signature does not verify with the coordinator key"
    )


def test_replaced_transaction_signature(ledger_path: Path) -> None:
    _, _, body = tx_row(ledger_path, 1, 0)
    body["sig"] = tx_row(ledger_path, 1, 1)[2]["sig"]
    new_hash = rewrite_body(ledger_path, 1, 0, body, update_hash=True)
    assert failure(ledger_path) == AuditFailure(
        1, 0, new_hash, f"order {body['device']}:{FIRST_SLOT}:0: bad signature"
    )


def test_changed_difficulty(ledger_path: Path) -> None:
    execute(ledger_path, "UPDATE blocks SET difficulty_bits = 2 WHERE height = 2")
    assert failure(ledger_path) == AuditFailure(
        2, None, None, f"difficulty 2 bits differs from the {DIFFICULTY} the community's rules require"
    )


def test_lowered_difficulty_in_the_genesis_community(ledger_path: Path) -> None:
    _, _, body = tx_row(ledger_path, 0, 0)
    body["ledger"]["difficulty_bits"] = 1
    rewrite_body(ledger_path, 0, 0, body, update_hash=True)
    assert failure(ledger_path) == AuditFailure(
        0, None, None, f"difficulty {DIFFICULTY} bits differs from the 1 the community's rules require"
    )


def test_swapped_member_key_in_genesis(ledger_path: Path) -> None:
    _, _, body = tx_row(ledger_path, 0, 0)
    body["members"][0]["public_key"] = Identity.derived("mallory", 1).public_key_hex
    rewrite_body(ledger_path, 0, 0, body, update_hash=True)
    assert failure(ledger_path) == AuditFailure(
        0, None, None, "merkle root does not match the block's transactions"
    )


def test_a_body_out_of_canonical_form(ledger_path: Path) -> None:
    _, _, body = tx_row(ledger_path, 3, 10)
    del body["reason"]  # has a default, so it decodes, and the signature would still verify
    new_hash = rewrite_body(ledger_path, 3, 10, body, update_hash=True)
    found = failure(ledger_path)
    assert (found.height, found.tx_index, found.tx_hash) == (3, 10, new_hash)
    assert found.reason.endswith("body is not in canonical form")


def test_a_body_with_a_float(ledger_path: Path) -> None:
    _, _, body = tx_row(ledger_path, 2, 3)
    text = canonical_json(body).decode().replace('"buy_wh":1200', '"buy_wh":1200.5')
    execute(ledger_path, "UPDATE transactions SET body = ? WHERE height = 2 AND idx = 3", (text,))
    found = failure(ledger_path)
    assert (found.height, found.tx_index) == (2, 3)
    assert found.reason == "stored body does not parse: number 1200.5 is not an integer"


def test_a_header_column_of_the_wrong_type(ledger_path: Path) -> None:
    execute(ledger_path, "UPDATE blocks SET nonce = 'many' WHERE height = 1")
    found = failure(ledger_path)
    assert (found.height, found.tx_index) == (1, None)
    assert found.reason == "stored header: nonce: must be an integer, got str 'many'"


def test_a_deleted_block(ledger_path: Path) -> None:
    execute(ledger_path, "DELETE FROM transactions WHERE height = 2")
    execute(ledger_path, "DELETE FROM blocks WHERE height = 2")
    assert failure(ledger_path) == AuditFailure(3, None, None, "height 3 where 2 was expected")


# -- chains built in memory, signed properly but breaking the rules ------------------


def genesis(**changes: Any) -> Block:
    community = dataclasses.replace(make_community(), **changes)
    return build_block(None, -1, 1000, [Transaction.from_community(community)], DIFFICULTY, COORDINATOR)


def orders_block(prev: Block, extra: list[Transaction]) -> Block:
    txs = [Transaction.from_message("order", o) for o in slot_orders(FIRST_SLOT)] + extra
    return build_block(prev.header, FIRST_SLOT, 2000, txs, DIFFICULTY, COORDINATOR)


def index_of(block: Block, tx: Transaction) -> int:
    return block.transactions.index(tx)


def test_an_order_from_a_stranger() -> None:
    stranger = Identity.derived("h999", 1)
    order = stranger.sign(Order("h999", FIRST_SLOT, 0, "buy", (Step(100, 1),), 10))
    tx = Transaction.from_message("order", order)
    first = genesis()
    block = orders_block(first, [tx])
    assert verify_chain([first, block]) == AuditFailure(
        1, index_of(block, tx), tx.tx_hash,
        f"order h999:{FIRST_SLOT}:0: device 'h999' is not a member of the community",
    )


def test_an_order_signed_by_another_member() -> None:
    forged = MEMBERS["h002"].sign(Order("h001", FIRST_SLOT, 5, "sell", (Step(100, 1),), 10))
    tx = Transaction.from_message("order", forged)
    first = genesis()
    block = orders_block(first, [tx])
    assert verify_chain([first, block]) == AuditFailure(
        1, index_of(block, tx), tx.tx_hash, f"order h001:{FIRST_SLOT}:5: bad signature"
    )


def test_an_award_signed_by_a_member_instead_of_the_coordinator() -> None:
    award = slot_outcome(FIRST_SLOT)[1].message()
    tx = Transaction.from_message("award", MEMBERS["h001"].sign(award))
    first = genesis()
    block = orders_block(first, [tx])
    assert verify_chain([first, block]) == AuditFailure(
        1, index_of(block, tx), tx.tx_hash, f"award h001:{FIRST_SLOT}:0: bad signature"
    )


def test_a_second_community_after_genesis() -> None:
    tx = Transaction.from_community(make_community())
    first = genesis()
    block = orders_block(first, [tx])
    assert verify_chain([first, block]) == AuditFailure(
        1, 0, tx.tx_hash, "a community transaction outside the genesis block"
    )


def test_genesis_must_hold_exactly_one_community() -> None:
    txs = [Transaction.from_community(make_community()),
           Transaction.from_message("order", slot_orders(FIRST_SLOT)[0])]
    block = build_block(None, -1, 1000, txs, DIFFICULTY, COORDINATOR)
    found = verify_chain([block])
    assert isinstance(found, AuditFailure)
    assert (found.height, found.reason) == (
        0, "the genesis block must hold exactly one community transaction, holds ['community', 'order']"
    )


def test_genesis_must_be_signed_by_its_own_coordinator_key() -> None:
    community = make_community()
    block = build_block(None, -1, 1000, [Transaction.from_community(community)], DIFFICULTY, MEMBERS["h001"])
    assert verify_chain([block]) == AuditFailure(
        0, None, None, "header signature does not verify with the coordinator key"
    )


def test_genesis_without_a_coordinator_key() -> None:
    block = genesis(coordinator_key="")
    found = verify_chain([block])
    assert isinstance(found, AuditFailure)
    assert (found.height, found.tx_index) == (0, 0)
    assert "names no coordinator_key" in found.reason


def test_slots_must_increase() -> None:
    first = genesis()
    one = orders_block(first, [])
    two = build_block(one.header, FIRST_SLOT + 1, 3000, [], DIFFICULTY, COORDINATOR)
    back = dataclasses.replace(two.header, slot=FIRST_SLOT)
    resigned = Block(COORDINATOR.sign(back), ())
    found = verify_chain([first, one, resigned])
    assert isinstance(found, AuditFailure)
    assert found.reason == f"slot {FIRST_SLOT} does not follow the previous block's slot {FIRST_SLOT}"


def test_the_same_transaction_twice() -> None:
    first = genesis()
    order = Transaction.from_message("order", slot_orders(FIRST_SLOT)[0])
    block = build_block(first.header, FIRST_SLOT, 2000, [order, order], DIFFICULTY, COORDINATOR)
    found = verify_chain([first, block])
    assert isinstance(found, AuditFailure)
    assert (found.height, found.tx_index) == (1, 0)
    assert found.reason.endswith("recorded twice in a row")


def test_an_empty_ledger_fails() -> None:
    assert verify_chain([]) == AuditFailure(0, None, None, "the ledger holds no blocks (no genesis block)")


def test_a_genesis_only_ledger_passes() -> None:
    result = verify_chain([genesis()])
    assert isinstance(result, AuditSummary)
    assert (result.blocks, result.first_slot, result.last_slot, result.head_height) == (1, None, None, 0)


def test_the_parallel_audit_cuts_the_test_chain_into_three_segments(ledger_path: Path) -> None:
    with LedgerStore.open_readonly(ledger_path) as store:
        counts = [(h.height, h.tx_count) for h in store.headers()]
    assert parallel_audit.split_heights(counts, 3) == [(0, 1), (2, 2), (3, 3)]


def test_of_two_bad_blocks_the_earlier_is_named(ledger_path: Path) -> None:
    for height in (3, 2):
        _, _, body = tx_row(ledger_path, height, 0)
        body["steps"][0]["energy_wh"] += 1
        rewrite_body(ledger_path, height, 0, body, update_hash=True)
    found = failure(ledger_path)
    assert (found.height, found.tx_index) == (2, 0) and found.reason.endswith("bad signature")


@pytest.mark.parametrize(("counts", "workers", "expected"), [
    ([], 4, []),
    ([(0, 1)], 4, [(0, 0)]),
    ([(0, 1), (1, 7), (2, 7), (3, 11)], 2, [(0, 2), (3, 3)]),
    ([(h, 100) for h in range(10)], 4, [(0, 1), (2, 4), (5, 6), (7, 9)]),
    ([(0, 1), (1, 2)], 8, [(0, 0), (1, 1)]),
])
def test_split_heights_balances_transactions(
    counts: list[tuple[int, int]], workers: int, expected: list[tuple[int, int]]
) -> None:
    assert parallel_audit.split_heights(counts, workers) == expected


def test_a_small_chain_is_audited_in_one_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_audit, "MIN_TX_PER_WORKER", 5_000)
    assert parallel_audit.split_heights([(h, 300) for h in range(20)], 2) == [(0, 19)]
    assert len(parallel_audit.split_heights([(h, 300) for h in range(40)], 2)) == 2


def test_a_block_from_the_future_is_refused_against_the_auditors_clock(tmp_path: Path) -> None:
    first = genesis()
    one = orders_block(first, [])
    late = build_block(one.header, FIRST_SLOT + 1, 10_000, [], DIFFICULTY, COORDINATOR)
    assert isinstance(verify_chain([first, one, late], now_s=10_000 - 300), AuditSummary)  # within skew
    found = verify_chain([first, one, late], now_s=9_000)
    assert isinstance(found, AuditFailure) and found.height == 2
    assert found.reason == "a block from the future: its time 10000 is after the audit's clock 9000"
    path = tmp_path / "future.db"
    with LedgerStore(path) as store:
        for block in (first, one, late):
            store.append(block)
    before = path.read_bytes()
    assert isinstance(audit_file(path, now_s=9_000), AuditFailure)
    assert path.read_bytes() == before  # nothing written


def test_an_inserted_transaction_is_one_more_than_the_header_declares(ledger_path: Path) -> None:
    kind, _, body = tx_row(ledger_path, 3, 0)
    forged = {**body, "seq": 9}  # another order, as if from the same member
    tx_hash = hashlib.sha256(canonical_json({"kind": kind, "body": forged})).hexdigest()
    execute(ledger_path, "INSERT INTO transactions (height, idx, tx_hash, kind, body) "
            "VALUES (3, 11, ?, ?, ?)", (tx_hash, kind, canonical_json(forged).decode()))
    found = failure(ledger_path)
    assert (found.height, found.tx_index, found.tx_hash) == (3, 11, tx_hash)
    assert found.reason == "extra transaction: the header declares 11, the block holds 12"


def test_an_inserted_block_breaks_the_chain_of_hashes(ledger_path: Path) -> None:
    conn = sqlite3.connect(ledger_path)
    with conn:
        # Move blocks 2 and 3 up by one and put a copy of block 1 in the gap.
        for height in (3, 2):
            conn.execute("UPDATE transactions SET height = ? WHERE height = ?", (height + 1, height))
            conn.execute("UPDATE blocks SET height = ? WHERE height = ?", (height + 1, height))
        row = conn.execute("SELECT * FROM blocks WHERE height = 1").fetchone()
        conn.execute(f"INSERT INTO blocks VALUES ({', '.join('?' * len(row))})", (2, *row[1:]))
    conn.close()
    found = failure(ledger_path)
    assert found.height == 2 and found.tx_index is None
    assert found.reason.startswith("prev_hash ")
    assert "does not match the previous block's hash" in found.reason
