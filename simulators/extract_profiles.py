"""Extract the bundled profile sample from a SimBench low-voltage feeder.

Run it with a Python that has ``simbench`` installed (it is not a gridmesh dependency):

    python simulators/extract_profiles.py                       # the default feeder
    python simulators/extract_profiles.py --feeder 1-LV-semiurb5--0-sw --out /tmp/data

It writes two CSV files into ``--out`` (default: ``simulators/data``):

- ``profiles-<feeder>.csv``: for every distinct household load profile (H0-*) and PV
  profile of the feeder, integer Wh per 15-minute step, loads normalised to
  1000 kWh/year and PV to 1 kWp, over four sample weeks (one per season). Each sample
  runs Monday to Sunday with one extra day on either side, so a run that starts on the
  Monday (and its first tick, one slot earlier) stays inside it.
- ``feeder-<feeder>.csv``: the feeder's households: SimBench load name, load profile,
  annual kWh, and the PV system on the same bus (peak W, profile), if any.

Step values are differences of the rounded cumulative annual energy, so a profile's
rounded values add up to its true energy within 1 Wh over any span.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from pathlib import Path
from typing import Any

DEFAULT_FEEDER = "1-LV-rural3--0-sw"
STEP_S = 900
STEPS_PER_DAY = 86_400 // STEP_S
YEAR = 2016
# Mondays of the four sample weeks: winter, spring, summer (the testbed's default
# start day 2016-06-06), autumn.
SAMPLE_MONDAYS = ("2016-01-18", "2016-04-11", "2016-06-06", "2016-10-10")
DAYS_BEFORE, DAYS_AFTER = 1, 1
LOAD_REFERENCE_WH = 1_000_000  # 1000 kWh per year
PV_REFERENCE_W = 1000  # 1 kWp
HOUSEHOLD_PREFIX = "H0"


def _year_start_s() -> int:
    return int(dt.datetime(YEAR, 1, 1, tzinfo=dt.UTC).timestamp())


def _cumulative_rounded(values: list[float], total_wh: float) -> list[int]:
    """Integer energy per step whose running sums are the rounded true running sums."""
    out: list[int] = []
    running = 0.0
    previous = 0
    for value in values:
        running += value * total_wh
        rounded = int(running + 0.5)
        out.append(rounded - previous)
        previous = rounded
    return out


def _window_rows(monday: str) -> range:
    day = dt.date.fromisoformat(monday)
    first = (day - dt.date(YEAR, 1, 1)).days - DAYS_BEFORE
    days = DAYS_BEFORE + 7 + DAYS_AFTER
    return range(first * STEPS_PER_DAY, (first + days) * STEPS_PER_DAY)


def extract(feeder: str, out: Path) -> tuple[Path, Path]:
    import importlib
    import warnings

    warnings.filterwarnings("ignore")  # pandapower's deprecation chatter
    simbench: Any = importlib.import_module("simbench")  # only in the extraction environment
    net: Any = simbench.get_simbench_net(feeder)
    loads = net.load[net.load.profile.str.startswith(HOUSEHOLD_PREFIX)]
    sgens = net.sgen[net.sgen.type == "PV"]
    load_table = net.profiles["load"]
    pv_table = net.profiles["renewables"]
    rows_per_year = len(load_table)
    if rows_per_year != 366 * STEPS_PER_DAY:
        raise SystemExit(f"{feeder}: expected {366 * STEPS_PER_DAY} rows for 2016, got {rows_per_year}")

    load_names = sorted(set(loads.profile))
    pv_names = sorted(set(sgens.profile))
    columns: dict[str, list[int]] = {}
    full_load_hours: dict[str, float] = {}
    for name in load_names:
        values = [max(0.0, float(v)) for v in load_table[f"{name}_pload"]]
        full_load_hours[name] = sum(values) * STEP_S / 3600
        share = [v / sum(values) for v in values]
        columns[name] = _cumulative_rounded(share, LOAD_REFERENCE_WH)
    for name in pv_names:
        values = [max(0.0, float(v)) for v in pv_table[name]]
        columns[name] = _cumulative_rounded(values, PV_REFERENCE_W * STEP_S / 3600)

    out.mkdir(parents=True, exist_ok=True)
    profiles_path = out / f"profiles-{feeder}.csv"
    start_s = _year_start_s()
    with profiles_path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["start_s", "start_utc", *load_names, *pv_names])
        for monday in SAMPLE_MONDAYS:
            for row in _window_rows(monday):
                t_s = start_s + row * STEP_S
                stamp = dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
                writer.writerow([t_s, stamp, *(columns[n][row] for n in [*load_names, *pv_names])])

    feeder_path = out / f"feeder-{feeder}.csv"
    pv_by_bus: dict[int, tuple[int, str]] = {}
    for _, sgen in sgens.iterrows():
        pv_by_bus.setdefault(int(sgen.bus), (round(float(sgen.p_mw) * 1e6), str(sgen.profile)))
    with feeder_path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["household", "load_profile", "annual_kwh", "pv_peak_w", "pv_profile"])
        for _, load in loads.sort_index().iterrows():
            annual_kwh = round(float(load.p_mw) * 1000 * full_load_hours[str(load.profile)])
            pv_peak_w, pv_profile = pv_by_bus.pop(int(load.bus), (0, ""))
            writer.writerow([load["name"], load.profile, annual_kwh, pv_peak_w, pv_profile])
    return profiles_path, feeder_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeder", default=DEFAULT_FEEDER, help=f"SimBench code (default {DEFAULT_FEEDER})")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()
    for path in extract(args.feeder, args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
