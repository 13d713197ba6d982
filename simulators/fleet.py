"""A community of households drawn from the bundled SimBench feeder.

:func:`make_households` is deterministic in ``(n, seed, prosumer_pct)``. Each household
takes the load profile and annual consumption of a feeder household (in a shuffled
order; the feeder is reused when ``n`` exceeds it). ``round(n * prosumer_pct / 100)``
of them, chosen by the seed, are prosumers: they get a PV system from the feeder (their
own feeder household's if it has one of household size, otherwise one of the feeder's
household-sized systems, profile and peak power) and a battery of
:data:`PROSUMER_BATTERY`; ``pv_only_pct`` more get such a PV system without a battery.
"""

from __future__ import annotations

import random

from simulators.physics import BatterySpec, HouseholdSpec
from simulators.profiles import FeederHousehold, ProfileSet

PROSUMER_BATTERY = BatterySpec(
    capacity_wh=5000, soc_min_pct=10, soc_max_pct=90, max_charge_w=2500, max_discharge_w=2500,
    efficiency_pct=90,
)
MAX_HOUSEHOLD_PV_W = 10_000  # larger feeder systems are farm or business roofs


COMMUNITY_BATTERY_ID = "s001"


def community_battery(capacity_wh: int, power_w: int, load_profile: str,
                      base: BatterySpec = PROSUMER_BATTERY) -> HouseholdSpec:
    """The battery the community owns, behind its own meter: no load, no PV
    (``load_profile`` only names a profile that exists; its scale is 0)."""
    battery = BatterySpec(capacity_wh, base.soc_min_pct, base.soc_max_pct, power_w, power_w,
                          base.efficiency_pct, base.ramp_w_per_s)
    return HouseholdSpec(COMMUNITY_BATTERY_ID, "storage", load_profile, 0, battery=battery)


def household_id(index: int) -> str:
    """``h001``, ``h002``, ...: the id of the ``index``-th household (from 0)."""
    return f"h{index + 1:03d}"


def _feeder_order(feeder: tuple[FeederHousehold, ...], n: int, rng: random.Random) -> list[FeederHousehold]:
    order: list[FeederHousehold] = []
    while len(order) < n:
        batch = list(feeder)
        rng.shuffle(batch)
        order.extend(batch)
    return order[:n]


def make_households(
    n: int, seed: int, prosumer_pct: int = 50, profiles: ProfileSet | None = None,
    pv_only_pct: int = 0, battery: BatterySpec = PROSUMER_BATTERY,
) -> tuple[HouseholdSpec, ...]:
    """``n`` households ``h001..``; the same arguments always give the same community.

    ``pv_only_pct`` of them (drawn from the rest after the prosumers) have PV and no
    battery; with 0 the community is the same as before that option existed.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= prosumer_pct <= 100 or not 0 <= pv_only_pct <= 100 - prosumer_pct:
        raise ValueError(f"prosumer_pct ({prosumer_pct}) and pv_only_pct ({pv_only_pct}) must be "
                         "percentages that add up to at most 100")
    source = profiles or ProfileSet.load_bundled()
    if not source.households:
        raise ValueError(f"feeder {source.feeder} lists no households")
    systems = [(h.pv_profile, h.pv_peak_w) for h in source.households
               if h.pv_profile is not None and 0 < h.pv_peak_w <= MAX_HOUSEHOLD_PV_W]
    if not systems and prosumer_pct:
        raise ValueError(f"feeder {source.feeder} has no household-sized PV system")
    rng = random.Random(seed)
    drawn = _feeder_order(source.households, n, rng)
    prosumers = set(rng.sample(range(n), (n * prosumer_pct + 50) // 100))
    # PV-only households draw from their own generator, so adding them changes nobody else.
    pv_rng = random.Random(f"{seed}:pv-only")
    rest = sorted(set(range(n)) - prosumers)
    pv_only = set(pv_rng.sample(rest, min(len(rest), (n * pv_only_pct + 50) // 100)))
    households = []
    for index, origin in enumerate(drawn):
        if index not in prosumers and index not in pv_only:
            households.append(HouseholdSpec(household_id(index), "consumer", origin.load_profile,
                                            origin.annual_kwh))
            continue
        own = origin.pv_profile is not None and 0 < origin.pv_peak_w <= MAX_HOUSEHOLD_PV_W
        prosumer = index in prosumers
        chooser = rng if prosumer else pv_rng
        pv_profile, pv_peak_w = (origin.pv_profile, origin.pv_peak_w) if own else chooser.choice(systems)
        households.append(HouseholdSpec(
            household_id(index), "prosumer" if prosumer else "pv", origin.load_profile,
            origin.annual_kwh, pv_profile=pv_profile, pv_peak_w=pv_peak_w,
            battery=battery if prosumer else None,
        ))
    return tuple(households)
