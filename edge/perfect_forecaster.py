"""A forecaster that knows the future, for studies only: it reads each slot's true load
and PV from a file the testbed writes (``slot,load_wh,pv_wh``). With it a run shows what
perfect forecasts would be worth; a device has no such file."""

from __future__ import annotations

import csv
from pathlib import Path

from edge.forecast import Forecast, History, SeasonalNaive, SlotEnergy


class PerfectForecaster:
    def __init__(self, truth_file: Path) -> None:
        with truth_file.open(newline="") as fh:
            self.truth = {int(row["slot"]): (int(row["load_wh"]), int(row["pv_wh"]))
                          for row in csv.DictReader(fh)}
        self.fallback = SeasonalNaive()

    def observe_rating(self, pv_peak_w: int) -> None:
        pass

    def forecast(
        self, history: History, first_slot: int, horizon: int, now: SlotEnergy | None
    ) -> tuple[Forecast, ...]:
        naive = self.fallback.forecast(history, first_slot, horizon, now)
        return tuple(Forecast(f.slot, *self.truth[f.slot], "perfect") if f.slot in self.truth else f
                     for f in naive)
