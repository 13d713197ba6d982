"""The coordinator's handling of payloads, with a real SQLite store and ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.community import Community, Member
from broker.identity import Identity
from broker.messages import MeterReport, Order, Result, Step, encode
from coordinator.service import Coordinator
from coordinator.store import CoordinatorStore
from ledger.store import LedgerStore
from ledger.writer import LedgerWriter

ALICE = Identity.derived("alice", 1)
BOSS = Identity.derived("coordinator", 1)
COMMUNITY = Community(coordinator_key=BOSS.public_key_hex,
                      members=(Member("alice", ALICE.public_key_hex),))
NOW = 89_000  # slot 100's gate closes at 89700


def coordinator(tmp_path: Path) -> Coordinator:
    ledger = LedgerWriter(LedgerStore(tmp_path / "ledger.db"), BOSS, COMMUNITY.ledger.difficulty_bits)
    return Coordinator(COMMUNITY, BOSS, CoordinatorStore(tmp_path / "coordinator.db"), ledger)


def only_result(out: list) -> Result:  # type: ignore[type-arg]
    assert len(out) == 1 and out[0].topic == "gm/v1/demo/dev/alice/result"
    assert isinstance(out[0].message, Result)
    return out[0].message


def test_a_malformed_payload_is_rejected_on_the_result_topic(tmp_path: Path) -> None:
    coord = coordinator(tmp_path)
    result = only_result(coord.handle("order", "alice", b'{"schema":1,"type":"order"', NOW))
    assert result.status == "rejected" and "not JSON" in result.reason
    assert coord.counts["payload_rejected"] == 1


def test_a_payload_of_the_wrong_type_starts_nothing(tmp_path: Path) -> None:
    coord = coordinator(tmp_path)
    status = b'{"device":"alice","schema":1,"state":"online","t_s":0,"type":"status"}'
    result = only_result(coord.handle("report", "alice", status, 0))
    assert result.status == "rejected" and "expected 'report'" in result.reason
    assert coord.ledger.store.head() is None and coord.next_gate_slot is None


def test_an_unsigned_order_is_rejected_and_the_coordinator_goes_on(tmp_path: Path) -> None:
    coord = coordinator(tmp_path)
    unsigned = Order("alice", 100, 0, "buy", (Step(500, 300_000),), NOW)
    result = only_result(coord.handle("order", "alice", encode(unsigned), NOW))
    assert (result.status, result.reason) == ("rejected", "bad signature")
    good = ALICE.sign(Order("alice", 100, 1, "buy", (Step(500, 300_000),), NOW))
    accepted = only_result(coord.handle("order", "alice", encode(good), NOW))
    assert accepted.status == "accepted" and accepted.ref == "alice:100:1"


def test_a_duplicate_gets_the_very_first_result(tmp_path: Path) -> None:
    coord = coordinator(tmp_path)
    order = encode(ALICE.sign(Order("alice", 100, 0, "buy", (Step(500, 300_000),), NOW)))
    first = only_result(coord.handle("order", "alice", order, NOW))
    again = only_result(coord.handle("order", "alice", order, NOW + 100))
    assert again == first


def test_gate_closure_awards_every_order_and_seals_a_block(tmp_path: Path) -> None:
    coord = coordinator(tmp_path)
    order = ALICE.sign(Order("alice", 100, 0, "buy", (Step(500, 300_000),), NOW))
    coord.handle("order", "alice", encode(order), NOW)
    out = coord.advance(89_700)
    kinds = [o.message.TYPE for o in out]
    assert kinds.count("clearing") == 1 and kinds.count("award") == 1 and kinds.count("block") == 1
    # whole blocks for replicas (the genesis, once per process, and this slot's), then each
    # member's inclusion proofs: alice's order and award, in one message
    assert kinds.count("blockdata") == 2
    proofs = [o for o in out if o.message.TYPE == "proof"]
    [proof] = [o.message for o in proofs]  # one message per member and block
    assert sorted(i.tx_kind for i in proof.items) == ["award", "order"]  # type: ignore[attr-defined]
    assert coord.store.progress("cleared_through") == 100


def test_submissions_handled_together_are_committed_together(tmp_path: Path) -> None:
    coord = coordinator(tmp_path)
    orders = [encode(ALICE.sign(Order("alice", 100, seq, "buy", (Step(500, 300_000),), NOW)))
              for seq in range(2)]
    out = coord.handle_many([("order", "alice", orders[0]), ("order", "alice", b"junk"),
                             ("order", "alice", orders[1])], NOW)
    statuses = [(o.message.ref, o.message.status) for o in out if isinstance(o.message, Result)]
    assert statuses == [("alice:100:0", "accepted"), ("", "rejected"), ("alice:100:1", "rejected")]
    reopened = CoordinatorStore(tmp_path / "coordinator.db")
    assert reopened.result_for("alice:100:0") == out[0].message
    assert reopened.result_for("alice:100:1") == out[2].message


def test_a_failed_batch_records_nothing(tmp_path: Path) -> None:
    store = CoordinatorStore(tmp_path / "coordinator.db")
    coord = Coordinator(COMMUNITY, BOSS, store, LedgerWriter(
        LedgerStore(tmp_path / "ledger.db"), BOSS, COMMUNITY.ledger.difficulty_bits))
    order = encode(ALICE.sign(Order("alice", 100, 0, "buy", (Step(500, 300_000),), NOW)))
    with pytest.raises(RuntimeError), store.batch():
        coord.handle("order", "alice", order, NOW)
        raise RuntimeError("the process dies before the commit")
    assert CoordinatorStore(tmp_path / "coordinator.db").result_for("alice:100:0") is None


def test_a_report_of_the_running_slot_can_be_held_for_the_next_tick(tmp_path: Path) -> None:
    (tmp_path / "held").mkdir()
    (tmp_path / "at-once").mkdir()
    coord = coordinator(tmp_path / "held")
    running = encode(ALICE.sign(MeterReport("alice", 98, 120, 0, 1120, 0, NOW)))  # slot 98 ends at 89100
    later = encode(ALICE.sign(MeterReport("alice", 99, 120, 0, 1240, 0, NOW)))  # slot 99 ends at 90000
    held: list[tuple[str, str, bytes]] = []
    out = coord.handle_many([("report", "alice", running), ("report", "alice", later)], NOW, held)
    assert held == [("report", "alice", running)]  # unjudged: no answer, nothing counted
    assert "slot 99 has not ended yet" in only_result(out).reason  # a later slot's is refused as ever
    assert coord.counts["report_accepted"] == 0
    assert coord.handle_many(held, 89_100) == [] and coord.counts["report_accepted"] == 1
    # Without a place to hold it, the running slot's report is judged at once.
    at_once = coordinator(tmp_path / "at-once")
    assert "slot 98 has not ended yet" in only_result(at_once.handle("report", "alice", running, NOW)).reason
