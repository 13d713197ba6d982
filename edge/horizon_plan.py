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
                 slot_s: int, wear_u_per_kwh: int = WEAR_U_PER_KWH,
                 first_moves: int | None = None) -> BatterySchedule:
    """The cheapest battery schedule for the forecast ``net_wh`` (see the module doc).

    ``first_moves`` works out only that many slots' moves forwards (the schedule's tuples
    are that long; its cost is theirs plus the value of where they leave the battery). An
    agent acts on the first move alone, and the backward pass that finds it is the same:
    ``first_moves=1`` saves the rest of the forward pass, a third of the plan's time."""
    slots = len(net_wh)
    if slots == 0 or len(prices.import_u_per_kwh) < slots:
        raise ValueError(f"prices for {len(prices.import_u_per_kwh)} slots, forecast for {slots}")
    grid = _Grid(battery, slot_s, wear_u_per_kwh)
    net = [float(n) for n in net_wh]
    buy, sell = prices.import_u_per_kwh[:slots], prices.feedin_u_per_kwh[:slots]
    worth = min(buy) * grid.eff / 1000  # per Wh left at the end
    values = np.empty((slots + 1, MAX_LEVELS))
    values[slots] = -worth * (grid.levels - grid.floor)
    for t in range(slots - 1, -1, -1):  # backwards: the value of each stored energy at each slot
        values[t] = grid.best_values(net[t], buy[t], sell[t], t, values[t + 1])
    stored = float(max(grid.floor, min(grid.ceiling, stored_wh)))
    battery_plan, stored_plan, follows, total = [], [], [], 0.0
    planned = slots if first_moves is None else max(1, min(slots, first_moves))
    for t in range(planned):  # forwards: the moves from the energy actually stored
        ac, after, cost, choice = grid.best_move(stored, net[t], buy[t], sell[t], t, values[t + 1])
        total += cost
        stored = after
        battery_plan.append(round(ac))
        stored_plan.append(round(stored))
        follows.append(choice == 0)
    total += float(grid.value_at(values[planned], stored))  # at the end: the energy left's worth
    return BatterySchedule(tuple(battery_plan), tuple(stored_plan), tuple(follows), round(total))


class _Grid:
    """The programme's grids: stored-energy levels and battery moves, with what does not
    change from slot to slot worked out once (where each move from each level lands, and
    the interpolation weights there)."""

    def __init__(self, battery: BatteryLimits, slot_s: int, wear_u_per_kwh: int) -> None:
        self.floor = float(battery.floor_wh)
        self.ceiling = float(max(battery.floor_wh, battery.ceiling_wh))
        self.levels = np.linspace(self.floor, self.ceiling, MAX_LEVELS)
        self.spacing = (self.ceiling - self.floor) / (MAX_LEVELS - 1) or 1.0
        self.eff = battery.efficiency_pct / 100
        self.max_discharge = battery.max_discharge_w * slot_s / SECONDS_PER_HOUR
        self.max_charge = battery.max_charge_w * slot_s / SECONDS_PER_HOUR
        self.moves = np.unique(np.append(np.linspace(-self.max_charge, self.max_discharge, MOVES), 0.0))
        after = self.levels[:, None] - self._drawn(self.moves)[None, :]
        self.in_window = (after >= self.floor - 1e-6) & (after <= self.ceiling + 1e-6)
        self.index, self.weight = self._weights(after)
        self.wear_u_per_kwh = wear_u_per_kwh

    def _drawn(self, ac: np.ndarray) -> np.ndarray:
        """Stored energy taken by AC energies (+discharge; a charge stores ``eff`` of it)."""
        result: np.ndarray = np.where(ac > 0, ac, ac * self.eff)
        return result

    def _weights(self, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        position = np.minimum(np.maximum((stored - self.floor) / self.spacing, 0.0), MAX_LEVELS - 1)
        index = np.minimum(position.astype(np.int64), MAX_LEVELS - 2)
        return index, position - index

    def _value(self, values: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
        result: np.ndarray = values[index] * (1 - weight) + values[index + 1] * weight
        return result

    def value_at(self, values: np.ndarray, stored: float) -> float:
        return float(self._value(values, *self._weights(np.asarray([stored])))[0])

    def _cost(self, ac: np.ndarray, net: float, buy: int, sell: int, t: int) -> np.ndarray:
        grid = net - ac
        cost = (np.where(grid > 0, grid * buy, grid * sell) + self.wear_u_per_kwh * np.abs(ac)) / 1000
        result: np.ndarray = cost * (1 + TIE_BREAK * t)
        return result

    def _follow(self, stored: np.ndarray, net: float) -> np.ndarray:
        """Self-consumption: cover the deficit, or store the surplus, as far as the battery can."""
        if net > 0:
            result: np.ndarray = np.minimum(np.minimum(net, stored - self.floor), self.max_discharge)
            return result
        result = -np.minimum(np.minimum(-net, (self.ceiling - stored) / self.eff), self.max_charge)
        return result

    def best_values(self, net: float, buy: int, sell: int, t: int, next_values: np.ndarray) -> np.ndarray:
        """The value of each level at slot ``t``: its best move's cost plus where it lands."""
        q = (self._cost(self.moves, net, buy, sell, t)[None, :]
             + self._value(next_values, self.index, self.weight))
        q[~self.in_window | (self.moves > max(net, 0.0) + 1e-9)[None, :]] = np.inf  # no feeding the grid
        follow = self._follow(self.levels, net)
        landed = self._value(next_values, *self._weights(self.levels - self._drawn(follow)))
        best: np.ndarray = np.minimum(self._cost(follow, net, buy, sell, t) + landed, q.min(axis=1))
        return best

    def best_move(self, stored: float, net: float, buy: int, sell: int, t: int,
                  next_values: np.ndarray) -> tuple[float, float, float, int]:
        """(AC energy, stored energy after, its cost, which move: 0 is self-consumption)
        of the best move from ``stored``; self-consumption wins ties."""
        ac = np.append(self._follow(np.asarray([stored]), net), self.moves)
        after = stored - self._drawn(ac)
        cost = self._cost(ac, net, buy, sell, t)
        q = cost + self._value(next_values, *self._weights(after))
        q[(after < self.floor - 1e-6) | (after > self.ceiling + 1e-6) | (ac > max(net, 0.0) + 1e-9)] = np.inf
        choice = int(np.argmin(q))
        return float(ac[choice]), float(after[choice]), float(cost[choice]), choice
