"""The bundled dynamic tariff: what a run takes of it, and a bad price file's error."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from broker.community import read_price_csv
from gridmesh.config import ConfigError
from simulators.testbed_config import BUNDLED_PRICES, load_testbed_config

DAY = 86_400


def test_the_bundled_series_is_a_year_of_hourly_prices_with_feed_in_under_import() -> None:
    points = read_price_csv(BUNDLED_PRICES)
    assert len(points) == 366 * 24
    assert all(b.start_s - a.start_s == 3600 for a, b in itertools.pairwise(points))
    assert all(0 <= p.feedin_u_per_kwh < p.import_u_per_kwh for p in points)
    # A daily cycle: January evenings cost more than January nights.
    jan_18 = int(dt.datetime(2016, 1, 18, tzinfo=dt.UTC).timestamp())
    by_start = {p.start_s: p.import_u_per_kwh for p in points}
    assert by_start[jan_18 + 18 * 3600] > by_start[jan_18 + 3 * 3600]


def test_a_run_takes_the_prices_it_can_use_from_a_week_before_to_two_days_after() -> None:
    config = load_testbed_config(None, {"prices_csv": "bundled", "start": "2016-01-18", "slots": 192})
    points = config.community.tariff.dynamic
    start = config.testbed.start_s
    assert points[0].start_s == start - 8 * DAY  # the point in force when the span opens
    assert points[-1].start_s == start + 2 * DAY + 2 * DAY  # two days of run, two days past it
    assert len(points) == (8 + 4) * 24 + 1


def test_a_price_file_that_does_not_exist_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_testbed_config(None, {"prices_csv": str(tmp_path / "missing.csv")})
    assert (info.value.source, info.value.path) == ("command line", "--prices-csv")
    assert "missing.csv" in info.value.problem
