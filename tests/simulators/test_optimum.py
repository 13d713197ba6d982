"""The community optimum on cases small enough to solve by hand."""

from __future__ import annotations

import pytest

from simulators.optimum import OptHousehold, OptimumError, solve_optimum

PRICES = (300_000, 80_000)  # 300 u and 80 u per Wh
BIG = 10**6


def house(load: list[int], pv: list[int], **battery: int) -> OptHousehold:
    return OptHousehold(load, pv, BIG, BIG, **battery)


def battery(efficiency_pct: int, stored_wh: int = 0) -> dict[str, int]:
    return {"capacity_wh": 5000, "stored_wh": stored_wh, "floor_wh": 0, "ceiling_wh": 5000,
            "max_charge_w": 8000, "max_discharge_w": 8000, "efficiency_pct": efficiency_pct}


def test_without_a_battery_the_household_pays_the_tariff() -> None:
    result = solve_optimum([house([1000, 0], [0, 1000])], [PRICES] * 2, 900, BIG, BIG)
    assert result.bill_u == 1000 * 300 - 1000 * 80 and result.grid_import_wh == 1000


def test_a_battery_moves_a_surplus_to_a_later_deficit_and_loses_its_efficiency() -> None:
    # Charge 1000 Wh, store 900, cover 900 of the later 1000 Wh: import 100 Wh.
    result = solve_optimum([house([0, 1000], [1000, 0], **battery(90))], [PRICES] * 2, 900, BIG, BIG)
    assert result.bill_u == 100 * 300 and result.grid_export_wh == 0
    # A deficit before the surplus: the battery cannot help (it must end as full as it began).
    early = solve_optimum([house([1000, 0], [0, 1000], **battery(90))], [PRICES] * 2, 900, BIG, BIG)
    assert early.bill_u == 1000 * 300 - 1000 * 80 and early.stored_change_wh == 0


def test_members_trade_among_themselves_for_nothing() -> None:
    result = solve_optimum([house([0], [1000]), house([1000], [0])], [PRICES], 900, BIG, BIG)
    assert (result.bill_u, result.grid_import_wh, result.grid_export_wh) == (0, 0, 0)


def test_the_feeder_export_limit_curtails_pv() -> None:
    result = solve_optimum([house([0], [1000])], [PRICES], 900, BIG, 400)
    assert (result.bill_u, result.grid_export_wh, result.curtailed_wh) == (-400 * 80, 400, 600)


def test_the_battery_power_limits_hold() -> None:
    # 8 kW for 900 s is 2000 Wh; a 3000 Wh surplus exports the rest.
    result = solve_optimum([house([0, 3000], [3000, 0], **battery(100))], [PRICES] * 2, 900, BIG, BIG)
    assert result.bill_u == 1000 * 300 - 1000 * 80


def test_an_import_limit_that_cannot_be_met_is_reported() -> None:
    with pytest.raises(OptimumError, match="no solution"):
        solve_optimum([house([1000], [0])], [PRICES], 900, 500, BIG)


def test_stored_energy_worth_more_than_its_export_stays_in_the_battery() -> None:
    # 1000 Wh of PV: exported it fetches 80 u per Wh; charged, 900 Wh stay, worth 200 u each.
    pv = [house([0], [1000], **battery(90))]
    sold = solve_optimum(pv, [PRICES], 900, BIG, BIG, stored_value_u_per_kwh=80_000)
    assert (sold.bill_u, sold.stored_change_wh) == (-1000 * 80, 0)
    kept = solve_optimum(pv, [PRICES], 900, BIG, BIG, stored_value_u_per_kwh=200_000)
    assert (kept.bill_u, kept.grid_export_wh, kept.stored_change_wh) == (0, 0, 900)  # the bill leaves it out
