"""The refusal labels the coordinator counts (metrics): every reason its intake really
gives, from bad submissions fed to the pure intakes, gets its own label, and every label
is given to one of them. A change of wording in the intake that a pattern no longer
matches fails here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from broker.community import Rules
from broker.messages import Order, Result, Settlement, encode
from coordinator.intake import Intake, Verdict
from coordinator.rejections import LABELS, OTHER, reason_label
from coordinator.standing import Standing
from tests.coordinator.test_intake import BEFORE_GATE, COMMUNITY, MALLORY, SLOT, order, report
from tests.coordinator.test_service import coordinator
from tests.coordinator.test_share_intake import ALICE, CROSS, GRAM, NOW, STORE, intake, share


def order_refusals() -> list[tuple[str, Verdict]]:
    def refuse(submission: Order | None = None, topic: str = "alice", now_s: int = BEFORE_GATE,
               books: Intake | None = None) -> Verdict:
        return (books or Intake(COMMUNITY)).submit_order(submission or order(), topic, now_s)

    cleared = Intake(COMMUNITY)
    cleared.take_slot_orders(SLOT)
    booked = Intake(COMMUNITY)
    assert booked.submit_order(order(), "alice", BEFORE_GATE).accepted
    standing = Standing(Rules(min_balance_u=-1, exclusion_slots=4))
    assert standing.record(Settlement("alice", SLOT - 2, 0, 100, 100, 0, 5, 5, 5), SLOT - 1) is not None
    return [
        ("wrong_topic", refuse(topic="bob")),
        ("unknown_device", refuse(order(MALLORY), "mallory")),
        ("bad_signature", refuse(dataclasses.replace(order(), seq=1))),
        ("already_cleared", refuse(books=cleared)),
        ("late", refuse(now_s=89_700)),
        ("too_far_ahead", refuse(order(slot=SLOT + 200))),
        ("excluded", refuse(books=Intake(COMMUNITY, standing=standing))),
        ("over_limit", refuse(order(energy=5001))),
        ("over_limit", refuse(order(side="sell", energy=2001))),
        ("one_order_per_slot", refuse(order(seq=1), books=booked)),
    ]


def report_refusals() -> list[tuple[str, Verdict]]:
    settled = Intake(COMMUNITY)
    settled.take_slot_reports(SLOT)
    return [
        ("slot_not_ended", Intake(COMMUNITY).submit_report(report(), "alice", BEFORE_GATE)),
        ("already_settled", settled.submit_report(report(), "alice", 91_000)),
    ]


def share_refusals() -> list[tuple[str, Verdict]]:
    pv = ALICE.sign(dataclasses.replace(share(), kind="pv"))
    return [(label, intake().submit(submission, topic, now_s)) for label, submission, topic, now_s in [
        ("round_closed", share(), "alice", 90_900),
        ("round_closed", share(), "alice", 89_699),  # not open yet
        ("bad_share", share(STORE), "s001", NOW),
        ("bad_share", pv, "alice", NOW),
        ("bad_share", share(rows=4), "alice", NOW),
        ("bad_share", share(windows=4), "alice", NOW),
        ("bad_share", share(xtx_text="%%%"), "alice", NOW),
        ("bad_share", share(xty_text="%%%"), "alice", NOW),
        ("bad_share", share(windows=9, xtx=GRAM, xty=CROSS), "alice", NOW),
    ]]


REFUSALS = [*order_refusals(), *report_refusals(), *share_refusals()]


@pytest.mark.parametrize(("label", "verdict"), REFUSALS, ids=[label for label, _ in REFUSALS])
def test_each_reason_the_intakes_give_has_its_label(label: str, verdict: Verdict) -> None:
    assert not verdict.accepted
    assert reason_label(verdict.reason) == label, verdict.reason


def test_a_share_without_federated_rounds_is_counted_by_its_label(tmp_path: Path) -> None:
    coord = coordinator(tmp_path)  # a community without forecasting rounds
    [answer] = coord.handle("share", "alice", encode(share()), NOW)
    assert isinstance(answer.message, Result) and answer.message.status == "rejected"
    assert coord.rejections == {("share", "federated_off"): 1}


def test_every_label_is_one_the_coordinator_gives() -> None:
    given = {label for label, _ in REFUSALS} | {"federated_off"}
    assert given == set(LABELS) - {OTHER}
    assert reason_label("something new") == OTHER
