"""The community battery's policy: orders sized to the others' surplus or deficit, at
prices that beat the grid for the other side, and a battery that follows its awards."""

from __future__ import annotations

from broker.community import Community, Member, Tariff
from broker.identity import Identity
from broker.messages import Award, Clearing, Order
from edge.agent_core import AgentCore, clearing_ref
from edge.forecast import SeasonalNaive
from edge.policy import BatteryView
from edge.readings import BatteryReading, MeterReading, Readings
from edge.storage_policy import MarketSignal, award_setpoint_w, market_signal, plan_storage, storage_prices

TARIFF = Tariff(import_u_per_kwh=300_000, feedin_u_per_kwh=80_000)
BATTERY = BatteryView(stored_wh=10_000, capacity_wh=20_000, soc_min_pct=10, soc_max_pct=90,
                      max_charge_w=8000, max_discharge_w=8000)  # 2000 Wh a slot at most


def award(side: str, ordered: int, filled: int, slot: int = 7) -> Award:
    return Award("s001", slot, f"s001:{slot}:0", side, "partial" if filled < ordered else "filled",
                 ordered, filled, 150_000, 0, "", 0)


def test_prices_leave_a_round_trip_profit_and_beat_the_grid() -> None:
    bid, ask = storage_prices(TARIFF)
    assert TARIFF.feedin_u_per_kwh < bid < ask < TARIFF.import_u_per_kwh
    assert ask * 90 // 100 > bid  # a 90 % efficient battery still earns


def test_a_surplus_is_bought_up_to_the_room_and_the_power() -> None:
    small = plan_storage(8, BATTERY, 10_000, MarketSignal(7, -700), TARIFF, 900, True)
    assert (small.side, small.energy_wh, small.price_u_per_kwh) == ("buy", 700, storage_prices(TARIFF)[0])
    big = plan_storage(8, BATTERY, 10_000, MarketSignal(7, -9000), TARIFF, 900, True)
    assert (big.side, big.energy_wh) == ("buy", 2000)  # 8 kW for a quarter hour
    nearly_full = plan_storage(8, BATTERY, 17_500, MarketSignal(7, -9000), TARIFF, 900, True)
    assert (nearly_full.side, nearly_full.energy_wh) == ("buy", 500)  # 90 % of 20 kWh is the ceiling
    full = plan_storage(8, BATTERY, 18_000, MarketSignal(7, -9000), TARIFF, 900, True)
    assert full.side is None and "full" in full.reason


def test_a_deficit_is_offered_down_to_the_floor() -> None:
    plan = plan_storage(8, BATTERY, 2_300, MarketSignal(7, 900), TARIFF, 900, True)
    assert (plan.side, plan.energy_wh, plan.price_u_per_kwh) == ("sell", 300, storage_prices(TARIFF)[1])
    empty = plan_storage(8, BATTERY, 2_000, MarketSignal(7, 900), TARIFF, 900, True)
    assert empty.side is None and "empty" in empty.reason


def test_no_signal_or_stale_data_means_no_order() -> None:
    assert plan_storage(8, BATTERY, 10_000, None, TARIFF, 900, True).side is None
    stale = plan_storage(8, BATTERY, 10_000, MarketSignal(7, -700), TARIFF, 900, False)
    assert stale.side is None and stale.battery_w is None


def test_the_signal_leaves_out_the_batterys_own_order() -> None:
    clearing = Clearing(7, "uniform", 150_000, buy_wh=1500, sell_wh=2500, p2p_wh=1500,
                        grid_import_wh=0, grid_export_wh=0, orders=5)
    assert market_signal(clearing, None).net_demand_wh == -1000
    assert market_signal(clearing, award("buy", 1000, 1000)).net_demand_wh == -2000  # others: 500 v 2500
    assert market_signal(clearing, award("sell", 800, 0)).net_demand_wh == -200


def test_the_battery_runs_at_what_it_won() -> None:
    assert award_setpoint_w(award("buy", 700, 500), 900) == -2000
    assert award_setpoint_w(award("sell", 300, 300), 900) == 1200
    assert award_setpoint_w(None, 900) == 0


ME = Identity.derived("s001", 1)
COORDINATOR = Identity.derived("coordinator", 1)
COMMUNITY = Community(members=(Member("s001", ME.public_key_hex, "storage"),),
                      coordinator_key=COORDINATOR.public_key_hex, tariff=TARIFF)
SLOT = 1000


def readings(t_s: int, stored: int) -> Readings:
    return Readings(t_s, MeterReading(0, 0, 0), None,
                    BatteryReading(stored, 20_000, stored * 100 // 20_000, 0, 8000, 8000, 10, 90, 0, 0),
                    has_inverter=False, has_battery=True)


def test_the_storage_agent_orders_on_the_clearing_and_plays_its_award() -> None:
    core = AgentCore("s001", COMMUNITY, ME, SeasonalNaive())
    assert core.storage and core.clearing_expected(SLOT) is None  # nothing before its first slot
    first = core.on_slot_start(SLOT, readings(SLOT * 900, 10_000))
    assert not any(isinstance(m, Order) for m in first.messages)  # no signal yet
    assert core.clearing_expected(SLOT + 1) == clearing_ref(SLOT + 1)
    clearing = COORDINATOR.sign(Clearing(SLOT + 1, "uniform", None, 0, 1200, 0, 0, 1200, 3))
    assert core.on_clearing(clearing) == clearing_ref(SLOT + 1)
    assert core.clearing_expected(SLOT + 1) is None
    actions = core.on_slot_start(SLOT + 1, readings((SLOT + 1) * 900, 10_000))
    [order] = [m for m in actions.messages if isinstance(m, Order)]
    assert (order.slot, order.side, order.energy_wh) == (SLOT + 2, "buy", 1200)
    core.on_award(COORDINATOR.sign(award("buy", 1200, 800, slot=SLOT + 2)))
    played = core.on_slot_start(SLOT + 2, readings((SLOT + 2) * 900, 10_000))
    assert played.battery_setpoint_w == -3200 and not played.release_battery  # 800 Wh in 900 s


def test_a_clearing_with_a_bad_signature_is_not_a_signal() -> None:
    core = AgentCore("s001", COMMUNITY, ME, SeasonalNaive())
    forged = ME.sign(Clearing(SLOT, "uniform", None, 0, 1200, 0, 0, 1200, 3))
    assert core.on_clearing(forged) is None and core.signal is None
    assert core.counts["bad_coordinator_signature"] == 1
