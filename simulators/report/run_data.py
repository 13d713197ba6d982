"""A finished run folder read into what the report shows: results.db's tables, the
summary, the comparison with the baselines (``--compare`` runs) and the community's rules
as the ledger's genesis block fixed them (tariff, feeder limits, market).

The community comes from the genesis block rather than ``config/community.yaml``: it is
what the coordinator ran under and what the audit checks, and it is there in every run
folder :func:`simulators.run_folder.open_run` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.community import Community
from simulators.run_folder import RunFolder, open_run

Rows = tuple[dict[str, Any], ...]
READ_TABLES = {"slots": "slot", "households": "household", "household_slots": "household, slot",
               "trades": "slot", "kpis": "household"}  # results.db's tables the report uses, and their order


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
    return RunData(folder, folder.read_community(), folder.read_tables(READ_TABLES))
