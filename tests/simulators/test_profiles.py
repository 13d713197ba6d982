"""The bundled SimBench extract: loads, covers the default run, splits energy exactly."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.profiles import DATA_DIR, ProfileError, ProfileSet

JUNE_6 = int(dt.datetime(2016, 6, 6, tzinfo=dt.UTC).timestamp())
DAY_S = 86_400


@pytest.fixture(scope="module")
def profiles() -> ProfileSet:
    return ProfileSet.load_bundled()


def test_the_extract_is_small_and_documented() -> None:
    total = sum(p.stat().st_size for p in DATA_DIR.iterdir() if p.is_file())
    assert total < 1_000_000
    source = (DATA_DIR / "SOURCE.md").read_text()
    assert "simbench" in source and "1.6.3" in source and "1-LV-rural3--0-sw" in source
    assert "Open Database" in source and "Database Contents License" in source


def test_the_extract_has_household_loads_and_pv(profiles: ProfileSet) -> None:
    assert profiles.names("load") == ("H0-A", "H0-B", "H0-C", "H0-G", "H0-L")
    assert profiles.names("pv") == ("PV1", "PV3", "PV4", "PV7")
    assert len(profiles.households) == 113
    assert all(h.annual_kwh > 0 for h in profiles.households)
    assert sum(1 for h in profiles.households if h.pv_profile) == 16


def test_four_seasons_each_a_week_with_a_day_either_side(profiles: ProfileSet) -> None:
    for name in profiles.profiles:
        ranges = profiles.covered(name)
        assert len(ranges) == 4
        assert all(end - start == 9 * DAY_S for start, end in ranges)
    # the testbed's default run starts on 2016-06-06 with a tick one slot earlier
    assert profiles.energy_wh("H0-A", JUNE_6 - 900, JUNE_6 + 7 * DAY_S, 1000) > 0


def test_normalisation_per_1000_kwh_and_per_kwp(profiles: ProfileSet) -> None:
    for name in profiles.names("load"):
        week = profiles.energy_wh(name, JUNE_6, JUNE_6 + 7 * DAY_S, 1000)
        assert 2_000 < week < 40_000  # 1000 kWh/year is 19 kWh per average week
    for name in profiles.names("pv"):
        nine_days = profiles.energy_wh(name, JUNE_6 - DAY_S, JUNE_6 + 8 * DAY_S, 1000)
        assert 5_000 < nine_days < 9 * 8_000  # 1 kWp: a few kWh per June day
    assert profiles.energy_wh("PV1", JUNE_6, JUNE_6 + 3 * 3600, 5000) == 0  # night (UTC)


def test_scale_is_linear_up_to_rounding(profiles: ProfileSet) -> None:
    one = profiles.energy_wh("H0-B", JUNE_6, JUNE_6 + DAY_S, 1000)
    assert abs(profiles.energy_wh("H0-B", JUNE_6, JUNE_6 + DAY_S, 3000) - 3 * one) <= 2
    assert profiles.energy_wh("H0-B", JUNE_6, JUNE_6 + DAY_S, 0) == 0
    assert profiles.energy_wh("H0-B", JUNE_6, JUNE_6, 1000) == 0


@settings(max_examples=200)
@given(
    st.sampled_from(("H0-A", "H0-G", "PV3", "PV7")),
    st.lists(st.integers(0, 2 * DAY_S), min_size=1, max_size=12),
    st.integers(0, 20_000),
)
def test_sub_intervals_sum_exactly_to_the_whole(name: str, cuts: list[int], scale: int) -> None:
    profiles = ProfileSet.load_bundled()
    start, end = JUNE_6, JUNE_6 + 2 * DAY_S
    points = [start, *sorted(start + c for c in cuts), end]
    parts = [profiles.energy_wh(name, a, b, scale) for a, b in itertools.pairwise(points)]
    assert all(p >= 0 for p in parts)
    assert sum(parts) == profiles.energy_wh(name, start, end, scale)


def test_energy_inside_a_step_is_spread_evenly(profiles: ProfileSet) -> None:
    step = profiles.energy_wh("H0-A", JUNE_6 + 36_000, JUNE_6 + 36_900, 3000)
    thirds = [profiles.energy_wh("H0-A", JUNE_6 + 36_000 + i * 300, JUNE_6 + 36_300 + i * 300, 3000)
              for i in range(3)]
    assert sum(thirds) == step and max(thirds) - min(thirds) <= 1


def test_outside_the_extract_names_the_covered_ranges(profiles: ProfileSet) -> None:
    july = int(dt.datetime(2016, 7, 1, tzinfo=dt.UTC).timestamp())
    with pytest.raises(ProfileError) as info:
        profiles.energy_wh("H0-A", july, july + 900, 1000)
    message = str(info.value)
    assert "2016-07-01 00:00 .. 2016-07-01 00:15" in message
    assert "2016-06-05 00:00 .. 2016-06-14 00:00" in message and "2016-01-17 00:00" in message
    end_of_sample = JUNE_6 + 8 * DAY_S
    with pytest.raises(ProfileError, match="no data"):
        profiles.energy_wh("PV1", end_of_sample - 900, end_of_sample + 900, 1000)
    with pytest.raises(ProfileError, match="no profile 'H9'"):
        profiles.energy_wh("H9", JUNE_6, JUNE_6 + 900, 1000)
    with pytest.raises(ProfileError, match="ends before it starts"):
        profiles.energy_wh("H0-A", JUNE_6 + 900, JUNE_6, 1000)
