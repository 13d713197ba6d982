"""Derive the bundled dynamic tariff (2016, hourly) from SimBench's national-scale profiles.

No package ships day-ahead market prices, so gridmesh derives a price series from what
SimBench does ship: the 2016 high-voltage load profiles and the wind and PV generation
profiles. A day-ahead price follows the residual load (demand minus wind and solar) along
the merit order; this script uses that relation with German 2016 magnitudes:

    residual_gw = LOAD_GW * load(t) - WIND_GW * wind(t) - PV_GW * pv(t)
    spot        = SPOT_MEAN + SPOT_SLOPE * (residual_gw - mean residual)     [EUR/MWh]
                  (steeper above the mean, as the merit order is convex), clamped to
                  [SPOT_FLOOR, SPOT_CAP]

where ``load`` is a national demand shape with a mean of 1: 30 % households (the mean of
SimBench's H0 profiles), 30 % commerce (the mean of its G0..G6 profiles) and 40 % flat
industrial demand, each profile scaled to a mean of 1; ``wind`` the mean of the twelve
wind profiles (WP1..WP12) and ``pv`` the mean of the eight PV profiles (PV1..PV8), both
as capacity factors. A household's dynamic tariff passes the spot price through: it
imports at ``spot * 1.19`` (VAT) plus ``SURCHARGE_U_PER_KWH`` (grid fees, levies) and is
paid ``max(0, spot)`` for feeding in.
The series is a study input with realistic shape and magnitude (daily and weekly cycle,
midday solar dips, windy nights), not a record of any market.

Run it with a Python that has ``simbench`` installed (it is not a gridmesh dependency):

    python simulators/extract_prices.py [--out simulators/data]

It writes ``prices-2016-residual-load.csv`` in the format of ``--prices-csv``
(``start_utc,import_u_per_kwh,feedin_u_per_kwh``).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib
from pathlib import Path
from typing import Any

FILE_NAME = "prices-2016-residual-load.csv"
LOAD_GW, WIND_GW, PV_GW = 55.0, 50.0, 41.0  # German 2016: mean demand, installed wind and PV
SPOT_MEAN, SPOT_SLOPE_LOW, SPOT_SLOPE_HIGH = 29.0, 0.9, 1.6  # EUR/MWh, EUR/MWh per GW
SPOT_FLOOR, SPOT_CAP = -60.0, 120.0
SURCHARGE_U_PER_KWH = 230_000
VAT = 1.19
STEPS_PER_HOUR = 4
HOUSEHOLDS = ("H0-A", "H0-B", "H0-C", "H0-G", "H0-L")
COMMERCE = ("G0-A", "G1-A", "G2-A", "G3-A", "G4-A", "G5-A", "G6-A")
SHARE_HOUSEHOLDS, SHARE_COMMERCE = 0.3, 0.3


def _columns(path: Path, names: list[str]) -> dict[str, list[float]]:
    with path.open(newline="") as fh:
        rows = csv.reader(fh, delimiter=";")
        header = next(rows)
        index = {name: header.index(name) for name in names}
        values: dict[str, list[float]] = {name: [] for name in names}
        for row in rows:
            for name, column in index.items():
                values[name].append(float(row[column]))
    return values


def hourly_spot(folder: Path) -> list[float]:
    """The derived spot price per hour of 2016, EUR/MWh."""
    loads = _columns(folder / "LoadProfile.csv", [f"{name}_pload" for name in (*HOUSEHOLDS, *COMMERCE)])
    res = _columns(folder / "RESProfile.csv",
                   [f"WP{i}" for i in range(1, 13)] + [f"PV{i}" for i in range(1, 9)])
    steps = len(next(iter(loads.values())))
    shapes = {name: [x * steps / sum(v) for x in v] for name, v in loads.items()}
    load = [SHARE_HOUSEHOLDS * sum(shapes[f"{n}_pload"][t] for n in HOUSEHOLDS) / len(HOUSEHOLDS)
            + SHARE_COMMERCE * sum(shapes[f"{n}_pload"][t] for n in COMMERCE) / len(COMMERCE)
            + (1 - SHARE_HOUSEHOLDS - SHARE_COMMERCE) for t in range(steps)]
    wind = [sum(res[f"WP{i}"][t] for i in range(1, 13)) / 12 for t in range(steps)]
    pv = [sum(res[f"PV{i}"][t] for i in range(1, 9)) / 8 for t in range(steps)]
    residual = [LOAD_GW * load[t] - WIND_GW * wind[t] - PV_GW * pv[t] for t in range(steps)]
    hours = steps // STEPS_PER_HOUR
    hourly = [sum(residual[h * STEPS_PER_HOUR:(h + 1) * STEPS_PER_HOUR]) / STEPS_PER_HOUR
              for h in range(hours)]
    centre = sum(hourly) / hours
    spot = []
    for value in hourly:
        slope = SPOT_SLOPE_HIGH if value > centre else SPOT_SLOPE_LOW
        spot.append(max(SPOT_FLOOR, min(SPOT_CAP, SPOT_MEAN + slope * (value - centre))))
    return spot


def extract(out: Path) -> Path:
    simbench: Any = importlib.import_module("simbench")  # only in the extraction environment
    folder = Path(simbench.__file__).parent / "networks" / "1-complete_data-mixed-all-0-sw"
    spot = hourly_spot(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILE_NAME
    start = dt.datetime(2016, 1, 1, tzinfo=dt.UTC)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["start_utc", "import_u_per_kwh", "feedin_u_per_kwh"])
        for hour, price in enumerate(spot):
            stamp = (start + dt.timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M")
            spot_u = round(price * 1000)  # EUR/MWh -> micro-EUR/kWh
            writer.writerow([stamp, SURCHARGE_U_PER_KWH + round(spot_u * VAT), max(0, spot_u)])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    path = extract(parser.parse_args().out)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
