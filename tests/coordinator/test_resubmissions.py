"""What the coordinator does with a member's outbox replayed late, and with a restart in
the middle of a gate closure: real SQLite store and ledger, a new Coordinator standing in
for a restarted process. Nothing is cleared, settled or recorded twice; a resubmission
gets the answers that closed the first one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from broker.messages import Award, MeterReport, Order, Result, Settlement, Step, encode
from coordinator.service import Coordinator, Outgoing
from coordinator.store import CoordinatorStore
from ledger.blocks import GENESIS_SLOT
from ledger.store import LedgerStore
from ledger.writer import LedgerWriter
from tests.coordinator.test_service import ALICE, BOSS, COMMUNITY

NOW = 89_000  # slot 100's gate closes at 89_700; slot 100 ends at 90_900
ORDER = ALICE.sign(Order("alice", 100, 0, "buy", (Step(500, 300_000),), NOW))
REPORT = ALICE.sign(MeterReport("alice", 100, 400, 0, 10_400, 0, 90_900))


def open_coordinator(tmp_path: Path, store: CoordinatorStore | None = None) -> Coordinator:
    ledger = LedgerWriter(LedgerStore(tmp_path / "ledger.db"), BOSS, COMMUNITY.ledger.difficulty_bits)
    return Coordinator(COMMUNITY, BOSS, store or CoordinatorStore(tmp_path / "coordinator.db"), ledger)


def kinds(out: list[Outgoing]) -> list[str]:
    return [o.message.TYPE for o in out]


def rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "coordinator.db") as conn:
        return conn.execute(sql).fetchall()


def run_to_settlement(coord: Coordinator) -> Settlement:
    """Slot 100 ordered, cleared, reported and settled; two more gates after."""
    coord.handle("order", "alice", encode(ORDER), NOW)
    coord.advance(89_700)  # clears slot 100
    assert coord.handle("report", "alice", encode(REPORT), 91_000) == []  # its settlement answers it
    out = coord.advance(91_500)  # gate of 102: settles slot 100
    [settlement] = [o.message for o in out if isinstance(o.message, Settlement)]
    coord.advance(92_400)  # gate of 103: the intake forgets slot 100's verdicts
    return settlement


def test_a_report_replayed_after_its_settlement_gets_the_settlement_again(tmp_path: Path) -> None:
    settlement = run_to_settlement(open_coordinator(tmp_path))
    verdicts = rows(tmp_path, "SELECT ref, accepted, reason, result FROM verdicts ORDER BY ref")
    for coord in (open_coordinator(tmp_path), open_coordinator(tmp_path)):  # after a restart, twice
        again = coord.handle("report", "alice", encode(REPORT), 93_000)
        assert [o.message for o in again] == [settlement]
        assert again[0].topic == "gm/v1/demo/dev/alice/settlement"
        assert coord.counts["report_duplicate"] == 1 and coord.counts["settlement_sent_again"] == 1
    assert rows(tmp_path, "SELECT ref, accepted, reason, result FROM verdicts ORDER BY ref") == verdicts
    assert rows(tmp_path, "SELECT count(*) FROM settlements WHERE slot = 100") == [(1,)]


def test_an_order_replayed_after_clearing_gets_its_result_and_award(tmp_path: Path) -> None:
    coord = open_coordinator(tmp_path)
    [first] = coord.handle("order", "alice", encode(ORDER), NOW)
    cleared = coord.advance(89_700)
    [award] = [o.message for o in cleared if isinstance(o.message, Award)]
    again = open_coordinator(tmp_path).handle("order", "alice", encode(ORDER), 90_000)
    assert [o.message for o in again] == [first.message, award]
    assert [o.topic for o in again] == ["gm/v1/demo/dev/alice/result", "gm/v1/demo/dev/alice/award"]
    assert rows(tmp_path, "SELECT count(*) FROM awards") == [(1,)]


def test_a_report_first_seen_after_its_slot_was_settled_is_refused(tmp_path: Path) -> None:
    coord = open_coordinator(tmp_path)
    run_to_settlement(coord)
    late = ALICE.sign(MeterReport("alice", 101, 100, 0, 10_500, 0, 91_800))
    [out] = coord.handle("report", "alice", encode(late), 93_000)
    assert isinstance(out.message, Result)
    assert (out.message.status, out.message.reason) == ("rejected", "slot 101 is already settled")


class DiesBeforeRecording(CoordinatorStore):
    """The process dies after the ledger sealed the gate's block, before the store kept it."""

    def record_gate(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("killed")


def test_a_restart_between_sealing_and_recording_clears_and_settles_once(tmp_path: Path) -> None:
    doomed = open_coordinator(tmp_path, DiesBeforeRecording(tmp_path / "coordinator.db"))
    doomed.handle("order", "alice", encode(ORDER), NOW)
    with pytest.raises(RuntimeError, match="killed"):
        doomed.advance(89_700)
    sealed = LedgerStore(tmp_path / "ledger.db").head()
    assert sealed is not None and sealed.slot == 100  # the block is in the ledger
    assert rows(tmp_path, "SELECT count(*) FROM clearings") == [(0,)]  # but not in the store

    again = open_coordinator(tmp_path).advance(89_700)  # restarted: the same gate once more
    assert kinds(again).count("clearing") == 1 and kinds(again).count("award") == 1
    ledger = LedgerStore(tmp_path / "ledger.db")
    assert ledger.head() == sealed  # the same block, not a second one
    assert [(h.height, h.slot) for h in ledger.headers()] == [(0, GENESIS_SLOT), (1, 100)]
    assert rows(tmp_path, "SELECT slot FROM clearings") == [(100,)]
    assert open_coordinator(tmp_path).advance(89_700) == []  # and never again
