"""The SQLite store and the writer: round trips, chain rules, idempotency, bad files."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from pathlib import Path

import pytest
from ledger_chain import (
    COORDINATOR,
    DIFFICULTY,
    FIRST_SLOT,
    GENESIS_T_S,
    MEMBERS,
    make_community,
    market_blocks,
    write_chain,
)

from broker.schema import to_dict
from ledger.blocks import Block, build_block
from ledger.errors import ChainError, LedgerError, StorageError
from ledger.store import SCHEMA_VERSION, LedgerStore
from ledger.transactions import Transaction
from ledger.writer import LedgerWriter


def test_round_trip_through_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    written = write_chain(path)
    assert [b.header.height for b in written] == [0, 1, 2, 3]
    with LedgerStore.open_readonly(path) as store:
        assert list(store.blocks()) == written
        assert store.head() == written[-1].header
        assert store.block(2) == written[2]
        assert store.block(4) is None
        assert list(store.headers()) == [b.header for b in written]


def test_schema_version_and_tables(ledger_path: Path) -> None:
    conn = sqlite3.connect(ledger_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(blocks)")]
        assert columns == ["height", "hash", "prev_hash", "merkle_root", "slot", "t_s",
                           "difficulty_bits", "nonce", "tx_count", "prev_mine_ms", "sig"]
        tx_columns = [row[1] for row in conn.execute("PRAGMA table_info(transactions)")]
        assert tx_columns == ["height", "idx", "tx_hash", "kind", "body"]
        count = conn.execute("SELECT count(*) FROM transactions WHERE height = 3").fetchone()[0]
        assert count == 11
    finally:
        conn.close()


def test_the_writable_store_uses_wal(tmp_path: Path) -> None:
    with LedgerStore(tmp_path / "ledger.db") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_reopened_store_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    plan = market_blocks()
    with LedgerStore(path) as store:
        writer = LedgerWriter(store, COORDINATOR, DIFFICULTY)
        writer.genesis(to_dict(make_community()), GENESIS_T_S)
        writer.seal(*plan[0])
    with LedgerStore(path) as store:
        writer = LedgerWriter(store, COORDINATOR, DIFFICULTY)
        writer.genesis(to_dict(make_community()), GENESIS_T_S + 99)
        [header] = writer.seal(*plan[1])
        assert header.height == 2
        assert store.head() == header


def test_append_refuses_a_block_that_does_not_follow_the_head(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    blocks = write_chain(path)
    with LedgerStore(path) as store:
        with pytest.raises(ChainError, match="height 2 does not follow the head"):
            store.append(blocks[2])
        stray = build_block(blocks[2].header, FIRST_SLOT + 10, 1, [], DIFFICULTY, COORDINATOR)
        forged = Block(dataclasses.replace(stray.header, height=4), ())
        with pytest.raises(ChainError, match="does not link to the head's hash"):
            store.append(forged)
        assert store.head() == blocks[3].header


def test_a_read_only_store_cannot_append(ledger_path: Path) -> None:
    with LedgerStore.open_readonly(ledger_path) as store:
        head = store.head()
        assert head is not None
        block = build_block(head, head.slot + 1, head.t_s + 900, [], DIFFICULTY, COORDINATOR)
        with pytest.raises(StorageError, match="opened read-only, cannot append block 4"):
            store.append(block)


def test_genesis_is_idempotent_and_refuses_another_community(tmp_path: Path) -> None:
    with LedgerStore(tmp_path / "ledger.db") as store:
        writer = LedgerWriter(store, COORDINATOR, DIFFICULTY)
        first = writer.genesis(to_dict(make_community()), GENESIS_T_S)
        assert writer.genesis(to_dict(make_community()), GENESIS_T_S + 900) == first
        other = to_dict(make_community())
        other["id"] = "elsewhere"
        with pytest.raises(ChainError, match="genesis block for a different community"):
            writer.genesis(other, GENESIS_T_S)
        assert len(list(store.headers())) == 1


def test_genesis_checks_key_difficulty_and_schema(tmp_path: Path) -> None:
    with LedgerStore(tmp_path / "ledger.db") as store:
        intruder = LedgerWriter(store, MEMBERS["h001"], DIFFICULTY)
        with pytest.raises(ChainError, match="coordinator_key is not the signer's public key"):
            intruder.genesis(to_dict(make_community()), GENESIS_T_S)
        easy = LedgerWriter(store, COORDINATOR, DIFFICULTY - 1)
        with pytest.raises(ChainError, match=r"its ledger rules LedgerRules\(difficulty_bits=6.* are not "
                                             r"the writer's LedgerRules\(difficulty_bits=5"):
            easy.genesis(to_dict(make_community()), GENESIS_T_S)
        writer = LedgerWriter(store, COORDINATOR, DIFFICULTY)
        with pytest.raises(ChainError, match="genesis community: colour: unknown key"):
            writer.genesis({**to_dict(make_community()), "colour": "green"}, GENESIS_T_S)
        assert store.head() is None


def test_seal_needs_genesis_and_is_idempotent_per_slot(tmp_path: Path) -> None:
    plan = market_blocks()
    with LedgerStore(tmp_path / "ledger.db") as store:
        writer = LedgerWriter(store, COORDINATOR, DIFFICULTY)
        with pytest.raises(ChainError, match="no genesis block"):
            writer.seal(*plan[0])
        writer.genesis(to_dict(make_community()), GENESIS_T_S)
        slot, t_s, txs = plan[0]
        [first] = writer.seal(slot, t_s, txs)
        assert writer.seal(slot, t_s, list(reversed(txs))) == (first,)
        with pytest.raises(ChainError, match=f"slot {slot} is already sealed with other transactions"):
            writer.seal(slot, t_s, txs[:-1])
        with pytest.raises(ChainError, match="does not follow the head's slot"):
            writer.seal(slot - 1, t_s, txs)
        assert store.head() == first


def test_storage_errors_are_ledger_errors() -> None:
    assert issubclass(StorageError, LedgerError)
    assert issubclass(ChainError, LedgerError)


# -- files that are not ledgers ------------------------------------------------------


def test_random_bytes_are_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    data = bytes(range(256)) * 64
    path.write_bytes(data)
    for opener in (LedgerStore, LedgerStore.open_readonly):
        with pytest.raises(StorageError, match=r"not a readable SQLite ledger \(file is not a database\)"):
            opener(path)
    assert path.read_bytes() == data
    assert os.listdir(tmp_path) == ["ledger.db"]


def test_a_truncated_file_is_refused_and_left_untouched(ledger_path: Path) -> None:
    data = ledger_path.read_bytes()
    ledger_path.write_bytes(data[: len(data) // 2])
    for opener in (LedgerStore, LedgerStore.open_readonly):
        with pytest.raises(StorageError, match="malformed"):
            opener(ledger_path)
    assert ledger_path.read_bytes() == data[: len(data) // 2]


def test_an_unknown_schema_version_is_refused(ledger_path: Path) -> None:
    conn = sqlite3.connect(ledger_path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    expected = r"unknown ledger schema version 99 \(this build reads version 2\)"
    for opener in (LedgerStore, LedgerStore.open_readonly):
        with pytest.raises(StorageError, match=expected):
            opener(ledger_path)


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    with pytest.raises(StorageError, match=r"not a gridmesh ledger \(it has other tables: notes\)"):
        LedgerStore(path)


def test_read_only_open_needs_an_existing_ledger(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no such ledger file"):
        LedgerStore.open_readonly(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(StorageError, match="holds no ledger"):
        LedgerStore.open_readonly(tmp_path / "empty.db")


def test_a_new_file_becomes_an_empty_ledger(tmp_path: Path) -> None:
    with LedgerStore(tmp_path / "new.db") as store:
        assert store.head() is None
        assert list(store.blocks()) == []


def test_transaction_rows_record_hash_and_canonical_body(ledger_path: Path) -> None:
    with LedgerStore.open_readonly(ledger_path) as store:
        block = store.block(1)
        assert block is not None
        rows = list(store.db.query("SELECT idx, tx_hash, kind, body FROM transactions WHERE height = 1"))
    for row, tx in zip(rows, block.transactions, strict=True):
        assert row["tx_hash"] == tx.tx_hash
        assert row["kind"] == tx.kind
        assert Transaction(row["kind"], json.loads(row["body"])) == tx


def test_a_version_1_file_is_read_as_it_is_and_migrated_when_opened_for_writing(ledger_path: Path) -> None:
    conn = sqlite3.connect(ledger_path)  # make it a version-1 file: the column did not exist
    with conn:
        conn.execute("ALTER TABLE blocks DROP COLUMN prev_mine_ms")
        conn.execute("PRAGMA user_version=1")
    conn.close()
    with LedgerStore.open_readonly(ledger_path) as store:
        old = list(store.blocks())
    assert old and all(b.header.prev_mine_ms == 0 for b in old)
    with LedgerStore(ledger_path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [b.header for b in store.blocks()] == [b.header for b in old]
    conn = sqlite3.connect(ledger_path)
    try:
        assert "prev_mine_ms" in [row[1] for row in conn.execute("PRAGMA table_info(blocks)")]
    finally:
        conn.close()
