"""Order and report intake: every submission gets one verdict, duplicates change nothing."""

from __future__ import annotations

import dataclasses

import pytest

from broker.community import Community, Member
from broker.identity import Identity
from broker.messages import MeterReport, Order, Step
from coordinator.intake import Intake

ALICE = Identity.derived("alice", 1)
BOB = Identity.derived("bob", 1)
MALLORY = Identity.derived("mallory", 1)
COMMUNITY = Community(members=(Member("alice", ALICE.public_key_hex),
                               Member("bob", BOB.public_key_hex, "consumer")))
SLOT = 100  # starts at 90000, gate closes at 89700
BEFORE_GATE = 89_000


def order(who: Identity = ALICE, slot: int = SLOT, seq: int = 0, energy: int = 1000,
          side: str = "buy") -> Order:
    return who.sign(Order(who.name, slot, seq, side, (Step(energy, 300_000),), BEFORE_GATE))


def test_a_valid_order_is_accepted_and_kept() -> None:
    intake = Intake(COMMUNITY)
    verdict = intake.submit_order(order(), "alice", BEFORE_GATE)
    assert verdict.accepted and verdict.reason == ""
    assert [o.order_id for o in intake.take_slot_orders(SLOT)] == ["alice:100:0"]


@pytest.mark.parametrize(
    ("submission", "topic_device", "now", "reason"),
    [
        (order(), "bob", BEFORE_GATE, "does not match the topic"),
        (order(MALLORY), "mallory", BEFORE_GATE, "unknown device 'mallory'"),
        (dataclasses.replace(order(), steps=(Step(5, 1),)), "alice", BEFORE_GATE, "bad signature"),
        (order(), "alice", 89_700, "late: the gate for slot 100 closed at 89700"),
        (order(slot=SLOT + 200), "alice", BEFORE_GATE, "more than 96 slots ahead"),
        (order(energy=5001), "alice", BEFORE_GATE, "exceeds the connection import limit of 5000 Wh"),
        (order(side="sell", energy=2001), "alice", BEFORE_GATE, "connection export limit of 2000"),
    ],
)
def test_bad_orders_are_rejected_with_a_reason(
    submission: Order, topic_device: str, now: int, reason: str
) -> None:
    intake = Intake(COMMUNITY)
    verdict = intake.submit_order(submission, topic_device, now)
    assert not verdict.accepted
    assert reason in verdict.reason
    assert intake.take_slot_orders(SLOT) == []


def test_a_duplicate_gets_the_first_verdict_and_changes_nothing() -> None:
    intake = Intake(COMMUNITY)
    first = intake.submit_order(order(), "alice", BEFORE_GATE)
    again = intake.submit_order(order(), "alice", 89_800)  # even after gate closure
    assert again.accepted == first.accepted and not again.first_time
    assert len(intake.take_slot_orders(SLOT)) == 1


def test_one_order_per_device_and_slot() -> None:
    intake = Intake(COMMUNITY)
    intake.submit_order(order(), "alice", BEFORE_GATE)
    second = intake.submit_order(order(seq=1), "alice", BEFORE_GATE)
    assert not second.accepted and "already in the book" in second.reason


def test_orders_for_a_cleared_slot_are_rejected() -> None:
    intake = Intake(COMMUNITY)
    intake.take_slot_orders(SLOT)
    verdict = intake.submit_order(order(), "alice", BEFORE_GATE)
    assert "already cleared" in verdict.reason


def report(slot: int = SLOT, who: Identity = ALICE) -> MeterReport:
    return who.sign(MeterReport(who.name, slot, 300, 0, 10_300, 0, 90_900))


def test_reports_are_accepted_after_their_slot_ends() -> None:
    intake = Intake(COMMUNITY)
    early = intake.submit_report(report(), "alice", 90_899)
    assert not early.accepted and "has not ended" in early.reason
    ok = intake.submit_report(report(slot=SLOT - 1), "alice", 90_000)
    assert ok.accepted
    assert intake.take_slot_reports(SLOT - 1)["alice"].import_wh == 300
    late = intake.submit_report(report(slot=SLOT - 1, who=BOB), "bob", 90_001)
    assert "already settled" in late.reason


def test_forgetting_old_slots_keeps_memory_flat() -> None:
    intake = Intake(COMMUNITY)
    for slot in range(SLOT, SLOT + 50):
        intake.submit_order(order(slot=slot), "alice", BEFORE_GATE)
    intake.forget_before(SLOT + 40)
    assert len(intake.verdicts) == 10 and min(intake.orders) >= SLOT + 40


def test_a_forged_order_cannot_claim_the_id_of_the_real_one() -> None:
    intake = Intake(COMMUNITY)
    real = order()
    forged = MALLORY.sign(dataclasses.replace(real, sig="", steps=(Step(9000, 1),)))
    refused = intake.submit_order(forged, "alice", BEFORE_GATE)
    assert (refused.accepted, refused.reason, refused.authentic) == (False, "bad signature", False)
    assert real.order_id not in intake.verdicts
    accepted = intake.submit_order(real, "alice", BEFORE_GATE)
    assert accepted.accepted and accepted.first_time
    assert intake.submit_order(forged, "alice", BEFORE_GATE).reason == "bad signature"
    assert list(intake.orders[SLOT].values()) == [real]
