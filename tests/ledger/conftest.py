"""Fixtures of the ledger tests; the chain they hold is built in :mod:`ledger_chain`."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledger_chain import write_chain


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    """A closed ledger file holding genesis and three market blocks (heights 0..3)."""
    path = tmp_path / "ledger.db"
    write_chain(path)
    return path
