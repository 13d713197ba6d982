"""Benchmark: the edge forecasters. Prints one JSON object:

- skill on the held-out week (MAE per horizon band against seasonal-naive and
  persistence), for load and PV, of the bundled models;
- inference: milliseconds per forecast call (features, both models, one slot), and the
  peak RSS of a process that has loaded onnxruntime and both models and forecast once;
- what forecasts are worth: a 20-household, two-day testbed (the first day has no full
  window, so it runs on seasonal-naive either way) with seasonal-naive and with the ONNX
  models: the community's bill, its savings and the efficiency ratio against the optimum;
- price forecasts: over the bundled 2016 dynamic tariff, the mean absolute error of the
  agents' forecast of the import price for the hours not yet published, against
  persistence (the same hour of the last published day);
- what the receding-horizon plan is worth: two January days (20 households) under the
  bundled dynamic tariff and under a time-of-use tariff, planning one slot ahead and
  over the horizon, with the ONNX and with perfect forecasts.

    .venv/bin/python bench/forecast.py [--no-testbed]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from broker.community import Tariff, read_price_csv
from edge.forecast import History, SlotEnergy
from edge.horizon_plan import BatteryLimits, PricePath, plan_battery
from edge.onnx_forecaster import OnnxForecaster
from edge.price_forecast import PriceForecaster
from simulators.testbed_config import BUNDLED_PRICES

TOU_CONFIG = """
community:
  tariff:
    import_u_per_kwh: 300000
    feedin_u_per_kwh: 80000
    time_of_use:
      - {start: "00:00", end: "06:00", import_u_per_kwh: 200000}
      - {start: "17:00", end: "21:00", import_u_per_kwh: 420000}
"""

RSS_PROBE = """
import resource
from edge.forecast import History, SlotEnergy
from edge.horizon_plan import BatteryLimits, PricePath, plan_battery
from edge.onnx_forecaster import OnnxForecaster
f = OnnxForecaster(pv_peak_w=5000)
h = History()
for s in range(1000, 1096):
    h.add(SlotEnergy(s, 100, 50))
f.forecast(h, 1096, 1, None)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def latency_ms(calls: int = 2000) -> float:
    forecaster = OnnxForecaster(pv_peak_w=5000)
    history = History()
    for slot in range(1000, 1096):
        history.add(SlotEnergy(slot, 100 + slot % 9, max(0, 400 - abs(slot % 96 - 48) * 8)))
    forecaster.forecast(history, 1096, 1, None)
    started = time.perf_counter()
    for _ in range(calls):
        forecaster.forecast(history, 1096, 1, None)
    return round((time.perf_counter() - started) / calls * 1000, 3)


def plan_ms(calls: int = 200, first_moves: int | None = 1) -> float:
    """Milliseconds per receding-horizon battery plan: 95 slots, a 10 kWh battery; by
    default as the agent plans (the first move worked out), ``None`` the whole schedule."""
    path = PricePath(tuple(200_000 + 5000 * (i % 24) for i in range(95)), (50_000,) * 95, 95)
    limits = BatteryLimits(1000, 9000, 5000, 5000)
    net = [300 - 600 * (30 < i % 96 < 60) for i in range(95)]
    started = time.perf_counter()
    for _ in range(calls):
        plan_battery(net, path, limits, 5000, 900, first_moves=first_moves)
    return round((time.perf_counter() - started) / calls * 1000, 2)


def price_skill() -> dict[str, object]:
    """Import-price forecast error on the hours a day-ahead tariff has not published yet,
    asked every hour of 2016 from its ninth day on, over the next 24 hours."""
    tariff = Tariff(dynamic=read_price_csv(BUNDLED_PRICES))
    forecaster = PriceForecaster(tariff, 3600)
    first, last = tariff.dynamic[0].start_s + 8 * 86_400, tariff.dynamic[-1].start_s - 86_400
    errors: dict[str, list[int]] = {"day_and_week": [], "persistence": []}
    for now in range(first, last, 3600):
        known = forecaster.published_until_s(now)
        for t_s in range(known, now + 86_400, 3600):
            actual = tariff.at(t_s).import_u_per_kwh
            back = -(-(t_s - known + 1) // 86_400)
            errors["persistence"].append(abs(tariff.at(t_s - back * 86_400).import_u_per_kwh - actual))
            errors["day_and_week"].append(abs(forecaster.forecast(t_s, known)[0] - actual))
    mae = {name: round(sum(e) / len(e)) for name, e in errors.items()}
    return {"mae_u_per_kwh": mae, "forecast_hours": len(errors["persistence"]),
            "skill_vs_persistence": round(1 - mae["day_and_week"] / mae["persistence"], 3),
            "mean_import_u_per_kwh": round(sum(p.import_u_per_kwh for p in tariff.dynamic)
                                           / len(tariff.dynamic))}


def testbed(forecaster: str, *extra: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        subprocess.run([sys.executable, "-m", "gridmesh", "testbed", "--households", "20",
                        "--slots", "192", *extra,
                        "--forecaster", forecaster, "--out", str(out), "--json", "--compare"],
                       check=True, stdout=subprocess.DEVNULL)
        summary = json.loads((out / "summary.json").read_text())
        compared = json.loads((out / "compare.json").read_text())
    return {"bill_u": summary["bill_u"],
            "savings_vs_same_energy_without_trading_pct": summary["savings_pct"],
            "savings_vs_baseline_pct": summary["baseline_savings_pct"],
            "efficiency_ratio": compared["efficiency"]}


def planner_study() -> dict[str, object]:
    """Bills of two January days (2016-01-18, 20 households) per tariff, forecaster and planner."""
    study: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder:
        tou = Path(folder) / "tou.yaml"
        tou.write_text(TOU_CONFIG)
        tariffs = (("dynamic", ("--prices-csv", "bundled")), ("time_of_use", ("--config", str(tou))))
        for tariff, extra in tariffs:
            for forecaster in ("onnx", "perfect"):
                bills = {planner: testbed(forecaster, "--start", "2016-01-18", "--planner", planner, *extra)
                         for planner in ("slot", "horizon")}
                slot_bill, horizon_bill = (int(str(bills[p]["bill_u"])) for p in ("slot", "horizon"))
                study[f"{tariff}_{forecaster}"] = {
                    "bill_u": {p: b["bill_u"] for p, b in bills.items()},
                    "efficiency_ratio": {p: b["efficiency_ratio"] for p, b in bills.items()},
                    "horizon_saves_pct": round(100 * (slot_bill - horizon_bill) / slot_bill, 2)}
    return study


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-testbed", action="store_true")
    args = parser.parse_args()
    skill = json.loads(subprocess.run([sys.executable, "-m", "gridmesh", "forecast", "evaluate"],
                                      check=True, capture_output=True, text=True).stdout)
    rss = float(subprocess.run([sys.executable, "-c", RSS_PROBE], check=True, capture_output=True,
                               text=True).stdout.strip())
    result: dict[str, object] = {"benchmark": "forecast", "held_out_skill": skill,
                                 "inference_ms_per_call": latency_ms(),
                                 "rss_with_models_mb": round(rss, 1),
                                 "targets": "load skill > 0, PV skill clearly > 0, < 1 ms per call, "
                                            "RSS < 120 MB"}
    result["price_forecast"] = price_skill()
    result["horizon_plan_ms"] = plan_ms()
    result["horizon_schedule_ms"] = plan_ms(first_moves=None)
    if not args.no_testbed:
        result["two_day_testbed"] = {f: testbed(f) for f in ("seasonal-naive", "onnx", "perfect")}
        result["receding_horizon"] = planner_study()
    print(json.dumps(result))
