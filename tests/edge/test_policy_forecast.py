"""The agent's pure decisions: forecasts and the one-slot plan."""

from __future__ import annotations

import pytest

from broker.community import Tariff
from broker.messages import Order, Step
from coordinator.clearing import clear_call_auction
from edge.forecast import Forecast, History, SeasonalNaive, SlotEnergy
from edge.policy import BatteryView, plan_slot, project_stored_wh

TARIFF = Tariff(300_000, 80_000)
BATTERY = BatteryView(stored_wh=2500, capacity_wh=5000, soc_min_pct=10, soc_max_pct=90,
                      max_charge_w=2000, max_discharge_w=2000)


def test_seasonal_naive_uses_yesterday_then_persistence_then_now() -> None:
    history = History()
    naive = SeasonalNaive(period_slots=96)
    now = SlotEnergy(0, 111, 22)
    assert naive.forecast(history, 200, 1, now)[0].method == "instantaneous"
    assert naive.forecast(history, 200, 1, None)[0].method == "none"
    history.add(SlotEnergy(150, 300, 50))
    latest = naive.forecast(history, 200, 1, now)[0]
    assert (latest.load_wh, latest.pv_wh, latest.method) == (300, 50, "persistence")
    history.add(SlotEnergy(104, 400, 90))
    history.add(SlotEnergy(199, 1, 1))
    seasonal = naive.forecast(history, 200, 2, now)
    assert (seasonal[0].load_wh, seasonal[0].method) == (400, "seasonal-naive")
    assert seasonal[1].method == "persistence" and seasonal[1].load_wh == 1


def test_history_is_bounded() -> None:
    history = History(capacity=3)
    for slot in range(10):
        history.add(SlotEnergy(slot, slot, 0))
    assert len(history) == 3 and history.get(6) is None and history.latest() == SlotEnergy(9, 9, 0)


def test_deficit_is_covered_by_the_battery_first() -> None:
    plan = plan_slot(Forecast(5, 800, 0, "x"), BATTERY, 2500, TARIFF, 900, data_fresh=True)
    # The battery can give 500 Wh in 15 minutes at 2 kW; the rest is bid just under the
    # import price, so only a peer can fill it.
    assert plan.battery_w is None and plan.expected_battery_w == 2000
    assert (plan.side, plan.energy_wh, plan.price_u_per_kwh) == ("buy", 300, 299_999)


def test_surplus_charges_the_battery_then_is_offered() -> None:
    plan = plan_slot(Forecast(5, 100, 900, "x"), BATTERY, 4400, TARIFF, 900, data_fresh=True)
    # 100 Wh headroom to the 90 % ceiling (4500 Wh); 700 Wh offered just above feed-in.
    assert plan.battery_w is None and plan.expected_battery_w == -400
    assert (plan.side, plan.energy_wh, plan.price_u_per_kwh) == ("sell", 700, 80_001)


def test_planned_orders_trade_with_peers_at_the_mid_price_and_never_with_the_grid() -> None:
    buy = plan_slot(Forecast(5, 800, 0, "x"), None, None, TARIFF, 900, data_fresh=True)
    sell = plan_slot(Forecast(5, 0, 500, "x"), None, None, TARIFF, 900, data_fresh=True)
    orders = [Order(device, 5, 0, plan.side or "", (Step(plan.energy_wh, plan.price_u_per_kwh),), 0)
              for device, plan in (("a", buy), ("b", sell))]
    both = clear_call_auction(5, orders, TARIFF, 10**6, 10**6)
    # Buying from (or selling to) the grid through the market at its own price gains
    # nothing and risks a deviation settled at the worse grid price, so it does not happen.
    assert (both.p2p_wh, both.grid_import_wh, both.grid_export_wh) == (500, 0, 0)
    assert both.price_u_per_kwh == (299_999 + 80_001) // 2
    alone = clear_call_auction(5, orders[:1], TARIFF, 10**6, 10**6)
    assert alone.grid_import_wh == 0 and alone.fills[0].status == "unfilled"


def test_an_empty_battery_does_not_discharge() -> None:
    plan = plan_slot(Forecast(5, 300, 0, "x"), BATTERY, 500, TARIFF, 900, data_fresh=True)
    assert plan.expected_battery_w == 0 and plan.energy_wh == 300


def test_no_order_and_the_batterys_own_self_consumption_on_stale_data() -> None:
    plan = plan_slot(Forecast(5, 100, 900, "x"), BATTERY, 2500, TARIFF, 900, data_fresh=False)
    assert plan.side is None and plan.battery_w is None and "unavailable" in plan.reason


def test_household_without_battery_trades_its_whole_net() -> None:
    plan = plan_slot(Forecast(5, 100, 400, "x"), None, None, TARIFF, 900, data_fresh=True)
    assert (plan.side, plan.energy_wh, plan.expected_battery_w) == ("sell", 300, 0)


@pytest.mark.parametrize(("power", "expected"), [(2000, 2000), (-2000, 3000), (-99_000, 4500)])
def test_projection_stays_in_the_soc_window(power: int, expected: int) -> None:
    assert project_stored_wh(BATTERY, power, 900) == expected
