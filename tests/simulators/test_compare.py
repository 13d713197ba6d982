"""The comparison of scenarios: bills, and bills less the stored energy each scenario gained."""

from __future__ import annotations

import pytest

from simulators.compare import Comparison, Scenario


def comparison(stored_c: int) -> Comparison:
    return Comparison({
        "a": Scenario(bill_u=1_000_000, grid_import_wh=4000, grid_export_wh=0, stored_change_wh=0),
        "b": Scenario(bill_u=900_000, grid_import_wh=3000, grid_export_wh=0, stored_change_wh=500),
        "c": Scenario(bill_u=1_100_000, grid_import_wh=4500, grid_export_wh=0, stored_change_wh=stored_c),
        "d": Scenario(bill_u=500_000, grid_import_wh=2000, grid_export_wh=0, stored_change_wh=0),
    }, stored_price_u_per_kwh=100_000)


def test_a_run_that_filled_its_batteries_is_credited_with_what_they_hold() -> None:
    compared = comparison(stored_c=4000)  # 4 kWh at 0.10 is worth 0.40
    assert compared.efficiency == pytest.approx((1.0 - 1.1) / (1.0 - 0.5))  # worse than doing nothing
    assert compared.valued_bill_u("c") == 700_000 and compared.valued_bill_u("b") == 850_000
    assert compared.efficiency_valued == pytest.approx((1.0 - 0.7) / (1.0 - 0.5))
    data = compared.as_dict()
    assert data["stored_price_u_per_kwh"] == 100_000
    assert data["efficiency_valued"] == compared.efficiency_valued
    scenarios: dict[str, dict[str, int]] = data["scenarios"]  # type: ignore[assignment]
    assert scenarios["c"] == {"bill_u": 1_100_000, "grid_import_wh": 4500, "grid_export_wh": 0,
                              "stored_change_wh": 4000, "valued_bill_u": 700_000}


def test_the_printed_table_shows_both_efficiencies() -> None:
    lines = comparison(stored_c=4000).lines()
    assert lines[0].split()[-1] == "valued" and lines[3].split()[-1] == "0.70"
    assert lines[-2:] == ["efficiency (a - c) / (a - d): -0.200",
                          "  on valued bills:           0.600 (the bill less the stored energy gained, at "
                          "0.100/kWh)"]


def test_nothing_to_save_has_no_efficiency() -> None:
    flat = Comparison({k: Scenario(1_000, 0, 0, 0) for k in "abcd"}, 100_000)
    assert flat.efficiency is None and flat.efficiency_valued is None
    assert all("n/a (nothing to save)" in line for line in flat.lines()[-2:])
