"""The agent's slot cycle as a scenario: readings in, signed messages and setpoints out."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from broker.community import Community, Member
from broker.identity import Identity, Verifier
from broker.messages import Award, MeterReport, Order, Result, Telemetry
from edge.agent_core import AgentCore
from edge.forecast import SeasonalNaive
from edge.readings import BatteryReading, InverterReading, MeterReading, Readings

ME = Identity.derived("h001", 1)
COORDINATOR = Identity.derived("coordinator", 1)
COMMUNITY = Community(coordinator_key=COORDINATOR.public_key_hex,
                      members=(Member("h001", ME.public_key_hex),))
SLOT = 1000


def readings(t_s: int, import_wh: int, export_wh: int, pv_wh: int, charge: int, discharge: int,
             stored: int = 2500, meter_ok: bool = True) -> Readings:
    return Readings(
        t_s,
        MeterReading(4000, import_wh, export_wh) if meter_ok else None,
        InverterReading(1200, pv_wh, 5000),
        BatteryReading(stored, 5000, 50, 0, 2500, 2500, 10, 90, charge, discharge),
        has_inverter=True, has_battery=True,
    )


def agent(**kwargs: object) -> AgentCore:
    return AgentCore("h001", COMMUNITY, ME, SeasonalNaive(), **kwargs)  # type: ignore[arg-type]


def test_first_slot_orders_but_cannot_report_yet() -> None:
    core = agent()
    actions = core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    kinds = [type(m) for m in actions.messages]
    assert MeterReport not in kinds and Telemetry in kinds
    # Nothing was planned for this slot: the battery keeps to its own self-consumption.
    assert actions.release_battery and actions.battery_setpoint_w is None
    orders = [m for m in actions.messages if isinstance(m, Order)]
    assert len(orders) == 1 and orders[0].slot == SLOT + 1
    assert actions.awaiting == {orders[0].order_id}
    assert Verifier().verify(orders[0], ME.public_key_hex)


def test_second_slot_reports_the_metered_energy_and_applies_the_plan() -> None:
    core = agent()
    core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    planned = core.plans[SLOT + 1]
    actions = core.on_slot_start(SLOT + 1, readings((SLOT + 1) * 900, 1300, 50, 200, 0, 100))
    report = next(m for m in actions.messages if isinstance(m, MeterReport))
    assert (report.slot, report.import_wh, report.export_wh) == (SLOT, 300, 50)
    assert (report.import_total_wh, report.export_total_wh) == (1300, 50)
    # The battery follows the household on its own; the plan only sized the order.
    assert planned.battery_w is None and actions.release_battery and actions.battery_setpoint_w is None
    assert core.counts["self_consumption_fallback"] == 0  # that is normal running, not a fallback
    assert report.report_id not in actions.awaiting  # only a refusal would answer it
    # The history learnt load = net + pv + battery discharge = 250 + 200 + 100.
    learnt = core.history.get(SLOT)
    assert learnt is not None and (learnt.load_wh, learnt.pv_wh) == (550, 200)


def test_stale_meter_means_no_order_and_the_battery_falls_back_to_self_consumption() -> None:
    core = agent()
    core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    assert core.plans[SLOT + 1].side is not None  # a plan was made on fresh data
    actions = core.on_slot_start(SLOT + 1, readings((SLOT + 1) * 900, 0, 0, 0, 0, 0, meter_ok=False))
    assert not any(isinstance(m, Order) for m in actions.messages)
    assert actions.release_battery and actions.battery_setpoint_w is None
    assert core.counts["self_consumption_fallback"] == 1
    assert core.plans[SLOT + 2].battery_w is None  # and it plans no setpoint on stale data


def test_counters_going_backwards_produce_no_report() -> None:
    core = agent()
    core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    actions = core.on_slot_start(SLOT + 1, readings((SLOT + 1) * 900, 10, 0, 0, 0, 0))
    assert not any(isinstance(m, MeterReport) for m in actions.messages)
    assert core.counts["counter_reset"] == 1


def test_orders_stop_after_the_last_order_slot() -> None:
    core = agent(last_order_slot=SLOT)
    actions = core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    assert not any(isinstance(m, Order) for m in actions.messages)


def test_awards_and_results_must_carry_the_coordinators_signature() -> None:
    core = agent()
    actions = core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    order = next(m for m in actions.messages if isinstance(m, Order))
    award = Award("h001", SLOT + 1, order.order_id, order.side, "filled", order.energy_wh,
                  order.energy_wh, 300_000, 1, "", 1)
    assert core.award_expected(SLOT + 1) == order.order_id
    assert core.on_award(award) is None  # unsigned
    assert core.counts["bad_coordinator_signature"] == 1
    assert core.on_award(COORDINATOR.sign(award)) == order.order_id
    assert core.award_expected(SLOT + 1) is None


def test_a_rejected_order_expects_no_award() -> None:
    core = agent()
    actions = core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    order = next(m for m in actions.messages if isinstance(m, Order))
    result = COORDINATOR.sign(Result("h001", order.order_id, "order", "rejected", "late", 1))
    assert core.on_result(result) == order.order_id
    assert core.award_expected(SLOT + 1) is None


def test_orders_are_capped_at_the_connection_limit() -> None:
    tight = dataclasses.replace(
        COMMUNITY, members=(dataclasses.replace(COMMUNITY.members[0], limits=dataclasses.replace(
            COMMUNITY.members[0].limits, import_limit_w=400)),))
    core = AgentCore("h001", tight, ME, SeasonalNaive())
    big = dataclasses.replace(readings(SLOT * 900, 0, 0, 0, 0, 0, stored=500),
                              meter=MeterReading(9000, 0, 0))
    actions = core.on_slot_start(SLOT, big)
    order = next(m for m in actions.messages if isinstance(m, Order))
    assert order.energy_wh == 100  # 400 W for 900 s


def test_a_frozen_meter_gives_no_report_and_is_planned_around_as_stale() -> None:
    core = agent()
    core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    # 4 kW flowing on both readings, yet the counters have not moved: not live values.
    actions = core.on_slot_start(SLOT + 1, readings((SLOT + 1) * 900, 1000, 0, 0, 0, 0))
    assert not any(isinstance(m, (MeterReport, Order)) for m in actions.messages)
    assert actions.release_battery and core.counts["meter_frozen"] == 1
    still = core.on_slot_start(SLOT + 2, readings((SLOT + 2) * 900, 1000, 0, 0, 0, 0))
    assert not any(isinstance(m, MeterReport) for m in still.messages) and core.counts["meter_frozen"] == 2
    # Moving again: slot +2's energy is not known (it started on a frozen reading), so the
    # first report is for slot +3, from two live readings.
    moving = core.on_slot_start(SLOT + 3, readings((SLOT + 3) * 900, 2000, 0, 0, 0, 0))
    assert not any(isinstance(m, MeterReport) for m in moving.messages)
    live = core.on_slot_start(SLOT + 4, readings((SLOT + 4) * 900, 2300, 0, 0, 0, 0))
    [report] = [m for m in live.messages if isinstance(m, MeterReport)]
    assert (report.slot, report.import_wh) == (SLOT + 3, 300) and core.counts["meter_frozen"] == 2


def test_an_award_asking_for_curtailment_caps_the_inverter_for_that_slot_only() -> None:
    core = agent()
    core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
    core.plans[SLOT + 1] = dataclasses.replace(core.plans[SLOT + 1], forecast_pv_wh=1000)
    award = Award("h001", SLOT + 1, "h001:1001:0", "sell", "unfilled", 600, 0, None, 0, "curtail", 0,
                  curtail_wh=500)
    core.on_award(COORDINATOR.sign(award))
    curtailed = core.on_slot_start(SLOT + 1, readings((SLOT + 1) * 900, 1300, 50, 200, 0, 100))
    # 1000 Wh expected, 500 to hold back, a 5 kW inverter gives 1250 Wh a slot at most: 40 %.
    assert curtailed.pv_limit_pct == 40 and core.counts["curtailed_slots"] == 1
    released = core.on_slot_start(SLOT + 2, readings((SLOT + 2) * 900, 1600, 50, 400, 0, 100))
    assert released.pv_limit_pct == 100  # no curtailment asked for this slot
    again = core.on_slot_start(SLOT + 3, readings((SLOT + 3) * 900, 1900, 50, 600, 0, 100))
    assert again.pv_limit_pct is None  # unchanged: nothing to write


def test_what_the_core_logs_names_its_device_and_slot(caplog: pytest.LogCaptureFixture) -> None:
    """Agents share processes: a JSON log line must say whose it is (gridmesh/logs.py)."""
    core = agent()
    with caplog.at_level(logging.INFO, logger="gridmesh.edge"):
        core.on_slot_start(SLOT, readings(SLOT * 900, 1000, 0, 0, 0, 0))
        core.on_slot_start(SLOT + 1, readings((SLOT + 1) * 900, 10, 0, 0, 0, 0))  # counters back
        core.on_award(Award("h001", SLOT + 1, "x", "buy", "filled", 1, 1, 300_000, 1, "", 1))  # unsigned
    [backwards, unsigned] = caplog.records
    assert (backwards.device, backwards.slot) == ("h001", SLOT)  # type: ignore[attr-defined]
    assert unsigned.device == "h001"  # type: ignore[attr-defined]
