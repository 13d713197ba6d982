"""Benchmark: the market. Prints one JSON object:

- clearing time for random books of 1,000, 10,000 and 100,000 orders (one to three
  steps each, limits between the feed-in and the import price), for each mechanism,
  the best of ``--repeat`` runs;
- a 40-household testbed week (the default feeder, June): the community's savings
  against no trading and no battery control, and the efficiency ratio (a - c) / (a - d)
  against the perfect-foresight optimum (``gridmesh testbed --compare``).

    .venv/bin/python bench/market.py [--orders 1000 10000 100000] [--no-week]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from broker.community import Tariff
from broker.messages import Order, Step
from coordinator.clearing import MECHANISMS, clear_slot

TARIFF = Tariff(import_u_per_kwh=300_000, feedin_u_per_kwh=80_000)


def book(n: int, seed: int = 1) -> list[Order]:
    rng = random.Random(seed)
    return [Order(f"d{i:06d}", 100, 0, "buy" if i % 2 else "sell",
                  tuple(Step(rng.randint(1, 2000), rng.randint(80_000, 300_000))
                        for _ in range(rng.randint(1, 3))), 0)
            for i in range(n)]


def clearing_times(sizes: list[int], repeat: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for n in sizes:
        orders = book(n)
        for mechanism in MECHANISMS:
            best = float("inf")
            for _ in range(repeat):
                started = time.perf_counter()
                out = clear_slot(100, orders, TARIFF, 10**9, 10**9, mechanism)
                best = min(best, time.perf_counter() - started)
            rows.append({"orders": n, "mechanism": mechanism, "seconds": round(best, 4),
                         "trades": len(out.trades), "price_u_per_kwh": out.price_u_per_kwh})
    return rows


def testbed_week(households: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gridmesh", "testbed", "--households", str(households),
                        "--slots", "672", "--start", "2016-06-06", "--out", str(out), "--json",
                        "--compare"], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        summary = json.loads((out / "summary.json").read_text())
        compared = json.loads((out / "compare.json").read_text())
    bills = {k: v["bill_u"] for k, v in compared["scenarios"].items()}
    return {
        "households": households, "slots": 672, "wall_s": round(wall, 1),
        "bills_u": bills,
        "stored_change_wh": {k: v["stored_change_wh"] for k, v in compared["scenarios"].items()},
        "savings_vs_baseline_pct": summary["baseline_savings_pct"],
        "savings_vs_same_energy_without_trading_pct": summary["savings_pct"],
        "efficiency_ratio": compared["efficiency"], "p2p_wh": summary["p2p_wh"],
        "gini_savings": summary["gini_savings"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--households", type=int, default=40)
    parser.add_argument("--no-week", action="store_true", help="skip the testbed week")
    args = parser.parse_args()
    result: dict[str, object] = {"benchmark": "market", "clearing": clearing_times(args.orders, args.repeat)}
    if not args.no_week:
        result["testbed_week"] = testbed_week(args.households)
    print(json.dumps(result))
