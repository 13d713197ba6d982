"""The battery's schedule over the forecast horizon: a receding-horizon plan. Pure (numpy).

Given the household's forecast net demand per slot (load minus PV, Wh) and the grid's
import and feed-in prices per slot, :func:`plan_battery` finds the battery energy per
slot that minimises what the household pays the grid over the horizon, by dynamic
programming over the stored energy:

- the state is the stored energy inside the battery's SoC window; its value is kept on
  a grid of ``MAX_LEVELS`` levels and interpolated in between;
- the moves open in a slot are self-consumption (cover the forecast deficit, or store
  the forecast surplus, as far as the battery can), rest, and ``MOVES`` battery
  energies from full charge to full discharge; a charge of ``d`` Wh from the AC side
  stores ``d * efficiency`` (the round-trip loss is booked on charging, as the
  simulated battery does);
- the battery discharges at most what the household is forecast to need: it never
  feeds the grid (a forecast of a sunny afternoon is no reason to sell the battery's
  energy at the feed-in price now);
- a slot's cost is the grid energy priced at the import price when the household draws
  and at the feed-in price when it gives, plus a small wear cost per Wh cycled, which
  keeps the battery from cycling for nothing; of equal moves, self-consumption wins;
- energy left in the battery at the horizon's end is worth the horizon's cheapest
  import price times the round-trip efficiency (what it would cost to store it again).

Only the first slot's action is used: the agent plans again at the next slot with new
readings and forecasts. With prices that do not change over the horizon,
self-consumption is already the best plan and the agent does not call this at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from broker.units import SECONDS_PER_HOUR

WEAR_U_PER_KWH = 2_000  # what cycling one kWh through the battery costs in wear
MAX_LEVELS = 81  # resolution of the stored-energy grid (values in between are interpolated)
MOVES = 25  # battery energies tried per slot, from full charge to full discharge, besides
# self-consumption (exactly what the household's forecast asks) and rest
TIE_BREAK = 1e-6  # per slot: of two equal schedules, the one that charges sooner and discharges later


@dataclass(frozen=True)
class PricePath:
    """The grid's prices over a horizon, one per slot, and how many of them are published
    (the rest are forecasts)."""

    import_u_per_kwh: tuple[int, ...]
    feedin_u_per_kwh: tuple[int, ...]
    published: int

    def __post_init__(self) -> None:
        if len(self.import_u_per_kwh) != len(self.feedin_u_per_kwh):
            raise ValueError("import and feed-in prices must cover the same slots")

    @property
    def constant(self) -> bool:
        """True when every slot has the same prices: self-consumption is then optimal."""
        return len(set(self.import_u_per_kwh)) <= 1 and len(set(self.feedin_u_per_kwh)) <= 1


@dataclass(frozen=True)
class BatteryLimits:
    """What the plan needs to know about the battery (Wh of stored energy, W on the AC side)."""

    floor_wh: int
    ceiling_wh: int
    max_charge_w: int
    max_discharge_w: int
    efficiency_pct: int = 90  # round trip


@dataclass(frozen=True)
class BatterySchedule:
    """The planned battery energy per slot (+discharge, AC side), the stored energy at
    each slot's end, and whether each slot's move is plain self-consumption; ``cost_u``
    is the plan's value of the horizon (grid cost and wear less the energy left)."""

    battery_wh: tuple[int, ...]
    stored_wh: tuple[int, ...]
    self_consumption: tuple[bool, ...]
    cost_u: int


def plan_battery(net_wh: Sequence[int], prices: PricePath, battery: BatteryLimits, stored_wh: int,
                 slot_s: int, wear_u_per_kwh: int = WEAR_U_PER_KWH) -> BatterySchedule:
    """The cheapest battery schedule for the forecast ``net_wh`` (see the module doc)."""
    slots = len(net_wh)
    if slots == 0 or len(prices.import_u_per_kwh) < slots:
        raise ValueError(f"prices for {len(prices.import_u_per_kwh)} slots, forecast for {slots}")
    floor, ceiling = float(battery.floor_wh), float(max(battery.floor_wh, battery.ceiling_wh))
    levels = np.linspace(floor, ceiling, MAX_LEVELS)
    eff = battery.efficiency_pct / 100
    moves = np.unique(np.concatenate([np.linspace(-battery.max_charge_w * slot_s / SECONDS_PER_HOUR,
                                                  battery.max_discharge_w * slot_s / SECONDS_PER_HOUR, MOVES),
                                      [0.0]]))
    net = np.asarray(net_wh, dtype=np.float64)
    buy = np.asarray(prices.import_u_per_kwh[:slots], dtype=np.float64)
    sell = np.asarray(prices.feedin_u_per_kwh[:slots], dtype=np.float64)
    worth = min(prices.import_u_per_kwh[:slots]) * eff / 1000  # per Wh left at the end
    values = np.empty((slots + 1, MAX_LEVELS))
    values[slots] = -worth * (levels - floor)
    step = _Step(battery, moves, eff, floor, ceiling, wear_u_per_kwh)
    for t in range(slots - 1, -1, -1):
        q, _, _ = step.options(levels, net[t], buy[t], sell[t], t, levels, values[t + 1])
        values[t] = q.min(axis=1)
    stored = float(max(floor, min(ceiling, stored_wh)))
    battery_plan, stored_plan, follows, total = [], [], [], 0.0
    for t in range(slots):
        q, ac, after = step.options(np.asarray([stored]), net[t], buy[t], sell[t], t, levels, values[t + 1])
        choice = int(np.argmin(q[0]))  # the first of equals: self-consumption (column 0)
        total += float(q[0, choice]) - float(_interpolate(after[:1, choice], levels, values[t + 1])[0])
        stored = float(after[0, choice])
        battery_plan.append(round(float(ac[0, choice])))
        stored_plan.append(round(stored))
        follows.append(choice == 0)
    total -= worth * (stored - floor)
    return BatterySchedule(tuple(battery_plan), tuple(stored_plan), tuple(follows), round(total))


@dataclass(frozen=True)
class _Step:
    """One slot of the programme: the moves open to each stored energy and what they cost."""

    battery: BatteryLimits
    moves: np.ndarray  # AC energies (+discharge) on the grid of moves
    eff: float
    floor: float
    ceiling: float
    wear_u_per_kwh: int

    def options(self, stored: np.ndarray, net: float, buy: float, sell: float, t: int,
                levels: np.ndarray, next_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value of each move, its AC energy, the stored energy after it), one row per
        stored energy; column 0 is self-consumption."""
        slot_max_dis = float(self.moves[-1])
        slot_max_ch = -float(self.moves[0])
        if net > 0:  # self-consumption: cover the deficit as far as the battery can
            follow = np.minimum(np.minimum(net, stored - self.floor), slot_max_dis)
        else:  # store the surplus as far as it fits
            follow = -np.minimum(np.minimum(-net, (self.ceiling - stored) / self.eff), slot_max_ch)
        ac = np.concatenate([follow[:, None], np.broadcast_to(self.moves, (len(stored), len(self.moves)))],
                            axis=1)
        after = stored[:, None] - np.where(ac > 0, ac, ac * self.eff)
        grid = net - ac
        cost = (np.where(grid > 0, grid * buy, grid * sell) + self.wear_u_per_kwh * np.abs(ac)) / 1000
        cost *= 1 + TIE_BREAK * t
        q = cost + _interpolate(after, levels, next_values)
        # Out of the window, or the battery feeding the grid: not a move.
        q[(after < self.floor - 1e-6) | (after > self.ceiling + 1e-6) | (ac > max(net, 0.0) + 1e-9)] = np.inf
        return q, ac, after


def _interpolate(x: np.ndarray, levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation on the evenly spaced ``levels`` (clamped at the ends); faster
    than ``np.interp``, which searches for each point."""
    spacing = (levels[-1] - levels[0]) / (len(levels) - 1) or 1.0
    position = np.clip((x - levels[0]) / spacing, 0, len(levels) - 1)
    index = np.minimum(position.astype(np.int64), len(levels) - 2)
    weight = position - index
    result: np.ndarray = values[index] * (1 - weight) + values[index + 1] * weight
    return result
