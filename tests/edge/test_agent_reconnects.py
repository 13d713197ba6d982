"""The agent's core and its outbox rule around a lost broker: island slots report but
order nothing and release the battery even where a setpoint was planned; answers sent
again after a reconnect are neither counted nor watched for in the ledger twice; and each
message leaves the outbox with the answer that closes it."""

from __future__ import annotations

from pathlib import Path

from broker.messages import Award, MeterReport, Order, Result, Settlement
from broker.topics import Topics
from edge.agent_core import AgentCore
from edge.delivery import Delivery
from edge.outbox import Outbox
from tests.edge.test_agent_core import COORDINATOR, SLOT, agent, readings


def island(core: AgentCore, slot: int, import_wh: int) -> list[object]:
    actions = core.on_slot_start(slot, readings(slot * 900, import_wh, 0, 0, 0, 0), trading=False)
    assert actions.release_battery and actions.battery_setpoint_w is None and not actions.awaiting
    return list(actions.messages)


def test_an_island_slot_reports_releases_the_battery_and_orders_nothing() -> None:
    core = agent()
    core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))  # connected: plans and orders
    assert SLOT + 1 in core.plans
    messages = island(core, SLOT + 1, 1300)
    assert [type(m).__name__ for m in messages] == ["MeterReport", "Telemetry"]
    report = messages[0]
    assert isinstance(report, MeterReport) and (report.slot, report.import_wh) == (SLOT, 300)
    assert core.plans == {}  # nothing planned for a market it cannot reach
    island(core, SLOT + 2, 1500)
    assert core.plans == {} and core.counts["orders_sent"] == 1
    core.on_slot_start(SLOT + 3, readings((SLOT + 3) * 900, 1600, 0, 0, 0, 0))
    assert SLOT + 4 in core.plans  # back on the market: it plans the next slot again


def award_for(order: Order) -> Award:
    return COORDINATOR.sign(Award("h001", order.slot, order.order_id, order.side, "unfilled",
                                  order.energy_wh, 0, None, 0, "no counterpart", order.slot * 900 - 300))


def test_answers_sent_again_count_once_and_are_watched_for_once() -> None:
    core = agent()
    first = core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    order = next(m for m in first.messages if isinstance(m, Order))
    award = award_for(order)
    assert core.on_award(award) == order.order_id
    expected = dict(core.proofs.expected)  # type: ignore[union-attr]
    assert core.on_award(award) == order.order_id  # again: still answers the order
    settlement = COORDINATOR.sign(Settlement("h001", SLOT - 1, 0, 5, 5, 0, 1500, 1500, 1500))
    assert core.on_settlement(settlement) and core.on_settlement(settlement)
    assert (core.counts["award_unfilled"], core.counts["award_repeated"]) == (1, 1)
    assert (core.counts["settlements"], core.counts["settlement_repeated"]) == (1, 1)
    assert len(core.proofs.expected) == len(expected) + 1  # type: ignore[union-attr]  # the settlement once
    # Long after, a copy of an old answer is not watched for: its proof was due long ago.
    for slot in range(SLOT + 1, SLOT + 12):
        core.on_slot_start(slot, readings(slot * 900, 1000, 0, 0, 0, 0))
    assert core.counts["proof_missing"] >= 1  # no ledger here: what was expected went missing
    missing = core.counts["proof_missing"]
    core.on_award(award)
    core.on_slot_start(SLOT + 12, readings((SLOT + 12) * 900, 1000, 0, 0, 0, 0))
    assert core.counts["proof_missing"] == missing  # no false alarm for the copy


def test_each_message_leaves_the_outbox_with_the_answer_that_closes_it(tmp_path: Path) -> None:
    core = agent()
    outbox = Outbox(tmp_path / "h001.outbox.db", core.counts)
    delivery = Delivery("h001", Topics("demo"), outbox, core.counts)
    first = core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    delivery.keep(list(first.messages), SLOT * 900)  # telemetry is not kept
    second = core.on_slot_start(SLOT + 1, readings((SLOT + 1) * 900, 1300, 0, 0, 0, 0))
    delivery.keep(list(second.messages), (SLOT + 1) * 900)
    order = next(m for m in first.messages if isinstance(m, Order))
    report = next(m for m in second.messages if isinstance(m, MeterReport))
    assert [(e.kind, e.topic) for e in delivery.waiting()] == [
        ("order", "gm/v1/demo/dev/h001/order"), ("report", "gm/v1/demo/dev/h001/report")]
    accepted = COORDINATOR.sign(Result("h001", order.order_id, "order", "accepted", "", 0))
    delivery.on_result(accepted)
    assert len(outbox) == 2  # accepted, but its award is still to come
    delivery.on_award(award_for(order))
    assert [e.ref for e in outbox.waiting()] == [report.report_id]
    delivery.on_settlement(COORDINATOR.sign(Settlement("h001", SLOT, 0, 300, 300, 0, 0, 0, 0)))
    assert len(outbox) == 0
    delivery.keep([order, report], (SLOT + 1) * 900)
    delivery.on_result(COORDINATOR.sign(Result("h001", order.order_id, "order", "rejected", "late", 0)))
    delivery.on_result(COORDINATOR.sign(Result("h001", report.report_id, "report", "rejected", "x", 0)))
    assert len(outbox) == 0  # a refusal closes either
    assert core.counts["outbox_replayed"] == 2  # what waiting() handed out to publish again
