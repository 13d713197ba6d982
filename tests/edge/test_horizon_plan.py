"""The receding-horizon battery plan: the schedule it finds and how the policy uses its
first slot."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.units import SECONDS_PER_HOUR
from edge.forecast import Forecast
from edge.horizon_plan import BatteryLimits, PricePath, plan_battery
from edge.policy import BatteryView, plan_ahead

SLOT_S = 900
LIMITS = BatteryLimits(floor_wh=1000, ceiling_wh=9000, max_charge_w=4000, max_discharge_w=4000)
VIEW = BatteryView(stored_wh=1000, capacity_wh=10_000, soc_min_pct=10, soc_max_pct=90,
                   max_charge_w=4000, max_discharge_w=4000)


def prices(*segments: tuple[int, int, int]) -> PricePath:
    """(slots, import, feed-in) segments."""
    imports = tuple(p for n, p, _ in segments for _ in range(n))
    feedins = tuple(f for n, _, f in segments for _ in range(n))
    return PricePath(imports, feedins, len(imports))


def cost_u(net_wh: list[int], battery_wh: tuple[int, ...], path: PricePath) -> float:
    total = 0.0
    for net, battery, buy, sell in zip(net_wh, battery_wh, path.import_u_per_kwh, path.feedin_u_per_kwh,
                                       strict=False):
        grid = net - battery
        total += grid * (buy if grid > 0 else sell) / 1000
    return total


def test_cheap_night_energy_is_stored_for_the_dear_evening() -> None:
    night_evening = prices((16, 200_000, 50_000), (16, 300_000, 50_000), (16, 450_000, 50_000))
    net = [400] * 48
    schedule = plan_battery(net, night_evening, LIMITS, 1000, SLOT_S)
    assert all(b < 0 for b in schedule.battery_wh[:8])  # charges at night, as soon as it can
    assert all(b == 400 for b in schedule.battery_wh[32:])  # covers the dear evening
    assert sum(schedule.battery_wh[16:32]) <= 8000 - 16 * 400  # only what the evening leaves over
    self_consumption = cost_u(net, (0,) * 48, night_evening)
    assert cost_u(net, schedule.battery_wh, night_evening) < self_consumption * 0.9


def test_arbitrage_that_the_round_trip_loss_eats_is_left_alone() -> None:
    # 10 % loss: buying at 0.28 to save 0.30 later costs 0.311 per kWh delivered.
    small_spread = prices((16, 280_000, 50_000), (16, 300_000, 50_000))
    schedule = plan_battery([300] * 32, small_spread, LIMITS, 1000, SLOT_S)
    assert schedule.battery_wh == (0,) * 32


def test_the_battery_never_feeds_the_grid() -> None:
    # A high feed-in price now and a sunny afternoon forecast: selling the stored energy
    # would pay on paper, but the plan keeps it to what the household needs.
    path = prices((4, 300_000, 250_000), (44, 300_000, 50_000))
    net = [100] * 4 + [-800] * 44
    schedule = plan_battery(net, path, LIMITS, 8000, SLOT_S)
    assert all(b <= max(0, n) for b, n in zip(schedule.battery_wh, net, strict=True))


@settings(max_examples=60, deadline=None)
@given(net=st.lists(st.integers(-2000, 2000), min_size=1, max_size=48),
       buy=st.lists(st.integers(150_000, 450_000), min_size=48, max_size=48),
       stored=st.integers(0, 12_000))
def test_the_schedule_keeps_the_battery_in_its_window_and_limits(net: list[int], buy: list[int],
                                                                  stored: int) -> None:
    path = PricePath(tuple(buy), tuple(b // 4 for b in buy), 48)
    schedule = plan_battery(net, path, LIMITS, stored, SLOT_S)
    per_slot_wh = 4000 * SLOT_S // SECONDS_PER_HOUR
    assert all(LIMITS.floor_wh <= s <= LIMITS.ceiling_wh for s in schedule.stored_wh)
    assert all(-per_slot_wh - 1 <= b <= per_slot_wh for b in schedule.battery_wh)
    # Never worse than leaving the battery alone by the plan's own measure, which counts
    # the energy left at the end at the horizon's cheapest import price, after the loss.
    start = max(LIMITS.floor_wh, min(LIMITS.ceiling_wh, stored))
    left_u = (schedule.stored_wh[-1] - start) * min(buy[:len(net)]) * 0.9 / 1000
    assert cost_u(net, schedule.battery_wh, path) - left_u <= cost_u(net, (0,) * len(net), path) + 1


@settings(max_examples=60, deadline=None)
@given(net=st.lists(st.integers(-2000, 2000), min_size=1, max_size=48),
       buy=st.lists(st.integers(150_000, 450_000), min_size=48, max_size=48),
       stored=st.integers(0, 12_000), moves=st.integers(1, 5))
def test_the_first_moves_alone_are_the_whole_plans_first_moves(net: list[int], buy: list[int], stored: int,
                                                               moves: int) -> None:
    path = PricePath(tuple(buy), tuple(b // 4 for b in buy), 48)
    whole = plan_battery(net, path, LIMITS, stored, SLOT_S)
    first = plan_battery(net, path, LIMITS, stored, SLOT_S, first_moves=moves)
    kept = min(moves, len(net))
    assert len(first.battery_wh) == kept
    assert first.battery_wh == whole.battery_wh[:kept] and first.stored_wh == whole.stored_wh[:kept]
    assert first.self_consumption == whole.self_consumption[:kept]
    if kept == len(net):
        assert first.cost_u == whole.cost_u


def test_prices_and_forecast_must_cover_the_same_slots() -> None:
    with pytest.raises(ValueError, match="prices for 2 slots, forecast for 3"):
        plan_battery([1, 2, 3], prices((2, 1, 0)), LIMITS, 1000, SLOT_S)
    with pytest.raises(ValueError, match="same slots"):
        PricePath((1, 2), (0,), 2)


def forecasts(net: list[int], method: str = "onnx") -> tuple[Forecast, ...]:
    return tuple(Forecast(100 + i, max(0, n), max(0, -n), method) for i, n in enumerate(net))


def test_plan_ahead_sets_a_charging_setpoint_and_buys_for_it() -> None:
    path = prices((16, 200_000, 50_000), (32, 450_000, 50_000))
    plan = plan_ahead(forecasts([400] * 48), path, VIEW, 1000, SLOT_S, data_fresh=True)
    assert plan.battery_w is not None and plan.battery_w < 0
    assert plan.side == "buy" and plan.energy_wh == 400 - plan.battery_w * SLOT_S // SECONDS_PER_HOUR
    assert plan.price_u_per_kwh == 199_999 and "horizon plan over 48 slots" in plan.reason


def test_plan_ahead_holds_the_battery_for_the_dearer_hour() -> None:
    stored = VIEW.ceiling_wh // 4
    path = prices((4, 250_000, 50_000), (44, 450_000, 50_000))
    plan = plan_ahead(forecasts([300] * 48), path, VIEW, stored, SLOT_S, data_fresh=True)
    assert plan.battery_w is not None and plan.battery_w <= 0  # does not cover the cheap slot
    assert plan.side == "buy" and plan.energy_wh >= 300


@pytest.mark.parametrize("case", ["constant prices", "stale data", "no battery", "persistence"])
def test_plan_ahead_falls_back_to_self_consumption(case: str) -> None:
    path = prices((16, 200_000, 50_000), (32, 450_000, 50_000))
    kwargs = {"forecasts": forecasts([400] * 48), "prices": path, "battery": VIEW,
              "projected_stored_wh": 1000, "slot_s": SLOT_S, "data_fresh": True}
    if case == "constant prices":
        kwargs["prices"] = prices((48, 300_000, 80_000))
    elif case == "stale data":
        kwargs["data_fresh"] = False
    elif case == "no battery":
        kwargs["battery"] = kwargs["projected_stored_wh"] = None
    else:  # the last slot repeated is no forecast of the day
        kwargs["forecasts"] = forecasts([400] * 48, "persistence")
    plan = plan_ahead(**kwargs)  # type: ignore[arg-type]
    assert plan.battery_w is None and "horizon" not in plan.reason
