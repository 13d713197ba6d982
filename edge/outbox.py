"""The agent's on-disk outbox: every message it must deliver, until delivery is confirmed.

A message is written here before it is published and removed only when the coordinator
confirms it (the rule is the agent's, :mod:`edge.agent`, and written down in
docs/reliability.md). After every reconnect the agent publishes again whatever is still
here, oldest first; the coordinator answers a message it already has with its first
answer, so a replay changes nothing there.

One SQLite file per agent (the standard library's ``sqlite3``), in write-ahead-log mode
with ``synchronous=NORMAL``: what was written survives the agent's crash or ``kill -9``;
a power cut may take the last few seconds' writes with it, never the file. The outbox is
bounded by age and by count; what it drops to stay inside is counted and logged.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gridmesh.edge.outbox")

APPLICATION_ID = 0x676D6F62  # "gmob": marks the file as a gridmesh outbox
SCHEMA_VERSION = 1
MAX_AGE_S = 7 * 86_400
MAX_MESSAGES = 10_000


class OutboxError(Exception):
    """The outbox file cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class Entry:
    ref: str  # the message's id (order id, report id, share id)
    kind: str  # order, report, share
    topic: str
    payload: bytes
    slot: int  # the slot it is about (a share: its round)
    created_s: int  # on the agent's clock


class Outbox:
    """Messages waiting for their confirmation, in the order they were written."""

    def __init__(self, path: Path, counts: Counter[str] | None = None, *,
                 max_age_s: int = MAX_AGE_S, max_messages: int = MAX_MESSAGES) -> None:
        self.path = path
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self.max_age_s = max_age_s
        self.max_messages = max_messages
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"{path}: cannot open the outbox ({exc})") from None
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise OutboxError(f"{path}: not a gridmesh outbox ({exc})") from None
        except OutboxError:
            self._db.close()
            raise

    def _open(self) -> None:
        db = self._db
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if (app_id, version) != (APPLICATION_ID, SCHEMA_VERSION) and (app_id or version or tables):
            raise OutboxError(f"{self.path}: not a gridmesh outbox (application id {app_id:#x}, "
                              f"schema version {version}); move it away to start with an empty one")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if not tables:
            with db:
                db.execute("BEGIN")
                db.execute(
                    "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, ref TEXT NOT NULL UNIQUE, "
                    "kind TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, "
                    "slot INTEGER NOT NULL, created_s INTEGER NOT NULL)")
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("SELECT seq, ref, kind, topic, payload, slot, created_s FROM outbox LIMIT 1").fetchall()

    def put(self, entries: list[Entry], now_s: int) -> None:
        """Keep ``entries`` (one transaction), then drop what is past the bounds.
        A ref already waiting here is kept as it was."""
        if not entries:
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox (ref, kind, topic, payload, slot, created_s) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(e.ref, e.kind, e.topic, e.payload, e.slot, e.created_s) for e in entries])
            self._bound(now_s)

    def _bound(self, now_s: int) -> None:
        old = self._db.execute("DELETE FROM outbox WHERE created_s < ?", (now_s - self.max_age_s,)).rowcount
        over = self._db.execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq DESC LIMIT -1 OFFSET ?)",
            (self.max_messages,)).rowcount
        if old or over:
            self.counts["outbox_dropped_age"] += old
            self.counts["outbox_dropped_full"] += over
            log.warning("%s: dropped %d message(s) older than %d s and %d beyond %d waiting", self.path,
                        old, self.max_age_s, over, self.max_messages)

    def confirm(self, ref: str) -> bool:
        """Delivery of ``ref`` is confirmed: forget it. False if it was not waiting here."""
        with self._db:
            gone = self._db.execute("DELETE FROM outbox WHERE ref = ?", (ref,)).rowcount
        self.counts["outbox_confirmed"] += gone
        return gone > 0

    def waiting(self, kind: str | None = None) -> list[Entry]:
        """What still waits for its confirmation (of one kind, or all), oldest first."""
        sql = "SELECT ref, kind, topic, payload, slot, created_s FROM outbox"
        rows = (self._db.execute(sql + " WHERE kind = ? ORDER BY seq", (kind,)) if kind
                else self._db.execute(sql + " ORDER BY seq"))
        return [Entry(ref, k, topic, bytes(payload), slot, created) for ref, k, topic, payload, slot, created
                in rows.fetchall()]

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        self._db.close()
