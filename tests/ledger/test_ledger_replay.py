"""The audit's replay on a real run's ledger: it passes as written, and a coordinator that
signs and mines a wrong price, bill or award (so every structural check still passes) is
caught at the exact block, transaction and field."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from broker.identity import Identity
from broker.messages import Award, Clearing, Settlement
from gridmesh.cli import main
from ledger.blocks import Block, build_block
from ledger.replay import ReplayDifference, ReplayReport, replay_chain
from ledger.store import LedgerStore
from ledger.transactions import Transaction
from ledger.verify import AuditSummary, verify_chain

pytestmark = [pytest.mark.slow, pytest.mark.broker]
SEED = 11

Mutation = Callable[[Block, Identity], list[Transaction] | None]


@pytest.fixture(scope="module")
def run_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "run"
    assert main(["testbed", "--households", "6", "--slots", "6", "--seed", str(SEED), "--start",
                 "2016-06-06T10:00", "--out", str(out), "--json"]) == 0
    return out / "ledger.db"


def resealed(source: Path, target: Path, mutate: Mutation) -> Path:
    """A copy of the chain in which the first block ``mutate`` changes (returning its new
    transactions) and every block after it are signed and mined again with the
    coordinator's own key: a dishonest coordinator's chain."""
    coordinator = Identity.derived("coordinator", SEED)
    changed = False
    with LedgerStore.open_readonly(source) as old, LedgerStore(target) as new:
        prev = None
        for block in old.blocks():
            txs = None if changed else mutate(block, coordinator)
            if txs is not None or changed:
                changed = True
                block = build_block(prev, block.header.slot, block.header.t_s,
                                    txs if txs is not None else block.transactions,
                                    block.header.difficulty_bits, coordinator)
            new.append(block)
            prev = block.header
    assert changed
    return target


def blocks(path: Path) -> list[Block]:
    with LedgerStore.open_readonly(path) as store:
        return list(store.blocks())


def first(kind: str) -> Callable[[Block], int | None]:
    def find(block: Block) -> int | None:
        return next((i for i, tx in enumerate(block.transactions) if tx.kind == kind), None)
    return find


def rewrite(kind: str, change: Callable[[object], object]) -> Mutation:
    """Change the first ``kind`` transaction of the first block that has one, re-signed."""
    def mutate(block: Block, coordinator: Identity) -> list[Transaction] | None:
        index = first(kind)(block)
        if index is None or block.height == 0:
            return None
        txs = list(block.transactions)
        altered = change(txs[index].message())
        txs[index] = Transaction.from_message(kind, coordinator.sign(altered))  # type: ignore[arg-type]
        return txs
    return mutate


def test_the_run_replays_exactly_and_the_report_covers_every_slot_and_member(run_ledger: Path) -> None:
    report = replay_chain(blocks(run_ledger))
    assert isinstance(report, ReplayReport)
    assert len(report.slots) == len(blocks(run_ledger)) - 1
    assert {m for m in report.members if m != "grid"} <= {f"h00{i}" for i in range(1, 7)}
    assert sum(s.orders for s in report.slots) > 0


def check(path: Path) -> ReplayDifference:
    assert isinstance(verify_chain(blocks(path)), AuditSummary)  # every structural check passes
    difference = replay_chain(blocks(path))
    assert isinstance(difference, ReplayDifference)
    return difference


def test_a_changed_clearing_price_is_named(run_ledger: Path, tmp_path: Path) -> None:
    def cheaper(msg: object) -> object:
        assert isinstance(msg, Clearing)
        return dataclasses.replace(msg, price_u_per_kwh=(msg.price_u_per_kwh or 0) + 1)

    difference = check(resealed(run_ledger, tmp_path / "x.db", rewrite("clearing", cheaper)))
    assert "clearing.price_u_per_kwh recorded" in difference.what
    bad = blocks(tmp_path / "x.db")[difference.height]
    assert difference.tx_index is not None and bad.transactions[difference.tx_index].kind == "clearing"
    assert difference.tx_hash == bad.transactions[difference.tx_index].tx_hash


def test_a_changed_bill_is_named(run_ledger: Path, tmp_path: Path) -> None:
    def dearer(msg: object) -> object:
        assert isinstance(msg, Settlement)
        return dataclasses.replace(msg, bill_u=msg.bill_u + 1000)

    difference = check(resealed(run_ledger, tmp_path / "x.db", rewrite("settlement", dearer)))
    assert "settlement.bill_u recorded" in difference.what and difference.tx_index is not None


def test_an_award_changed_in_the_winners_favour_is_named(run_ledger: Path, tmp_path: Path) -> None:
    def more(msg: object) -> object:
        assert isinstance(msg, Award)
        return dataclasses.replace(msg, amount_u=msg.amount_u - 500)

    difference = check(resealed(run_ledger, tmp_path / "x.db", rewrite("award", more)))
    assert "award.amount_u recorded" in difference.what


def test_a_deleted_settlement_is_missed(run_ledger: Path, tmp_path: Path) -> None:
    def drop(block: Block, _: Identity) -> list[Transaction] | None:
        index = first("settlement")(block)
        if index is None:
            return None
        return [tx for i, tx in enumerate(block.transactions) if i != index]

    difference = check(resealed(run_ledger, tmp_path / "x.db", drop))
    assert "is missing" in difference.what and "settlement of slot" in difference.what


def test_the_cli_replays_and_names_the_difference(run_ledger: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "audit", str(run_ledger), "--replay"]) == 0
    assert "replay passed:" in capsys.readouterr().out

    def cheaper(msg: object) -> object:
        assert isinstance(msg, Clearing)
        return dataclasses.replace(msg, price_u_per_kwh=(msg.price_u_per_kwh or 0) + 1)

    bad = resealed(run_ledger, tmp_path / "x.db", rewrite("clearing", cheaper))
    assert main(["ledger", "audit", str(bad)]) == 0  # structurally sound
    assert main(["ledger", "audit", str(bad), "--replay"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("replay FAILED: block ") and "clearing.price_u_per_kwh recorded" in err


def test_a_members_statement_and_an_inclusion_proof(
    run_ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ledger", "show", str(run_ledger), "--member", "h001"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("statement of h001") and "settlement  bill" in out and "billed" in out
    assert main(["ledger", "show", str(run_ledger), "--member", "h999"]) == 2
    settlement = next(tx for block in blocks(run_ledger) for tx in block.transactions
                      if tx.kind == "settlement")
    assert main(["ledger", "proof", str(run_ledger), settlement.tx_hash[:10]]) == 0
    out = capsys.readouterr().out
    assert f"transaction {settlement.tx_hash}" in out and out.rstrip().endswith("proof verifies")
    assert main(["ledger", "proof", str(run_ledger), "0" * 12]) == 2
    assert "holds no transaction" in capsys.readouterr().err
