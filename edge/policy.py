"""The agent's decisions for one slot: battery power and the order to place.

Pure: it takes what the agent knows (forecast, battery state, tariff, whether the
readings are fresh) and returns a :class:`Plan`. The rule is self-consumption first:
the battery absorbs the household's surplus and covers its deficit within its power
limits and SoC window, and what the forecast says it cannot is bought or offered on the
market. The battery does this on its own controller, in real time (``battery_w`` None:
its setpoint switch off), which follows the household far better than a setpoint
planned a slot ahead from a forecast: in the default testbed day, real-time
self-consumption with trading cost the community 9.28 against 11.24 with planned
setpoints (``gridmesh testbed --compare``). The plan still estimates the battery's
energy from the forecast, to size the order.

Buyers bid one micro-unit under the grid's import price and sellers ask one over its
feed-in price, so orders are filled by peers only. Energy bought from the grid through
the market costs the import price, exactly what an unplanned import costs, while a
forecast that turns out too high leaves contracted energy that settles at the feed-in
price: no gain, only risk (and the mirror image for selling to the grid). Between
peers both sides gain the spread to the grid price at the uniform clearing price.
On stale data the agent makes no commitment at all and hands the battery back to its
own controller, which keeps the household self-consuming (``battery_w`` None).

When the grid's prices change over the forecast horizon (time-of-use or dynamic
tariffs), :func:`plan_ahead` plans the battery over the whole horizon
(:mod:`edge.horizon_plan`): it may charge from the grid while power is cheap, or hold
its energy for a dearer hour instead of covering the household now, but it never
discharges more, or stores less of the household's surplus, than self-consumption would
(that would bet the battery on a forecast of later sun). Where that plan's
first slot is what self-consumption would do anyway, the battery stays on its own
controller; otherwise it gets the planned power as a setpoint and the order is sized
around it.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.community import Tariff
from broker.units import SECONDS_PER_HOUR
from edge.forecast import Forecast
from edge.horizon_plan import BatteryLimits, PricePath, plan_battery

HORIZON_METHODS = frozenset({"onnx", "seasonal-naive", "perfect"})  # forecasts that see a day ahead


@dataclass(frozen=True)
class BatteryView:
    """The battery as the agent last read it (AC-side limits, stored energy in Wh)."""

    stored_wh: int
    capacity_wh: int
    soc_min_pct: int
    soc_max_pct: int
    max_charge_w: int
    max_discharge_w: int

    @property
    def floor_wh(self) -> int:
        return self.capacity_wh * self.soc_min_pct // 100

    @property
    def ceiling_wh(self) -> int:
        return self.capacity_wh * self.soc_max_pct // 100


@dataclass(frozen=True)
class Plan:
    """What to do in ``slot``: battery power (+discharge; None: the battery's own
    self-consumption) and the order, if any. ``expected_battery_w`` is the battery power
    the order was sized with."""

    slot: int
    battery_w: int | None
    side: str | None  # "buy", "sell" or None for no order
    energy_wh: int
    price_u_per_kwh: int
    reason: str
    expected_battery_w: int = 0
    forecast_pv_wh: int = 0


def project_stored_wh(battery: BatteryView, battery_w: int, duration_s: int) -> int:
    """Stored energy after running at ``battery_w`` for ``duration_s``, kept in the window."""
    stored = battery.stored_wh - battery_w * duration_s // SECONDS_PER_HOUR
    return max(battery.floor_wh, min(battery.ceiling_wh, stored))


def plan_slot(
    forecast: Forecast,
    battery: BatteryView | None,
    projected_stored_wh: int | None,
    tariff: Tariff,
    slot_s: int,
    data_fresh: bool,
) -> Plan:
    """Plan one slot from its forecast.

    ``projected_stored_wh`` is the battery's expected stored energy when the slot
    starts (the agent plans one slot ahead of delivery).
    """
    slot = forecast.slot
    if not data_fresh:
        return Plan(slot, None, None, 0, 0, "readings unavailable: no order, battery self-consumes")
    net_wh = forecast.net_wh
    battery_wh = 0  # energy from the battery during the slot (+discharge)
    if battery is not None and projected_stored_wh is not None:
        if net_wh > 0:
            available = max(0, projected_stored_wh - battery.floor_wh)
            battery_wh = min(net_wh, available, battery.max_discharge_w * slot_s // SECONDS_PER_HOUR)
        elif net_wh < 0:
            headroom = max(0, battery.ceiling_wh - projected_stored_wh)
            battery_wh = -min(-net_wh, headroom, battery.max_charge_w * slot_s // SECONDS_PER_HOUR)
    expected_w = battery_wh * SECONDS_PER_HOUR // slot_s
    residual_wh = net_wh - battery_wh
    if residual_wh > 0:
        return Plan(slot, None, "buy", residual_wh, tariff.import_u_per_kwh - 1,
                    f"forecast deficit {residual_wh} Wh after battery", expected_w, forecast.pv_wh)
    if residual_wh < 0:
        return Plan(slot, None, "sell", -residual_wh, tariff.feedin_u_per_kwh + 1,
                    f"forecast surplus {-residual_wh} Wh after battery", expected_w, forecast.pv_wh)
    return Plan(slot, None, None, 0, 0, "balanced by the battery", expected_w, forecast.pv_wh)


def plan_ahead(
    forecasts: tuple[Forecast, ...],
    prices: PricePath,
    battery: BatteryView | None,
    projected_stored_wh: int | None,
    slot_s: int,
    data_fresh: bool,
    efficiency_pct: int = 90,
) -> Plan:
    """Plan the first of ``forecasts`` with the battery scheduled over all of them.

    ``prices`` covers the same slots. With constant prices, no battery or stale data
    this is :func:`plan_slot`."""
    first = forecasts[0]
    tariff = Tariff(prices.import_u_per_kwh[0], prices.feedin_u_per_kwh[0])
    greedy = plan_slot(first, battery, projected_stored_wh, tariff, slot_s, data_fresh)
    if not data_fresh or battery is None or projected_stored_wh is None or prices.constant:
        return greedy
    if any(f.method not in HORIZON_METHODS for f in forecasts):
        return greedy  # the last slot repeated (no history yet) is no forecast of the day
    limits = BatteryLimits(battery.floor_wh, battery.ceiling_wh, battery.max_charge_w,
                           battery.max_discharge_w, efficiency_pct)
    schedule = plan_battery([f.net_wh for f in forecasts], prices, limits, projected_stored_wh, slot_s,
                            first_moves=1)  # the agent acts on the first move; it plans again next slot
    if schedule.self_consumption[0]:
        return greedy  # the plan's first move is what the battery's own controller does
    greedy_wh = greedy.expected_battery_w * slot_s // SECONDS_PER_HOUR
    # The plan may hold the battery's energy back or charge from the grid; it never
    # discharges more, nor stores less of the household's surplus, than self-consumption.
    planned_wh = min(schedule.battery_wh[0], greedy_wh)
    battery_w = planned_wh * SECONDS_PER_HOUR // slot_s
    residual_wh = first.net_wh - planned_wh
    why = (f"horizon plan over {len(forecasts)} slots: battery {planned_wh:+d} Wh where "
           f"self-consumption would give {greedy_wh:+d} Wh")
    if residual_wh > 0:
        return Plan(first.slot, battery_w, "buy", residual_wh, tariff.import_u_per_kwh - 1,
                    f"{why}; buys {residual_wh} Wh", battery_w, first.pv_wh)
    if residual_wh < 0:
        return Plan(first.slot, battery_w, "sell", -residual_wh, tariff.feedin_u_per_kwh + 1,
                    f"{why}; offers {-residual_wh} Wh", battery_w, first.pv_wh)
    return Plan(first.slot, battery_w, None, 0, 0, why, battery_w, first.pv_wh)
