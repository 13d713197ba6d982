"""The agent's price path: published day-ahead prices as far as they are known, a
forecast beyond."""

from __future__ import annotations

import datetime as dt

from broker.community import PricePoint, Tariff, TouPeriod
from edge.price_forecast import PriceForecaster

SLOT_S = 900


def utc(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, tzinfo=dt.UTC).timestamp())


def hourly(days: int, start: int, price_of_hour: dict[int, int]) -> tuple[PricePoint, ...]:
    """Dynamic prices for ``days`` days: import by hour of day, feed-in a quarter of it."""
    points = []
    for hour in range(days * 24):
        import_u = price_of_hour.get(hour % 24, 250_000) + (hour // 24) * 1000
        points.append(PricePoint(start + hour * 3600, import_u, import_u // 4))
    return tuple(points)


def test_fixed_tariffs_are_known_over_the_whole_horizon() -> None:
    tou = Tariff(300_000, 80_000, time_of_use=(TouPeriod("17:00", "21:00", 450_000),))
    path = PriceForecaster(tou).path(utc(2016, 6, 6), utc(2016, 6, 6) // SLOT_S, 96)
    assert path.published == 96 and not path.constant
    assert path.import_u_per_kwh[17 * 4] == 450_000 and path.import_u_per_kwh[0] == 300_000
    assert PriceForecaster(Tariff()).path(0, 10, 5).constant


def test_day_ahead_prices_are_known_until_tomorrow_only_after_publication() -> None:
    start = utc(2016, 6, 1)
    tariff = Tariff(dynamic=hourly(10, start, {8: 400_000}))
    forecaster = PriceForecaster(tariff, SLOT_S)
    morning, afternoon = utc(2016, 6, 8, 10), utc(2016, 6, 8, 14)
    assert forecaster.published_until_s(morning) == utc(2016, 6, 9)
    assert forecaster.published_until_s(afternoon) == utc(2016, 6, 10)
    path = forecaster.path(morning, morning // SLOT_S, 96)
    assert path.published == 14 * 4  # 10:00 to midnight
    # Tomorrow's 08:00 is forecast from today's 08:00 (60 %) and the 08:00 a week before it (40 %).
    tomorrow_8 = (utc(2016, 6, 9, 8) - morning) // SLOT_S
    today, week_before = 400_000 + 7000, 400_000 + 1000  # prices rise 1000 a day
    assert path.import_u_per_kwh[tomorrow_8] == (60 * today + 40 * week_before + 50) // 100
    assert path.feedin_u_per_kwh[tomorrow_8] == (60 * (today // 4) + 40 * (week_before // 4) + 50) // 100
    assert path.import_u_per_kwh[0] == tariff.at(morning + SLOT_S).import_u_per_kwh  # published
    later = forecaster.path(afternoon, afternoon // SLOT_S, 96)
    assert later.published == 96  # after 13:00 all of tomorrow is out
    assert later.import_u_per_kwh[(utc(2016, 6, 9, 8) - afternoon) // SLOT_S] == 400_000 + 8000


def test_the_time_zone_decides_the_publication_hour() -> None:
    start = utc(2016, 6, 1)
    tariff = Tariff(dynamic=hourly(10, start, {}), timezone="Europe/Berlin")
    forecaster = PriceForecaster(tariff, SLOT_S)
    # 12:00 UTC is 14:00 in Berlin: tomorrow's prices are out, up to Berlin's midnight.
    assert forecaster.published_until_s(utc(2016, 6, 8, 12)) == utc(2016, 6, 9, 22)
    assert forecaster.published_until_s(utc(2016, 6, 8, 10)) == utc(2016, 6, 8, 22)
