"""Key figures of a run, on numbers small enough to check by hand."""

from __future__ import annotations

import pytest

from simulators.kpis import community_kpis, gini, household_kpis, share_pct


def slot(load: int, pv: int, imp: int, exp: int, bill: int) -> dict[str, int]:
    return {"load_wh": load, "pv_wh": pv, "import_wh": imp, "export_wh": exp, "bill_u": bill}


def test_gini_of_equal_savings_is_zero_and_of_one_winner_is_near_one() -> None:
    assert gini([5.0, 5.0, 5.0]) == 0
    assert gini([0.0, 0.0, 0.0, 12.0]) == 0.75  # (n - 1) / n for one who takes all
    assert gini([1.0, 3.0]) == 0.25  # |1 - 3| * 2 / (2 * 4 * 2)
    assert gini([-1.0, 3.0]) == 1.0  # one loses what the other gains beyond the mean
    assert gini([]) is None and gini([2.0, -2.0]) is None


def test_shares_of_nothing_are_not_a_number() -> None:
    assert share_pct(250, 1000) == 75.0 and share_pct(0, 0) is None


def test_a_households_figures() -> None:
    rows = [slot(1000, 0, 1000, 0, 300_000), slot(200, 1200, 0, 400, -32_000)]
    kpis = household_kpis("h001", rows, baseline_bill_u=400_000, slot_s=900, p2p_bought_wh=600,
                          p2p_sold_wh=0)
    assert kpis["bill_u"] == 268_000 and kpis["savings_u"] == 132_000
    assert kpis["self_sufficiency_pct"] == pytest.approx(100 * (1 - 1000 / 1200), abs=0.05)
    assert kpis["self_consumption_pct"] == pytest.approx(100 * (1 - 400 / 1200), abs=0.05)
    assert (kpis["peak_import_w"], kpis["peak_export_w"]) == (4000, 1600)  # Wh in 900 s


def test_the_communitys_figures() -> None:
    members = [
        {"bill_u": 100, "baseline_bill_u": 300, "savings_u": 200, "p2p_bought_wh": 50, "p2p_sold_wh": 0},
        {"bill_u": 200, "baseline_bill_u": 200, "savings_u": 0, "p2p_bought_wh": 0, "p2p_sold_wh": 0},
    ]
    slots = [{"feeder_import_wh": 300, "feeder_export_wh": 0, "p2p_wh": 50},
             {"feeder_import_wh": 0, "feeder_export_wh": 100, "p2p_wh": 0}]
    kpis = community_kpis(members, slots, load_wh=1200, pv_wh=400, slot_s=900)
    assert kpis["savings_pct"] == 40.0 and kpis["participation_pct"] == 50.0
    assert (kpis["self_sufficiency_pct"], kpis["self_consumption_pct"]) == (75.0, 75.0)
    assert (kpis["peak_import_w"], kpis["peak_export_w"], kpis["p2p_wh"]) == (1200, 400, 50)
    assert kpis["gini_savings"] == 0.5
