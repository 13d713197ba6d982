"""A finished testbed run's folder, opened for reading: what reports and playback need.

A run folder holds ``run.json`` (the marker: status, gridmesh version, results format),
``results.db`` (:mod:`simulators.results`), ``summary.json``, ``ledger.db`` and, for
``--compare`` runs, ``compare.json``. :func:`open_run` checks that all of it is there
and written in the format this gridmesh reads, and says exactly what is missing or
different when it is not. :meth:`RunFolder.read_tables` and :meth:`RunFolder.read_community`
read results.db's rows and the community's rules from the ledger's genesis block.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.community import Community
from gridmesh import __version__
from ledger.errors import LedgerError
from ledger.store import LedgerStore
from simulators.results import COLUMNS

RUN_MARKER = "run.json"
RESULTS_FORMAT = 1
"""Raised whenever results.db, summary.json or compare.json change shape."""

REQUIRED_FILES = ("results.db", "summary.json", "ledger.db")
REQUIRED_TABLES = ("slots", "households", "household_slots", "trades", "orders", "agent_stats", "kpis")


class RunFolderError(Exception):
    """A run folder that cannot be read: the message names the folder and what is wrong."""


@dataclass(frozen=True)
class RunFolder:
    path: Path
    marker: dict[str, Any]
    summary: dict[str, Any]
    compare: dict[str, Any] | None  # compare.json of a --compare run

    @property
    def results_db(self) -> Path:
        return self.path / "results.db"

    @property
    def ledger_db(self) -> Path:
        return self.path / "ledger.db"

    def read_tables(self, order_by: Mapping[str, str]) -> dict[str, tuple[dict[str, Any], ...]]:
        """results.db's tables named in ``order_by``, each with the columns
        :data:`simulators.results.COLUMNS` gives it, in the order ``order_by`` gives."""
        where = f"run folder {self.path}"
        tables: dict[str, tuple[dict[str, Any], ...]] = {}
        try:
            with closing(sqlite3.connect(f"file:{self.results_db}?mode=ro", uri=True)) as conn:
                conn.row_factory = sqlite3.Row
                for name, order in order_by.items():
                    present = {row["name"] for row in conn.execute(f"PRAGMA table_info([{name}])")}
                    lacking = [column for column in COLUMNS[name] if column not in present]
                    if lacking:
                        raise RunFolderError(f"{where}: results.db's table {name} lacks the column(s) "
                                             f"{', '.join(lacking)}; run the testbed again")
                    columns = ", ".join(f"[{c}]" for c in COLUMNS[name])
                    rows = conn.execute(f"SELECT {columns} FROM [{name}] ORDER BY {order}")
                    tables[name] = tuple(dict(row) for row in rows)
        except sqlite3.DatabaseError as exc:
            raise RunFolderError(f"{where}: results.db cannot be read: {exc}") from None
        return tables

    def read_community(self) -> Community:
        """The community's rules as the ledger's genesis block fixed them: what the
        coordinator ran under and what the audit checks."""
        where = f"run folder {self.path}"
        try:
            with LedgerStore.open_readonly(self.ledger_db) as store:
                genesis = store.block(0)
                if genesis is None or not genesis.transactions:
                    raise RunFolderError(f"{where}: ledger.db holds no genesis block (the community's rules)")
                return genesis.transactions[0].community()
        except LedgerError as exc:
            raise RunFolderError(f"{where}: ledger.db: {exc}") from None


def finished_marker(**extra: Any) -> str:
    """The text of ``run.json`` for a run that finished."""
    return json.dumps({"status": "finished", "gridmesh": __version__, "results_format": RESULTS_FORMAT,
                       **extra}) + "\n"


def open_run(path: Path) -> RunFolder:
    """The run folder at ``path``; RunFolderError says what is missing or from another version."""
    where = f"run folder {path}"
    if not path.is_dir():
        raise RunFolderError(f"{where}: no such folder")
    marker_path = path / RUN_MARKER
    if not marker_path.is_file():
        raise RunFolderError(f"{where}: no {RUN_MARKER}; not a testbed run's output folder")
    marker = _json_object(marker_path, where)
    status = marker.get("status")
    if status != "finished":
        raise RunFolderError(f"{where}: the run did not finish ({RUN_MARKER} says status {status!r}); "
                             "run the testbed again into this folder")
    made_by = marker.get("gridmesh", "an earlier version")
    if marker.get("results_format") != RESULTS_FORMAT:
        raise RunFolderError(
            f"{where}: written by gridmesh {made_by} in results format {marker.get('results_format', 0)}; "
            f"this gridmesh ({__version__}) reads format {RESULTS_FORMAT}: run the testbed again")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise RunFolderError(f"{where}: missing {', '.join(missing)}")
    tables = _tables(path / "results.db", where)
    absent = [name for name in REQUIRED_TABLES if name not in tables]
    if absent:
        raise RunFolderError(f"{where}: results.db lacks the table(s) {', '.join(absent)}")
    compare_path = path / "compare.json"
    compare = _json_object(compare_path, where) if compare_path.is_file() else None
    return RunFolder(path, marker, _json_object(path / "summary.json", where), compare)


def _json_object(path: Path, where: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{where}: {path.name} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{where}: {path.name} is not a JSON object")
    return data


def _tables(db: Path, where: str) -> set[str]:
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise RunFolderError(f"{where}: results.db cannot be read: {exc}") from None
