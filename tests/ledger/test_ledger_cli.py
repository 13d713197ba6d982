"""``gridmesh ledger audit`` and ``gridmesh ledger show`` through the real ``gridmesh`` entry point.

The parser is built with only this package's verbs so that these tests do not depend
on other packages being importable; the dispatch, error handling and exit codes are
those of :func:`gridmesh.cli.main`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import gridmesh.cli
from ledger.store import LedgerStore


@pytest.fixture(autouse=True)
def only_ledger_verbs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gridmesh.cli, "COMMAND_MODULES", ("ledger.cli",))


def run(*argv: str) -> int:
    return gridmesh.cli.main(list(argv))


def test_audit_passes_with_a_summary(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ledger", "audit", str(ledger_path)) == 0
    out, err = capsys.readouterr()
    with LedgerStore.open_readonly(ledger_path) as store:
        head = list(store.blocks())[-1]
    assert err == ""
    assert "blocks            4\n" in out
    assert "transactions      26 (award 9, clearing 3, community 1, order 9, report 2, settlement 2)" in out
    assert "members           3\n" in out
    assert "slots             1888000..1888002\n" in out
    assert f"head              height 3, hash {head.hash}\n" in out
    assert out.endswith("audit passed\n")


def test_audit_names_the_first_bad_block_and_transaction(
    ledger_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = sqlite3.connect(ledger_path)
    with conn:
        conn.execute("DELETE FROM transactions WHERE height = 2 AND idx = 3")
        conn.execute("UPDATE blocks SET difficulty_bits = 1 WHERE height = 3")
    conn.close()
    assert run("ledger", "audit", str(ledger_path)) == 1
    out, err = capsys.readouterr()
    assert "audit passed" not in out
    assert err == "audit FAILED: block 2, transaction 3: transaction missing from the store\n"


def test_audit_of_random_bytes_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"\x89not a database" * 300)
    assert run("ledger", "audit", str(path)) == 2
    err = capsys.readouterr().err
    assert err == f"gridmesh ledger: {path}: not a readable SQLite ledger (file is not a database)\n"


def test_audit_of_a_truncated_file_exits_2(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ledger_path.read_bytes()
    ledger_path.write_bytes(data[: len(data) * 2 // 3])
    assert run("ledger", "audit", str(ledger_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gridmesh ledger: {ledger_path}: ") and "malformed" in err
    assert err.count("\n") == 1


def test_audit_of_an_unknown_version_exits_2(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conn = sqlite3.connect(ledger_path)
    conn.execute("PRAGMA user_version=7")
    conn.close()
    assert run("ledger", "audit", str(ledger_path)) == 2
    assert capsys.readouterr().err == (
        f"gridmesh ledger: {ledger_path}: unknown ledger schema version 7 (this build reads version 2)\n"
    )


def test_audit_of_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ledger", "audit", str(tmp_path / "nope.db")) == 2
    assert capsys.readouterr().err == f"gridmesh ledger: {tmp_path / 'nope.db'}: no such ledger file\n"
    assert not (tmp_path / "nope.db").exists()


def test_show_lists_every_header(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ledger", "show", str(ledger_path)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["height", "slot", "t_s", "txs", "bits", "nonce", "hash"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["0", "-1"], ["1", "1888000"], ["2", "1888001"], ["3", "1888002"],
    ]


def test_show_one_block_lists_its_transactions(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ledger", "show", str(ledger_path), "--block", "3") == 0
    out = capsys.readouterr().out
    with LedgerStore.open_readonly(ledger_path) as store:
        block = store.block(3)
    assert block is not None
    for index, tx in enumerate(block.transactions):
        assert f"{index:>5}  {tx.kind:<10}  {tx.tx_hash}  {tx.label()}" in out
    assert "settlement h001:1888000" in out


def test_show_a_block_that_does_not_exist(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ledger", "show", str(ledger_path), "--block", "9") == 2
    assert capsys.readouterr().err == f"gridmesh ledger: {ledger_path} has no block 9\n"


def test_every_ledger_verb_has_an_example_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("audit", "show"):
        with pytest.raises(SystemExit) as exit_info:
            run("ledger", verb, "--help")
        assert exit_info.value.code == 0
        assert f"gridmesh ledger {verb} runs/" in capsys.readouterr().out


def test_ledger_without_an_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ledger") == 2
    assert "audit" in capsys.readouterr().out
