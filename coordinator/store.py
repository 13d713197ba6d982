"""The coordinator's database: everything it accepted, decided and published.

A slot's clearing is committed here before it is published, so a restarted
coordinator neither clears nor settles a slot twice. Payloads are stored as the
canonical JSON that went over the bus.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from broker.community import Community
from broker.messages import (
    Award,
    Clearing,
    MeterReport,
    Order,
    Result,
    Settlement,
    decode,
    encode,
)
from broker.model_messages import ForecastShare, ModelRelease
from coordinator.intake import Intake, Verdict
from coordinator.share_intake import StoredShare

SCHEMA_VERSION = 1


class StoreError(Exception):
    pass


class CoordinatorStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._batching = False
        try:
            self.db = sqlite_utils.Database(path)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a coordinator database ({exc})") from None
        if version not in (0, SCHEMA_VERSION):
            raise StoreError(f"{path}: unknown schema version {version}")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._create()

    def _create(self) -> None:
        db = self.db
        db["verdicts"].create(  # type: ignore[union-attr]
            {"ref": str, "slot": int, "kind": str, "device": str, "accepted": int,
             "reason": str, "payload": str, "result": str},
            pk="ref", if_not_exists=True,
        )
        db["clearings"].create({"slot": int, "payload": str}, pk="slot", if_not_exists=True)  # type: ignore[union-attr]
        db["awards"].create(  # type: ignore[union-attr]
            {"slot": int, "device": str, "payload": str}, pk=("slot", "device"), if_not_exists=True
        )
        db["settlements"].create(  # type: ignore[union-attr]
            {"slot": int, "device": str, "payload": str}, pk=("slot", "device"), if_not_exists=True
        )
        db["progress"].create({"key": str, "value": int}, pk="key", if_not_exists=True)  # type: ignore[union-attr]
        db["shares"].create(  # type: ignore[union-attr]  # federated rounds: payloads kept until pooled
            {"ref": str, "round": int, "kind": str, "device": str, "accepted": int, "reason": str,
             "payload": str, "result": str},
            pk="ref", if_not_exists=True,
        )
        db["releases"].create(  # type: ignore[union-attr]
            {"kind": str, "version": int, "round": int, "effective_slot": int, "sha256": str,
             "members": int, "windows": int, "payload": str},
            pk=("kind", "version"), if_not_exists=True,
        )
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def record_verdict(
        self, verdict: Verdict, kind: str, device: str, payload: bytes, result: Result
    ) -> None:
        # One row per submission, in plain SQL: the hot path of intake.
        self.db.conn.execute(
            "INSERT OR REPLACE INTO verdicts (ref, slot, kind, device, accepted, reason, "
            "payload, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (verdict.ref, verdict.slot, kind, device, int(verdict.accepted), verdict.reason,
             payload.decode(), encode(result).decode()),
        )
        if not self._batching:
            self.db.conn.commit()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Commit every verdict recorded inside at once, at the end (or none on error)."""
        self._batching = True
        try:
            yield
        except BaseException:
            self.db.conn.rollback()
            raise
        else:
            self.db.conn.commit()
        finally:
            self._batching = False

    def record_gate(self, clearing: Clearing, awards: tuple[Award, ...], settled_slot: int,
                    settlements: tuple[Settlement, ...]) -> None:
        """A gate closure's outcome in one transaction: the slot's clearing and awards, the
        settlements of the slot it settles, and both marks. A restart finds all of it or
        none (and then clears and settles the same slots again, to the same result)."""
        with self.db.conn:
            self.db.conn.execute("INSERT OR REPLACE INTO clearings (slot, payload) VALUES (?, ?)",
                                 (clearing.slot, encode(clearing).decode()))
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO awards (slot, device, payload) VALUES (?, ?, ?)",
                [(a.slot, a.device, encode(a).decode()) for a in awards],
            )
            self._set("cleared_through", clearing.slot)
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO settlements (slot, device, payload) VALUES (?, ?, ?)",
                [(s.slot, s.device, encode(s).decode()) for s in settlements],
            )
            self._set("settled_through", settled_slot)

    def record_clock(self, t_s: int) -> None:
        """The latest virtual time (a bus-clock tick): a restarted coordinator resumes at it."""
        with self.db.conn:
            self._set("clock_s", t_s)

    def _set(self, key: str, value: int) -> None:
        self.db.conn.execute("INSERT OR REPLACE INTO progress (key, value) VALUES (?, ?)", (key, value))

    def progress(self, key: str, default: int = -1) -> int:
        row = self.db.execute("SELECT value FROM progress WHERE key = ?", [key]).fetchone()
        return int(row[0]) if row else default

    def awards(self, slot: int) -> dict[str, Award]:
        rows = self.db.execute("SELECT device, payload FROM awards WHERE slot = ?", [slot])
        return {device: _as(Award, payload) for device, payload in rows.fetchall()}

    def result_for(self, ref: str) -> Result | None:
        row = self.db.execute("SELECT result FROM verdicts WHERE ref = ?", [ref]).fetchone()
        return _as(Result, row[0]) if row else None

    def verdict_for(self, ref: str) -> Verdict | None:
        """The first verdict on ``ref``, also after the intake has forgotten it."""
        row = self.db.execute("SELECT slot, accepted, reason FROM verdicts WHERE ref = ?", [ref]).fetchone()
        return Verdict(ref, row[0], bool(row[1]), row[2]) if row else None

    def settlement(self, slot: int, device: str) -> Settlement | None:
        row = self.db.execute("SELECT payload FROM settlements WHERE slot = ? AND device = ?",
                              [slot, device]).fetchone()
        return _as(Settlement, row[0]) if row else None

    def restore(self, community: Community) -> Intake:
        """Rebuild the intake after a restart: open books, verdicts and progress."""
        intake = Intake(community, recall=self.verdict_for)
        intake.cleared_through = self.progress("cleared_through")
        intake.settled_through = self.progress("settled_through")
        rows = self.db.execute(
            "SELECT ref, slot, kind, accepted, reason, payload FROM verdicts "
            "WHERE slot > ? ORDER BY rowid", [intake.settled_through]
        ).fetchall()
        for ref, slot, kind, accepted, reason, payload in rows:
            intake.verdicts[ref] = Verdict(ref, slot, bool(accepted), reason)
            if not accepted:
                continue
            if kind == "order" and slot > intake.cleared_through:
                order = _as(Order, payload)
                intake.orders[slot][ref] = order
            elif kind == "report":
                report = _as(MeterReport, payload)
                intake.reports[slot][report.device] = report
        return intake

    # -- federated rounds ------------------------------------------------------------

    def record_share(self, verdict: Verdict, share: ForecastShare, payload: bytes, result: Result) -> None:
        self.db.conn.execute(
            "INSERT OR REPLACE INTO shares (ref, round, kind, device, accepted, reason, payload, result) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (verdict.ref, share.round, share.kind, share.device, int(verdict.accepted), verdict.reason,
             payload.decode() if verdict.accepted else "", encode(result).decode()),
        )
        if not self._batching:
            self.db.conn.commit()

    def share_result_for(self, ref: str) -> Result | None:
        row = self.db.execute("SELECT result FROM shares WHERE ref = ?", [ref]).fetchone()
        return _as(Result, row[0]) if row else None

    def record_round(self, round_: int, releases: list[ModelRelease]) -> None:
        """A pooled round: its releases, and the shares' payloads dropped (their verdicts stay)."""
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO releases (kind, version, round, effective_slot, sha256, members, "
                "windows, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.kind, r.version, r.round, r.effective_slot, r.sha256, len(r.members), r.windows,
                  encode(r).decode()) for r in releases],
            )
            self.db.conn.execute("UPDATE shares SET payload = '' WHERE round <= ?", (round_,))
            self._set("pooled_through_round", round_)

    def releases(self) -> list[ModelRelease]:
        """Every release, oldest first."""
        rows = self.db.execute("SELECT payload FROM releases ORDER BY version, kind").fetchall()
        return [_as(ModelRelease, payload) for (payload,) in rows]

    def open_shares(self, after_round: int) -> list[StoredShare]:
        """The shares of rounds after ``after_round`` (not pooled yet), as answered."""
        rows = self.db.execute(
            "SELECT ref, round, accepted, reason, payload FROM shares WHERE round > ? ORDER BY rowid",
            [after_round]).fetchall()
        return [StoredShare(ref, round_, bool(accepted), reason,
                            _as(ForecastShare, payload) if payload else None)
                for ref, round_, accepted, reason, payload in rows]

    def settlements(self) -> Iterator[Settlement]:
        """Every stored settlement, in slot and member order."""
        for (payload,) in self.db.execute("SELECT payload FROM settlements ORDER BY slot, device"):
            yield _as(Settlement, payload)

    def close(self) -> None:
        self.db.close()


def _as(cls: type[Any], payload: str) -> Any:
    return decode(payload.encode(), cls)
