"""The ledger on disk: one SQLite file, written through sqlite-utils.

Two tables. ``blocks`` holds one row per header (``height`` is the key; ``hash`` is
the header hash, kept for lookups). ``transactions`` holds one row per transaction,
keyed by ``(height, idx)``, with its ``kind``, its ``tx_hash`` and its ``body`` as
canonical JSON text. ``PRAGMA user_version`` holds the schema version. Opening an
older file for writing brings it up to date through the :data:`MIGRATIONS` (sqlite-utils
table changes, one version at a time, each in a transaction); an older file opened
read-only is read as it is, with the newer columns' defaults.

Opening checks the file before anything is written: a file that is not SQLite, is
truncated or corrupt, or has an unknown schema version raises :class:`StorageError`
with a one-line message. Reading checks that every stored row is what the writer
wrote (contiguous indexes, a body that parses, a stored hash that matches the body)
and raises :class:`RecordError` naming the block and transaction if not; the audit
reports those as failures. Cryptographic checks belong to :mod:`ledger.verify`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils

from broker.messages import BlockHeader
from broker.schema import SchemaError, from_dict
from ledger.blocks import GENESIS_PREV, Block, header_hash
from ledger.errors import ChainError, RecordError, StorageError, TransactionError
from ledger.transactions import Transaction

SCHEMA_VERSION = 2
HEADER_FIELDS = ("height", "prev_hash", "merkle_root", "slot", "t_s", "difficulty_bits", "nonce",
                 "tx_count", "prev_mine_ms", "sig")


def _add_prev_mine_ms(db: sqlite_utils.Database) -> None:
    db.table("blocks").add_column("prev_mine_ms", int, not_null_default=0)


# version -> the change that brings a file from the version before up to it
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {2: _add_prev_mine_ms}


class LedgerStore:
    """A ledger file, opened for reading and appending (WAL journal) or only for reading."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.is_file():
                raise StorageError(f"{self.path}: no such ledger file")
            target, uri = f"{self.path.resolve().as_uri()}?mode=ro", True
        else:
            target, uri = str(self.path), False
        try:
            conn = sqlite3.connect(target, uri=uri)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open: {exc}") from None
        self._setup(conn, writable=not readonly)

    @classmethod
    def open_readonly(cls, path: Path | str) -> LedgerStore:
        """Open an existing ledger without the right to change it (SQLite ``mode=ro``)."""
        return cls(path, readonly=True)

    def _setup(self, conn: sqlite3.Connection, writable: bool) -> None:
        """Check the file, then (for a writable store) switch to WAL and create the tables."""
        try:
            version = _check_file(conn, self.path)
            if version == 0 and not writable:
                raise StorageError(f"{self.path}: holds no ledger (an empty SQLite file)")
            if writable:
                conn.execute("PRAGMA journal_mode=WAL")
            self.db = sqlite_utils.Database(conn)
            if version == 0:
                self._create()
            elif writable and version < SCHEMA_VERSION:
                self._migrate(version)
        except StorageError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise StorageError(f"{self.path}: {exc}") from None

    def _create(self) -> None:
        with self.db.atomic():
            self.db.table("blocks").create(
                {"height": int, "hash": str, "prev_hash": str, "merkle_root": str, "slot": int,
                 "t_s": int, "difficulty_bits": int, "nonce": int, "tx_count": int, "prev_mine_ms": int,
                 "sig": str},
                pk="height",
            )
            self.db.table("transactions").create(
                {"height": int, "idx": int, "tx_hash": str, "kind": str, "body": str},
                pk=("height", "idx"),
                foreign_keys=[("height", "blocks", "height")],
            )
            self.db.table("transactions").create_index(["tx_hash"])
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _migrate(self, version: int) -> None:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.db.atomic():
                MIGRATIONS[target](self.db)
                self.db.execute(f"PRAGMA user_version={target}")

    # -- reading ----------------------------------------------------------------

    def head(self) -> BlockHeader | None:
        """The header of the highest block, or ``None`` for an empty ledger."""
        rows = list(self.db.query("SELECT * FROM blocks ORDER BY height DESC LIMIT 1"))
        return _header(rows[0]) if rows else None

    def headers(self, first: int = 0, last: int | None = None) -> Iterator[BlockHeader]:
        """The headers from height ``first`` to ``last`` (default: the head), without
        loading transactions."""
        top = last if last is not None else 2**63 - 1
        for row in self.db.query(
            "SELECT * FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height", [first, top]
        ):
            yield _header(row)

    def blocks(self, first: int = 0, last: int | None = None) -> Iterator[Block]:
        """The blocks from height ``first`` to ``last`` (default: every block, from
        genesis up); one block's rows are read at a time."""
        for header in self.headers(first, last):
            yield Block(header, self._transactions(header.height))

    def block(self, height: int) -> Block | None:
        rows = list(self.db.query("SELECT * FROM blocks WHERE height = ?", [height]))
        if not rows:
            return None
        header = _header(rows[0])
        return Block(header, self._transactions(height))

    def _transactions(self, height: int) -> tuple[Transaction, ...]:
        rows = self.db.query(
            "SELECT idx, tx_hash, kind, body FROM transactions WHERE height = ? ORDER BY idx", [height]
        )
        txs: list[Transaction] = []
        for expected, row in enumerate(rows):
            if row["idx"] != expected:
                raise RecordError(height, expected, None, "transaction missing from the store")
            txs.append(_transaction(height, row))
        return tuple(txs)

    # -- writing ----------------------------------------------------------------

    def append(self, block: Block) -> None:
        """Add ``block`` on top of the head, header and transactions in one SQLite transaction."""
        header = block.header
        if self.readonly:
            raise StorageError(f"{self.path}: opened read-only, cannot append block {header.height}")
        head = self.head()
        height = 0 if head is None else head.height + 1
        prev_hash = GENESIS_PREV if head is None else header_hash(head)
        if header.height != height:
            raise ChainError(f"block height {header.height} does not follow the head (expected {height})")
        if header.prev_hash != prev_hash:
            raise ChainError(f"block {header.height} does not link to the head's hash {prev_hash}")
        if header.tx_count != len(block.transactions):
            raise ChainError(f"block {header.height} declares {header.tx_count} transactions, "
                             f"holds {len(block.transactions)}")
        row: dict[str, Any] = {name: getattr(header, name) for name in HEADER_FIELDS}
        row["hash"] = header_hash(header)
        columns = ", ".join(row)
        try:
            with self.db.atomic():  # plain SQL: a block of a hundred households holds ~300 rows
                self.db.execute(f"INSERT INTO blocks ({columns}) VALUES ({', '.join('?' * len(row))})",
                                list(row.values()))
                self.db.conn.executemany(
                    "INSERT INTO transactions (height, idx, tx_hash, kind, body) VALUES (?, ?, ?, ?, ?)",
                    [(header.height, idx, tx.tx_hash, tx.kind, tx.body_encoded.decode("utf-8"))
                     for idx, tx in enumerate(block.transactions)],
                )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot append block {header.height}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _check_file(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of a sound ledger file (0: a new, empty file); StorageError otherwise."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path}: not a readable SQLite ledger ({exc})") from None
    if problems != ["ok"]:
        raise StorageError(f"{path}: corrupt SQLite file ({problems[0]})")
    if version == 0:
        if tables:
            raise StorageError(f"{path}: not a gridmesh ledger (it has other tables: "
                               f"{', '.join(sorted(tables))})")
        return 0
    if version > SCHEMA_VERSION:
        raise StorageError(f"{path}: unknown ledger schema version {version} "
                           f"(this build reads version {SCHEMA_VERSION})")
    missing = {"blocks", "transactions"} - tables
    if missing:
        raise StorageError(f"{path}: not a complete ledger (missing table {', '.join(sorted(missing))})")
    return version


def _header(row: dict[str, Any]) -> BlockHeader:
    """A header from its row; the row's types and bounds are checked like a message's."""
    fields = {name: row.get(name, 0) for name in HEADER_FIELDS}  # a version-1 file has no prev_mine_ms
    try:
        return from_dict(BlockHeader, fields)
    except SchemaError as exc:
        raise RecordError(int(row["height"]), None, None, f"stored header: {exc}") from None


def _transaction(height: int, row: dict[str, Any]) -> Transaction:
    """A transaction from its row; RecordError unless the row is exactly what was written."""
    index, stored_hash = int(row["idx"]), row["tx_hash"]
    try:
        body = json.loads(row["body"], parse_float=_no_float, parse_constant=_no_float)
        tx = Transaction(row["kind"], body)
    except (TypeError, ValueError) as exc:
        raise RecordError(height, index, stored_hash, f"stored body does not parse: {exc}") from None
    except TransactionError as exc:
        raise RecordError(height, index, stored_hash, f"stored transaction: {exc}") from None
    if tx.tx_hash != stored_hash:
        reason = f"{tx.label()}: body does not match its stored hash (it hashes to {tx.tx_hash[:12]}..)"
        raise RecordError(height, index, stored_hash, reason)
    return tx


def _no_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer")
