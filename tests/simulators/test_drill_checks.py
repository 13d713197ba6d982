"""What every drill checks, on made-up evidence: a run that lost nothing passes every
check, and each kind of loss or duplicate fails its check, naming what went wrong."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from simulators.drill_checks import (
    LedgerTx,
    RunEvidence,
    chain_contiguous,
    common_checks,
    every_slot_cleared_once,
    market_resumed,
    metered_slots_settled_once,
    orders_awarded_once,
    outboxes_flushed,
)
from simulators.drill_report import Check, DrillReport

SLOTS = range(100, 104)
HOUSES = ("h001", "h002")


def clearing(slot: int) -> dict[str, Any]:
    return {"type": "clearing", "slot": slot, "price_u_per_kwh": 150_000}


def settlement(device: str, slot: int, metered: int | None) -> dict[str, Any]:
    return {"type": "settlement", "device": device, "slot": slot, "metered_wh": metered}


def order(device: str, slot: int) -> dict[str, Any]:
    return {"type": "order", "device": device, "slot": slot, "seq": 1}


def healthy() -> RunEvidence:
    """Two households, four slots: one order each per slot, everything settled once."""
    truth = {(h, s): 10 * s + i for i, h in enumerate(HOUSES) for s in SLOTS}
    ledger = [LedgerTx(0, "community", {})]
    for height, slot in enumerate(SLOTS, start=1):
        ledger += [LedgerTx(height, "order", order(h, slot)) for h in HOUSES]
        ledger.append(LedgerTx(height, "clearing", clearing(slot)))
        ledger += [LedgerTx(height, "settlement", settlement(h, slot, truth[h, slot])) for h in HOUSES]
    return RunEvidence(
        run_slots=SLOTS, households=HOUSES, strike_slot=101, metered_truth=truth, excused={},
        clearings={s: json.dumps(clearing(s)) for s in SLOTS},
        settlements={(h, s): json.dumps(settlement(h, s, truth[h, s])) for h in HOUSES for s in SLOTS},
        accepted_orders={f"{h}:{s}:1": s for h in HOUSES for s in SLOTS},
        award_rows=[f"{h}:{s}:1" for h in HOUSES for s in SLOTS],
        block_heights=list(range(len(SLOTS) + 1)), block_slots=[0, *SLOTS], ledger=ledger,
        outbox_left={h: [] for h in HOUSES})


def failed(check: Check) -> str:
    assert check.outcome == "failed", check
    return check.detail


def test_a_run_that_lost_nothing_passes_every_check() -> None:
    checks = common_checks(healthy())
    assert [c.outcome for c in checks] == ["passed"] * 6, checks
    report = DrillReport("coordinator-kill", "test", "runs/x", ["killed"], checks)
    assert report.passed and report.lines()[-1].startswith("drill coordinator-kill passed")


def test_a_slot_settled_twice_in_the_ledger_fails_naming_it() -> None:
    ev = healthy()
    twice = [*ev.ledger, LedgerTx(4, "settlement", settlement("h002", 101, ev.metered_truth["h002", 101]))]
    detail = failed(metered_slots_settled_once(dataclasses.replace(ev, ledger=twice)))
    assert detail == "h002 slot 101 settled 2 time(s)"


def test_a_lost_report_fails_unless_the_drill_excused_its_slot() -> None:
    ev = healthy()
    lost = [tx for tx in ev.ledger if not (tx.kind == "settlement" and tx.body["device"] == "h001"
                                           and tx.body["slot"] == 102)]
    assert failed(metered_slots_settled_once(dataclasses.replace(ev, ledger=lost))) == \
        "h001 slot 102 settled 0 time(s)"
    excused = dataclasses.replace(ev, ledger=lost, excused={("h001", 102): "the agent was dead"})
    check = metered_slots_settled_once(excused)
    assert check.outcome == "passed" and "not metered: h001 slot 102 (the agent was dead)" in check.detail


def test_a_settlement_on_other_energy_than_flowed_fails() -> None:
    ev = healthy()
    wrong = [LedgerTx(tx.height, tx.kind, settlement("h001", 100, 999))
             if tx.kind == "settlement" and tx.body["device"] == "h001" and tx.body["slot"] == 100 else tx
             for tx in ev.ledger]
    detail = failed(metered_slots_settled_once(dataclasses.replace(ev, ledger=wrong)))
    assert "h001 slot 100 settled on 999 Wh, the meter saw 1000 Wh" in detail


def test_a_missing_or_repeated_clearing_fails() -> None:
    ev = healthy()
    missing = dict(ev.clearings)
    del missing[103]
    detail = failed(every_slot_cleared_once(dataclasses.replace(ev, clearings=missing)))
    assert detail.startswith("no clearing: slot(s) 103;")  # and the ledger has one the database lacks
    again = [*ev.ledger, LedgerTx(4, "clearing", {**clearing(102), "price_u_per_kwh": 1})]
    detail = failed(every_slot_cleared_once(dataclasses.replace(ev, ledger=again)))
    assert "cleared twice in the ledger: slot(s) 102" in detail
    assert "the ledger's clearing differs from the coordinator's: slot(s) 102" in detail


def test_an_order_without_its_award_or_twice_in_the_ledger_fails() -> None:
    ev = healthy()
    no_award = dataclasses.replace(ev, award_rows=[r for r in ev.award_rows if r != "h002:103:1"])
    assert failed(orders_awarded_once(no_award)) == "h002:103:1 has 0 award(s)"
    twice = dataclasses.replace(ev, ledger=[*ev.ledger, LedgerTx(5, "order", order("h001", 100))])
    assert failed(orders_awarded_once(twice)) == "h001:100:1 is in the ledger 2 time(s)"


def test_a_gap_in_heights_or_a_slot_sealed_again_later_fails() -> None:
    ev = healthy()
    assert failed(chain_contiguous(dataclasses.replace(ev, block_heights=[0, 1, 2, 4, 5]))) == \
        "heights jump: 2->4"
    detail = failed(chain_contiguous(dataclasses.replace(ev, block_slots=[0, 100, 101, 100, 103])))
    assert detail == "a slot sealed again after a later one: height 3: slot 100 after 101"


def test_an_outbox_with_messages_left_fails_naming_them() -> None:
    ev = dataclasses.replace(healthy(), outbox_left={"h001": [], "h002": ["h002:102:report"]})
    assert failed(outboxes_flushed(ev)) == "still waiting: h002: h002:102:report"


def test_a_market_without_orders_after_the_strike_has_not_resumed() -> None:
    ev = healthy()
    before = {ref: slot for ref, slot in ev.accepted_orders.items() if slot <= 101}
    assert failed(market_resumed(dataclasses.replace(ev, accepted_orders=before))).startswith("0 order(s)")
    assert market_resumed(dataclasses.replace(ev, strike_slot=103)).outcome == "skipped"
