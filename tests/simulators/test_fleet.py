"""Households drawn from the bundled feeder: deterministic, sized from the data."""

from __future__ import annotations

import dataclasses

import pytest

from simulators.fleet import MAX_HOUSEHOLD_PV_W, PROSUMER_BATTERY, make_households
from simulators.profiles import ProfileSet


def test_the_same_arguments_give_the_same_households() -> None:
    assert make_households(20, 7) == make_households(20, 7)
    assert make_households(20, 7) != make_households(20, 8)


def test_ids_roles_and_sizes() -> None:
    profiles = ProfileSet.load_bundled()
    feeder = {(h.load_profile, h.annual_kwh) for h in profiles.households}
    households = make_households(150, 3, prosumer_pct=40)
    assert [h.id for h in households] == [f"h{i:03d}" for i in range(1, 151)]
    prosumers = [h for h in households if h.role == "prosumer"]
    assert len(prosumers) == 60
    for h in households:
        assert (h.load_profile, h.annual_load_kwh) in feeder
        if h.role == "prosumer":
            assert h.pv_profile in profiles.names("pv") and 0 < h.pv_peak_w <= MAX_HOUSEHOLD_PV_W
            assert h.battery == PROSUMER_BATTERY
        else:
            assert h.pv_profile is None and h.battery is None and h.pv_peak_w == 0


@pytest.mark.parametrize(
    ("n", "pct", "expected"), [(10, 0, 0), (10, 100, 10), (5, 50, 3), (1, 50, 1), (0, 50, 0)]
)
def test_prosumer_share_rounds_half_up(n: int, pct: int, expected: int) -> None:
    assert sum(h.role == "prosumer" for h in make_households(n, 1, prosumer_pct=pct)) == expected


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="prosumer_pct"):
        make_households(3, 1, prosumer_pct=101)
    with pytest.raises(ValueError, match="n must be"):
        make_households(-1, 1)


def test_pv_only_households_have_pv_and_no_battery_and_leave_the_rest_unchanged() -> None:
    before = make_households(20, 3, prosumer_pct=40)
    mixed = make_households(20, 3, prosumer_pct=40, pv_only_pct=25)
    roles = [h.role for h in mixed]
    assert (roles.count("prosumer"), roles.count("pv"), roles.count("consumer")) == (8, 5, 7)
    for old, new in zip(before, mixed, strict=True):
        if new.role == "pv":
            assert old.role == "consumer" and new.pv_profile is not None and new.battery is None
        else:
            assert new == old  # prosumers and the remaining consumers are as before


def test_shares_above_100_percent_are_refused() -> None:
    with pytest.raises(ValueError, match="add up to at most 100"):
        make_households(10, 1, prosumer_pct=60, pv_only_pct=50)


def test_prosumers_get_the_battery_they_are_given() -> None:
    slow = dataclasses.replace(PROSUMER_BATTERY, ramp_w_per_s=50)
    households = make_households(6, 2, prosumer_pct=50, battery=slow)
    assert {h.battery for h in households if h.role == "prosumer"} == {slow}
