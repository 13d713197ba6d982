"""The community battery's decisions: a market participant with no load and no PV.

Pure. The battery the community owns earns the spread between buying surplus when the
community has too much and selling it when the community has too little. Its signal is
the market itself: the last public clearing it has seen tells how much the others
offered and asked for (its own order taken out), and it expects the next slot to look
alike (persistence). It bids for a surplus, sized to the surplus, at a quarter of the
way from the feed-in to the import price; it offers into a deficit, sized to the
deficit, a quarter below the import price. Both prices beat the grid for the other
side, and a round trip pays while ``efficiency * ask > bid``.

Its battery then follows what it won: the award for a slot is its setpoint for that
slot, so the energy it meters is the energy it contracted.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.community import Tariff
from broker.messages import Award, Clearing
from broker.units import SECONDS_PER_HOUR
from edge.policy import BatteryView, Plan


@dataclass(frozen=True)
class MarketSignal:
    """The others' position in the last clearing seen: positive while they ask for more
    than they offer (a deficit), negative for a surplus."""

    slot: int
    net_demand_wh: int


def market_signal(clearing: Clearing, own: Award | None) -> MarketSignal:
    """The community's net demand in ``clearing`` without the battery's own order."""
    own_buy = own.ordered_wh if own is not None and own.side == "buy" else 0
    own_sell = own.ordered_wh if own is not None and own.side == "sell" else 0
    return MarketSignal(clearing.slot, (clearing.buy_wh - own_buy) - (clearing.sell_wh - own_sell))


def storage_prices(tariff: Tariff) -> tuple[int, int]:
    """(bid, ask) in micro-units per kWh."""
    spread = tariff.import_u_per_kwh - tariff.feedin_u_per_kwh
    return tariff.feedin_u_per_kwh + spread // 4, tariff.import_u_per_kwh - spread // 4


def plan_storage(
    slot: int, battery: BatteryView, projected_stored_wh: int, signal: MarketSignal | None,
    tariff: Tariff, slot_s: int, data_fresh: bool,
) -> Plan:
    """The order for ``slot``; the battery power follows its award, so ``battery_w`` is 0 here."""
    if not data_fresh:
        return Plan(slot, None, None, 0, 0, "readings unavailable: no order")
    if signal is None or signal.net_demand_wh == 0:
        return Plan(slot, 0, None, 0, 0, "no market signal yet")
    bid, ask = storage_prices(tariff)
    if signal.net_demand_wh < 0:  # surplus: charge
        room = max(0, battery.ceiling_wh - projected_stored_wh)
        energy = min(-signal.net_demand_wh, room, battery.max_charge_w * slot_s // SECONDS_PER_HOUR)
        if energy > 0:
            reason = f"surplus {-signal.net_demand_wh} Wh in slot {signal.slot}"
            return Plan(slot, 0, "buy", energy, bid, reason)
        return Plan(slot, 0, None, 0, 0, "surplus, but the battery is full")
    available = max(0, projected_stored_wh - battery.floor_wh)
    energy = min(signal.net_demand_wh, available, battery.max_discharge_w * slot_s // SECONDS_PER_HOUR)
    if energy > 0:
        return Plan(slot, 0, "sell", energy, ask, f"deficit {signal.net_demand_wh} Wh in slot {signal.slot}")
    return Plan(slot, 0, None, 0, 0, "deficit, but the battery is empty")


def award_setpoint_w(award: Award | None, slot_s: int) -> int:
    """The battery power (+discharge) that delivers what ``award`` contracted over a slot."""
    if award is None:
        return 0
    power = award.energy_wh * SECONDS_PER_HOUR // slot_s
    return -power if award.side == "buy" else power
