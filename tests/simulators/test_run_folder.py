"""Opening a run folder: what is missing or from another version is named."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from simulators.results import COLUMNS, write_results
from simulators.run_folder import RESULTS_FORMAT, RunFolderError, finished_marker, open_run


def make_run(path: Path) -> Path:
    path.mkdir()
    write_results(path, {name: [] for name in COLUMNS})
    (path / "summary.json").write_text(json.dumps({"households": 4}))
    (path / "ledger.db").write_bytes(b"")
    (path / "run.json").write_text(finished_marker(seed=7))
    return path


def test_a_finished_run_opens_with_its_marker_and_summary(tmp_path: Path) -> None:
    run = open_run(make_run(tmp_path / "run"))
    assert run.marker["seed"] == 7 and run.marker["results_format"] == RESULTS_FORMAT
    assert run.summary == {"households": 4}
    assert run.compare is None


def test_empty_tables_are_written_with_their_columns(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    with sqlite3.connect(tmp_path / "run" / "results.db") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(trades)")]
    assert tuple(columns) == COLUMNS["trades"]


@pytest.mark.parametrize(("spoil", "problem"), [
    (lambda p: (p / "run.json").unlink(), "no run.json; not a testbed run's output folder"),
    (lambda p: (p / "run.json").write_text('{"status": "running"}'), "the run did not finish"),
    (lambda p: (p / "run.json").write_text('{"status": "finished", "seed": 1}'),
     "written by gridmesh an earlier version in results format 0"),
    (lambda p: (p / "run.json").write_text("[1]"), "run.json is not a JSON object"),
    (lambda p: (p / "summary.json").unlink(), "missing summary.json"),
    (lambda p: ((p / "results.db").unlink(), (p / "ledger.db").unlink()), "missing results.db, ledger.db"),
    (lambda p: sqlite3.connect(p / "results.db").execute("DROP TABLE kpis"), "lacks the table(s) kpis"),
    (lambda p: (p / "results.db").write_bytes(b"not a database" * 100), "results.db cannot be read"),
])
def test_what_is_wrong_with_a_run_folder_is_named(tmp_path: Path, spoil: object, problem: str) -> None:
    path = make_run(tmp_path / "run")
    spoil(path)  # type: ignore[operator]
    with pytest.raises(RunFolderError, match=r"run folder .*run: ") as caught:
        open_run(path)
    assert problem in str(caught.value)


def test_a_path_that_is_not_a_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="no such folder"):
        open_run(tmp_path / "nowhere")
