"""A finished run folder read into what the report shows: results.db's tables, the
summary, the comparison with the baselines (``--compare`` runs) and the community's rules
as the ledger's genesis block fixed them (tariff, feeder limits, market).

The community comes from the genesis block rather than ``config/community.yaml``: it is
what the coordinator ran under and what the audit checks, and it is there in every run
folder :func:`simulators.run_folder.open_run` accepts.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.community import Community
from ledger.errors import LedgerError
from ledger.store import LedgerStore
from simulators.results import COLUMNS
from simulators.run_folder import RunFolder, RunFolderError, open_run

Rows = tuple[dict[str, Any], ...]
READ_TABLES = ("slots", "households", "household_slots", "trades", "kpis")


@dataclass(frozen=True)
class RunData:
    folder: RunFolder
    community: Community
    tables: dict[str, Rows]  # results.db's tables the report uses, in row order

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def summary(self) -> dict[str, Any]:
        return self.folder.summary

    @property
    def marker(self) -> dict[str, Any]:
        return self.folder.marker

    @property
    def slot_s(self) -> int:
        return self.community.market.slot_s

    @property
    def first_slot(self) -> int | None:
        slots = self.tables["slots"]
        return int(slots[0]["slot"]) if slots else None


def read_run(path: Path) -> RunData:
    """The run at ``path``; RunFolderError names what is missing, unreadable or of another shape."""
    folder = open_run(path)
    where = f"run folder {path}"
    community = _genesis_community(folder.ledger_db, where)
    return RunData(folder, community, _read_tables(folder.results_db, where))


def _read_tables(db: Path, where: str) -> dict[str, Rows]:
    tables: dict[str, Rows] = {}
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            conn.row_factory = sqlite3.Row
            for name in READ_TABLES:
                present = {row["name"] for row in conn.execute(f"PRAGMA table_info([{name}])")}
                lacking = [column for column in COLUMNS[name] if column not in present]
                if lacking:
                    raise RunFolderError(f"{where}: results.db's table {name} lacks the column(s) "
                                         f"{', '.join(lacking)}; run the testbed again")
                order = {"slots": "slot", "households": "household", "household_slots": "household, slot",
                         "trades": "slot", "kpis": "household"}[name]
                columns = ", ".join(f"[{c}]" for c in COLUMNS[name])
                rows = conn.execute(f"SELECT {columns} FROM [{name}] ORDER BY {order}")
                tables[name] = tuple(dict(row) for row in rows)
    except sqlite3.DatabaseError as exc:
        raise RunFolderError(f"{where}: results.db cannot be read: {exc}") from None
    return tables


def _genesis_community(ledger_db: Path, where: str) -> Community:
    try:
        with LedgerStore.open_readonly(ledger_db) as store:
            genesis = store.block(0)
            if genesis is None or not genesis.transactions:
                raise RunFolderError(f"{where}: ledger.db holds no genesis block (the community's rules)")
            return genesis.transactions[0].community()
    except LedgerError as exc:
        raise RunFolderError(f"{where}: ledger.db: {exc}") from None
