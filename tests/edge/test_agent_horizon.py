"""The agent plans its battery over the horizon when the grid's prices change: a
scenario with a time-of-use tariff, a day of history and a battery at its floor."""

from __future__ import annotations

import dataclasses

from test_agent_core import COMMUNITY, ME, readings

from broker.community import Tariff, TouPeriod
from broker.messages import Order
from edge.agent_core import AgentCore
from edge.forecast import SeasonalNaive, SlotEnergy
from edge.readings import Readings

SLOT = 1_614_528  # 2016-01-18 00:00 UTC
NIGHT_AND_PEAK = Tariff(300_000, 50_000, time_of_use=(
    TouPeriod("00:00", "06:00", 180_000), TouPeriod("17:00", "21:00", 450_000)))


def agent(tariff: Tariff, planner: str = "horizon") -> AgentCore:
    community = dataclasses.replace(COMMUNITY, tariff=tariff)
    core = AgentCore("h001", community, ME, SeasonalNaive(), planner=planner)
    for slot in range(SLOT - 96, SLOT):  # yesterday: 300 Wh a slot, no sun
        core.history.add(SlotEnergy(slot, 300, 0))
    return core


def at_floor(t_s: int, import_wh: int = 1000) -> Readings:
    return readings(t_s, import_wh, 0, 0, 0, 0, stored=500)  # 10 % of 5000 Wh: the floor


def test_cheap_night_power_is_bought_into_the_battery_for_the_evening_peak() -> None:
    core = agent(NIGHT_AND_PEAK)
    actions = core.on_slot_start(SLOT, at_floor(SLOT * 900))
    plan = core.plans[SLOT + 1]
    assert plan.battery_w is not None and plan.battery_w < 0  # a charging setpoint
    order = next(m for m in actions.messages if isinstance(m, Order))
    # The order buys the household's 300 Wh and what the battery takes, at the night price.
    assert order.side == "buy" and order.energy_wh == 300 - plan.battery_w * 900 // 3600
    assert order.steps[0].price_u_per_kwh == 179_999
    assert core.counts["horizon_setpoints"] == 1
    # At the next slot start the battery gets the planned power instead of self-consumption.
    following = core.on_slot_start(SLOT + 1, at_floor((SLOT + 1) * 900, 1300))
    assert following.battery_setpoint_w == plan.battery_w and not following.release_battery


def test_one_slot_planning_and_flat_prices_leave_the_battery_to_self_consumption() -> None:
    for core in (agent(NIGHT_AND_PEAK, planner="slot"), agent(Tariff())):
        core.on_slot_start(SLOT, at_floor(SLOT * 900))
        assert core.plans[SLOT + 1].battery_w is None and core.counts["horizon_setpoints"] == 0
