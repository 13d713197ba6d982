"""The community's perfect-foresight optimum: a linear program solved with HiGHS.

With every household's load and PV known for the whole run, a central planner runs all
batteries (and curtails PV where it must) to minimise what the community pays the grid,
under the same limits the market has: each battery's power, SoC window and round-trip
efficiency (the loss booked on charging, as in :mod:`simulators.physics`), each
member's connection limits and the feeder's import and export limits. Energy traded
between members costs the community nothing, so only its exchange with the grid is
priced. Each battery must end with at least the energy it started with, so the optimum
cannot win by emptying them; what it stores beyond that is worth ``stored_value_u_per_kwh``
(the comparison values every scenario's stored energy at the run's last feed-in price, so
the optimum is the best plan under the very score it is compared by).

Per household ``h`` and slot ``t`` (energies in Wh over the slot)::

    imp - exp - charge + discharge - curtail = load - pv       (the meter)
    stored[t] - stored[t-1] - eff * charge + discharge = 0      (the battery)
    sum_h (imp - exp) - grid_import + grid_export = 0            (the feeder)

    minimise  sum_t  import_price[t] * grid_import[t] - feedin_price[t] * grid_export[t]
              - stored_value * sum_h stored[h, last]

The bounds carry the limits. Pure numerics on the inputs given; scipy is imported when
solving (the ``study`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from broker.units import SECONDS_PER_HOUR


@dataclass(frozen=True)
class OptHousehold:
    """One member's data for the program: energies per slot, and its limits."""

    load_wh: Sequence[int]
    pv_wh: Sequence[int]
    import_limit_wh: int
    export_limit_wh: int
    capacity_wh: int = 0  # 0: no battery
    stored_wh: int = 0  # at the start
    floor_wh: int = 0
    ceiling_wh: int = 0
    max_charge_w: int = 0
    max_discharge_w: int = 0
    efficiency_pct: int = 100


@dataclass(frozen=True)
class OptimumResult:
    bill_u: int  # what the community pays the grid (negative: earns)
    grid_import_wh: int
    grid_export_wh: int
    curtailed_wh: int
    stored_change_wh: int  # batteries' end minus start, summed
    status: str


class OptimumError(RuntimeError):
    """The program could not be solved (infeasible limits, or no solver)."""


def solve_optimum(
    households: Sequence[OptHousehold], prices: Sequence[tuple[int, int]], slot_s: int,
    feeder_import_wh: int, feeder_export_wh: int, stored_value_u_per_kwh: int = 0,
) -> OptimumResult:
    """The least the community can pay over ``len(prices)`` slots, less what the batteries
    end with beyond their start valued at ``stored_value_u_per_kwh``; ``prices`` holds
    (import, feed-in) in micro-units per kWh for each slot. The result's bill is what the
    grid is paid, without that value."""
    try:
        from scipy.optimize import linprog
        from scipy.sparse import coo_matrix
    except ImportError:
        raise OptimumError("the optimum needs scipy: pip install 'gridmesh[study]'") from None
    slots = len(prices)
    if any(len(h.load_wh) != slots or len(h.pv_wh) != slots for h in households):
        raise ValueError("every household needs one load and one PV value per slot")
    n_per = 6  # imp, exp, charge, discharge, curtail, stored
    base_grid = len(households) * slots * n_per
    n_vars = base_grid + 2 * slots

    def var(h: int, t: int, k: int) -> int:
        return (h * slots + t) * n_per + k

    imp_, exp_, chg_, dis_, cur_, sto_ = range(n_per)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rhs: list[float] = []
    lower = np.zeros(n_vars)
    upper = np.zeros(n_vars)

    def add(row: int, col: int, value: float) -> None:
        rows.append(row)
        cols.append(col)
        vals.append(value)

    row = 0
    for h, house in enumerate(households):
        charge_wh = house.max_charge_w * slot_s / SECONDS_PER_HOUR if house.capacity_wh else 0.0
        discharge_wh = house.max_discharge_w * slot_s / SECONDS_PER_HOUR if house.capacity_wh else 0.0
        for t in range(slots):
            load, pv = house.load_wh[t], house.pv_wh[t]
            for k, value in ((imp_, 1.0), (exp_, -1.0), (chg_, -1.0), (dis_, 1.0), (cur_, -1.0)):
                add(row, var(h, t, k), value)
            rhs.append(load - pv)
            row += 1
            add(row, var(h, t, sto_), 1.0)
            add(row, var(h, t, chg_), -house.efficiency_pct / 100)
            add(row, var(h, t, dis_), 1.0)
            if t > 0:
                add(row, var(h, t - 1, sto_), -1.0)
            rhs.append(house.stored_wh if t == 0 else 0.0)
            row += 1
            upper[var(h, t, imp_)] = house.import_limit_wh
            upper[var(h, t, exp_)] = house.export_limit_wh
            upper[var(h, t, chg_)] = charge_wh
            upper[var(h, t, dis_)] = discharge_wh
            upper[var(h, t, cur_)] = pv
            lower[var(h, t, sto_)] = house.floor_wh if house.capacity_wh else 0
            upper[var(h, t, sto_)] = house.ceiling_wh if house.capacity_wh else 0
        if house.capacity_wh:
            lower[var(h, slots - 1, sto_)] = max(lower[var(h, slots - 1, sto_)], house.stored_wh)
    for t in range(slots):
        for h in range(len(households)):
            add(row, var(h, t, imp_), 1.0)
            add(row, var(h, t, exp_), -1.0)
        add(row, base_grid + 2 * t, -1.0)
        add(row, base_grid + 2 * t + 1, 1.0)
        rhs.append(0.0)
        row += 1
        upper[base_grid + 2 * t] = feeder_import_wh
        upper[base_grid + 2 * t + 1] = feeder_export_wh
    cost = np.zeros(n_vars)
    for t, (import_price, feedin_price) in enumerate(prices):
        cost[base_grid + 2 * t] = import_price / 1000  # u per Wh
        cost[base_grid + 2 * t + 1] = -feedin_price / 1000
    for h, house in enumerate(households):
        if house.capacity_wh:
            cost[var(h, slots - 1, sto_)] = -stored_value_u_per_kwh / 1000
    matrix = coo_matrix((vals, (rows, cols)), shape=(row, n_vars)).tocsr()
    solved = linprog(cost, A_eq=matrix, b_eq=np.array(rhs), bounds=np.column_stack([lower, upper]),
                     method="highs")
    if solved.status != 0:
        raise OptimumError(f"the community's program has no solution: {solved.message}")
    x = solved.x
    grid_import = x[base_grid::2]
    grid_export = x[base_grid + 1::2]
    stored_change = sum(x[var(h, slots - 1, sto_)] - house.stored_wh
                        for h, house in enumerate(households) if house.capacity_wh)
    curtailed = sum(x[var(h, t, cur_)] for h in range(len(households)) for t in range(slots))
    bill = sum(imp_price * x[base_grid + 2 * t] - feedin_price * x[base_grid + 2 * t + 1]
               for t, (imp_price, feedin_price) in enumerate(prices)) / 1000
    return OptimumResult(
        bill_u=round(float(bill)), grid_import_wh=round(float(grid_import.sum())),
        grid_export_wh=round(float(grid_export.sum())), curtailed_wh=round(float(curtailed)),
        stored_change_wh=round(float(stored_change)), status=str(solved.message),
    )
