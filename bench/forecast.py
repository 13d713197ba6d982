"""Benchmark: the edge forecasters. Prints one JSON object:

- skill on the held-out week (MAE per horizon band against seasonal-naive and
  persistence), for load and PV, of the bundled models;
- inference: milliseconds per forecast call (features, both models, one slot), and the
  peak RSS of a process that has loaded onnxruntime and both models and forecast once;
- what forecasts are worth: a 20-household, two-day testbed (the first day has no full
  window, so it runs on seasonal-naive either way) with seasonal-naive and with the ONNX
  models: the community's bill, its savings and the efficiency ratio against the optimum.

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

from edge.forecast import History, SlotEnergy
from edge.onnx_forecaster import OnnxForecaster

RSS_PROBE = """
import resource
from edge.forecast import History, SlotEnergy
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


def testbed(forecaster: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        subprocess.run([sys.executable, "-m", "gridmesh", "testbed", "--households", "20",
                        "--slots", "192",
                        "--forecaster", forecaster, "--out", str(out), "--json", "--compare"],
                       check=True, stdout=subprocess.DEVNULL)
        summary = json.loads((out / "summary.json").read_text())
        compared = json.loads((out / "compare.json").read_text())
    return {"bill_u": summary["bill_u"],
            "savings_vs_same_energy_without_trading_pct": summary["savings_pct"],
            "savings_vs_baseline_pct": summary["baseline_savings_pct"],
            "efficiency_ratio": compared["efficiency"]}


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
    if not args.no_testbed:
        result["two_day_testbed"] = {f: testbed(f) for f in ("seasonal-naive", "onnx", "perfect")}
    print(json.dumps(result))
