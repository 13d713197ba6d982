"""The grid's prices over time: flat, time-of-use periods in a local time zone, and
dynamic prices from a CSV that override both from their start."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from broker.community import PricePoint, Tariff, TouPeriod, read_price_csv
from gridmesh.config import ConfigError, build

BERLIN_TOU = Tariff(
    timezone="Europe/Berlin",
    time_of_use=(TouPeriod("17:00", "21:00", import_u_per_kwh=450_000),
                 TouPeriod("23:00", "06:00", import_u_per_kwh=200_000, feedin_u_per_kwh=50_000,
                           days="weekdays")),
)


def utc(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp())


def prices(tariff: Tariff, t_s: int) -> tuple[int, int]:
    flat = tariff.at(t_s)
    assert flat.flat
    return flat.import_u_per_kwh, flat.feedin_u_per_kwh


def test_a_flat_tariff_is_the_same_at_every_moment() -> None:
    assert prices(Tariff(), utc(2016, 6, 6, 18)) == (300_000, 80_000)


def test_time_of_use_periods_follow_local_time_and_weekdays() -> None:
    # 2016-06-06 is a Monday; Berlin is UTC+2 in June.
    assert prices(BERLIN_TOU, utc(2016, 6, 6, 14, 45)) == (300_000, 80_000)  # 16:45 local
    assert prices(BERLIN_TOU, utc(2016, 6, 6, 15, 0)) == (450_000, 80_000)  # 17:00 local, inclusive
    assert prices(BERLIN_TOU, utc(2016, 6, 6, 19, 0)) == (300_000, 80_000)  # 21:00 local, exclusive
    assert prices(BERLIN_TOU, utc(2016, 6, 6, 22, 0)) == (200_000, 50_000)  # midnight, a weekday
    assert prices(BERLIN_TOU, utc(2016, 6, 11, 22, 0)) == (300_000, 80_000)  # a Sunday: not covered


def test_dynamic_prices_override_from_their_start_until_the_next_point() -> None:
    tariff = Tariff(time_of_use=BERLIN_TOU.time_of_use, timezone="Europe/Berlin",
                    dynamic=(PricePoint(utc(2016, 6, 6, 16), 210_000, 60_000),
                             PricePoint(utc(2016, 6, 6, 16, 15), 230_000, 61_000)))
    assert prices(tariff, utc(2016, 6, 6, 15)) == (450_000, 80_000)  # before the first point: TOU
    assert prices(tariff, utc(2016, 6, 6, 16)) == (210_000, 60_000)
    assert prices(tariff, utc(2016, 6, 6, 16, 14)) == (210_000, 60_000)
    assert prices(tariff, utc(2016, 6, 7, 3)) == (230_000, 61_000)  # the last holds on


def test_impossible_tariffs_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"time_of_use\[0\]\.feedin_u_per_kwh \(80000\) must not exceed"):
        Tariff(time_of_use=(TouPeriod("17:00", "21:00", import_u_per_kwh=50_000),))
    with pytest.raises(ValueError, match="timezone: unknown time zone 'Mars/Olympus'"):
        Tariff(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="end: '25:00' is not a time of day"):
        TouPeriod("17:00", "25:00")
    with pytest.raises(ValueError, match=r"dynamic\[1\]\.start_s: must be after the point before it"):
        Tariff(dynamic=(PricePoint(100, 1, 0), PricePoint(100, 1, 0)))
    with pytest.raises(ConfigError, match=r"x.yaml: time_of_use\[0\]\.days: .*weekdays"):
        build(Tariff, {"time_of_use": [{"start": "01:00", "end": "02:00", "days": "sundays"}]}, "x.yaml")


def test_a_price_csv_is_read_and_its_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("start_utc,import_u_per_kwh,feedin_u_per_kwh\n2016-06-06T00:00,250000,70000\n"
                    "2016-06-06T00:15,260000,71000\n")
    assert read_price_csv(path) == (PricePoint(utc(2016, 6, 6), 250_000, 70_000),
                                    PricePoint(utc(2016, 6, 6, 0, 15), 260_000, 71_000))
    path.write_text("start_utc,import_u_per_kwh,feedin_u_per_kwh\n2016-06-06T00:00,250000,70000\n"
                    "2016-06-06T00:15,60000,71000\n")
    with pytest.raises(ValueError, match=r"line 3: feedin_u_per_kwh \(71000\) must not exceed"):
        read_price_csv(path)
    path.write_text("start_utc,import_u_per_kwh,feedin_u_per_kwh\n2016-06-06T00:15,1,0\n2016-06-06T00:00,1,0\n")
    with pytest.raises(ValueError, match="line 3: 2016-06-06T00:00 is not after the line before it"):
        read_price_csv(path)
    path.write_text("when,price\n")
    with pytest.raises(ValueError, match="header must be start_utc,import_u_per_kwh,feedin_u_per_kwh"):
        read_price_csv(path)
