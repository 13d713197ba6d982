"""A run against what the same households could have done: ``gridmesh testbed --compare``.

Four scenarios on the same households, profiles, limits and tariff, over the run's slots:

(a) no trading, no battery control: batteries stay idle, each household pays the grid
    for its own meter;
(b) battery self-consumption, no trading: each battery follows its household on its own;
(c) the system as run: the members' bills as settled;
(d) the community's perfect-foresight optimum (:mod:`simulators.optimum`).

The efficiency ratio ``(a - c) / (a - d)`` is the share of the possible saving the
system achieved. (a) and (b) are stepped once per slot with :mod:`simulators.physics`.

Scenarios end with different amounts of energy in their batteries: (a) with what it
began with, (b) and (c) often fuller, (d) at least as full. Over a short run that
difference can outweigh the bills (a run that filled its batteries at noon looks worse
than one that sold the same energy). So each scenario also has a *valued* bill: the bill
less its batteries' change in stored energy at the feed-in price of the run's last slot,
what that energy would surely fetch; the optimum is solved under that same score, and
the efficiency on valued bills sits beside the plain one.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from broker.community import Community, Tariff
from broker.units import SECONDS_PER_HOUR, U_PER_UNIT, money_u
from simulators.optimum import OptHousehold, solve_optimum
from simulators.physics import MWH_PER_WH, HouseholdSpec, initial_state, step, stored_wh
from simulators.profiles import ProfileSet

SCENARIOS = ("a", "b", "c", "d")
TITLES = {"a": "no trading, no battery control", "b": "battery self-consumption, no trading",
          "c": "the system as run", "d": "perfect-foresight optimum"}


@dataclass(frozen=True)
class Scenario:
    bill_u: int
    grid_import_wh: int  # the feeder's, per slot netted over the community
    grid_export_wh: int
    stored_change_wh: int  # batteries' end minus start


@dataclass(frozen=True)
class Comparison:
    scenarios: dict[str, Scenario]
    stored_price_u_per_kwh: int = 0  # what stored energy is worth: the run's last feed-in price

    def valued_bill_u(self, key: str) -> int:
        """The scenario's bill less its change in stored energy at ``stored_price_u_per_kwh``."""
        s = self.scenarios[key]
        return s.bill_u - money_u(s.stored_change_wh, self.stored_price_u_per_kwh)

    @property
    def efficiency(self) -> float | None:
        """(a - c) / (a - d) on the bills; None when the optimum saves nothing."""
        return _ratio(*(self.scenarios[k].bill_u for k in "acd"))

    @property
    def efficiency_valued(self) -> float | None:
        """(a - c) / (a - d) on the valued bills."""
        return _ratio(*(self.valued_bill_u(k) for k in "acd"))

    def lines(self) -> list[str]:
        money = U_PER_UNIT
        out = [f"{'scenario':<40} {'bill':>10} {'grid import':>12} {'grid export':>12} {'stored':>9} "
               f"{'valued':>8}"]
        for key in SCENARIOS:
            s = self.scenarios[key]
            out.append(f"({key}) {TITLES[key]:<36} {s.bill_u / money:>10.2f} "
                       f"{s.grid_import_wh / 1000:>8.1f} kWh {s.grid_export_wh / 1000:>8.1f} kWh "
                       f"{s.stored_change_wh / 1000:>+5.1f} kWh {self.valued_bill_u(key) / money:>8.2f}")
        out.append("efficiency (a - c) / (a - d): " + ratio_text(self.efficiency))
        out.append("  on valued bills:           " + ratio_text(self.efficiency_valued) + " (the bill less "
                   f"the stored energy gained, at {self.stored_price_u_per_kwh / money:.3f}/kWh)")
        return out

    def as_dict(self) -> dict[str, object]:
        return {"scenarios": {k: {**dataclasses.asdict(v), "valued_bill_u": self.valued_bill_u(k)}
                              for k, v in self.scenarios.items()},
                "stored_price_u_per_kwh": self.stored_price_u_per_kwh,
                "efficiency": self.efficiency, "efficiency_valued": self.efficiency_valued}


def _ratio(a: int, c: int, d: int) -> float | None:
    return None if a == d else (a - c) / (a - d)


def ratio_text(ratio: float | None) -> str:
    """An efficiency as printed and reported."""
    return "n/a (nothing to save)" if ratio is None else f"{ratio:.3f}"


@dataclass(frozen=True)
class SlotData:
    load_wh: tuple[int, ...]
    pv_wh: tuple[int, ...]


def slot_data(
    spec: HouseholdSpec, profiles: ProfileSet, first_slot: int, slots: int, slot_s: int
) -> SlotData:
    spans = list(itertools.pairwise((first_slot + i) * slot_s for i in range(slots + 1)))
    load = tuple(profiles.energy_wh(spec.load_profile, a, b, spec.annual_load_kwh) for a, b in spans)
    pv = tuple(profiles.energy_wh(spec.pv_profile, a, b, spec.pv_peak_w) if spec.pv_profile else 0
               for a, b in spans)
    return SlotData(load, pv)


def no_trading(
    households: Sequence[HouseholdSpec], data: dict[str, SlotData], first_slot: int, slot_s: int,
    tariff: Tariff, self_consumption: bool,
) -> Scenario:
    """(a) with ``self_consumption`` False (batteries idle), (b) with it True (each battery
    following its household on its own)."""
    return no_trading_bills(households, data, first_slot, slot_s, tariff, self_consumption)[0]


def no_trading_bills(
    households: Sequence[HouseholdSpec], data: dict[str, SlotData], first_slot: int, slot_s: int,
    tariff: Tariff, self_consumption: bool,
) -> tuple[Scenario, dict[str, int]]:
    """The scenario and each household's own bill in it."""
    slots = len(next(iter(data.values())).load_wh) if data else 0
    net = [0] * slots
    bills: dict[str, int] = {}
    stored_change = 0
    for spec in households:
        state = dataclasses.replace(initial_state(spec, first_slot * slot_s), remote=not self_consumption)
        start_stored = stored_wh(state)
        bill = 0
        for t in range(slots):
            state, flows = step(spec, state, data[spec.id].load_wh[t], data[spec.id].pv_wh[t],
                                (first_slot + t + 1) * slot_s)
            net[t] += flows.import_wh - flows.export_wh
            prices = tariff.at((first_slot + t) * slot_s)
            bill += (flows.import_wh * prices.import_u_per_kwh
                     - flows.export_wh * prices.feedin_u_per_kwh) // 1000
        bills[spec.id] = bill
        stored_change += stored_wh(state) - start_stored
    scenario = Scenario(sum(bills.values()), sum(max(n, 0) for n in net), sum(max(-n, 0) for n in net),
                        stored_change)
    return scenario, bills


def baseline_bills(
    households: Sequence[HouseholdSpec], profiles: ProfileSet, community: Community, first_slot: int,
    slots: int,
) -> dict[str, int]:
    """Each household's bill with no trading and no battery control (scenario a)."""
    slot_s = community.market.slot_s
    data = {h.id: slot_data(h, profiles, first_slot, slots, slot_s) for h in households}
    return no_trading_bills(households, data, first_slot, slot_s, community.tariff, False)[1]


def optimum(
    households: Sequence[HouseholdSpec], data: dict[str, SlotData], community: Community, tariff: Tariff,
    first_slot: int, stored_price_u_per_kwh: int = 0,
) -> Scenario:
    slot_s = community.market.slot_s
    slots = len(next(iter(data.values())).load_wh) if data else 0
    members = []
    for spec in households:
        member = community.member(spec.id)
        limits = member.limits if member is not None else None
        battery = spec.battery
        extra: dict[str, int] = {}
        if battery is not None:
            extra = {"capacity_wh": battery.capacity_wh,
                     "stored_wh": stored_wh(initial_state(spec, 0)),
                     "floor_wh": battery.min_mwh // MWH_PER_WH, "ceiling_wh": battery.max_mwh // MWH_PER_WH,
                     "max_charge_w": battery.max_charge_w, "max_discharge_w": battery.max_discharge_w,
                     "efficiency_pct": battery.efficiency_pct}
        big = 10**9 * slot_s // SECONDS_PER_HOUR
        members.append(OptHousehold(
            data[spec.id].load_wh, data[spec.id].pv_wh,
            limits.import_limit_wh(slot_s) if limits else big,
            limits.export_limit_wh(slot_s) if limits else big, **extra))
    grid = community.grid
    prices = [tariff.at((first_slot + t) * slot_s) for t in range(slots)]
    result = solve_optimum(members, [(p.import_u_per_kwh, p.feedin_u_per_kwh) for p in prices], slot_s,
                           grid.import_limit_wh(slot_s), grid.export_limit_wh(slot_s), stored_price_u_per_kwh)
    return Scenario(result.bill_u, result.grid_import_wh, result.grid_export_wh, result.stored_change_wh)


def compare(
    households: Sequence[HouseholdSpec], profiles: ProfileSet, community: Community, first_slot: int,
    slots: int, as_run: Scenario,
) -> Comparison:
    slot_s = community.market.slot_s
    data = {h.id: slot_data(h, profiles, first_slot, slots, slot_s) for h in households}
    tariff = community.tariff
    stored_price = tariff.at((first_slot + slots - 1) * slot_s).feedin_u_per_kwh
    return Comparison({
        "a": no_trading(households, data, first_slot, slot_s, tariff, self_consumption=False),
        "b": no_trading(households, data, first_slot, slot_s, tariff, self_consumption=True),
        "c": as_run,
        "d": optimum(households, data, community, tariff, first_slot, stored_price),
    }, stored_price)
