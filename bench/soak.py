"""Benchmark: a soak run of several simulated weeks, every process's memory sampled.

Runs ``gridmesh testbed`` for ``--weeks`` weeks as one run (one set of processes from
start to end) and samples the resident set size (RSS) of every process in its tree with
psutil every ``--sample-s`` seconds of wall time, against the simulated time the market
has reached (the coordinator's ``cleared_through``, read from its database). Prints one
JSON object: per process (the broker, the coordinator, each agent process, and the
testbed itself, which holds the device farm and the clock) its RSS at the start, the
middle and the end of the run, and the slope of a least-squares line through the
samples of the run's second half, in MB per simulated day. Memory is flat when that
slope stays under ``--threshold`` MB per day.

The bundled profile extract holds four separate sample weeks; a run needs time that
goes on, so the soak lays the extract's June week (2016-06-06 to 06-12, Monday to
Sunday) end to end, dated on from 2016-06-06, into a feeder-data folder of its own
(the day before the first, for the tick one slot ahead, is that week's Sunday) and runs
from there (``--feeder-data``).

    .venv/bin/python bench/soak.py                      # 4 weeks, 20 households
    .venv/bin/python bench/soak.py --weeks 1 --households 5 --sample-s 1
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

from simulators.profiles import BUNDLED_FEEDER, DATA_DIR

WEEK_S = 7 * 86_400
STEP_S = 900
SLOTS_PER_DAY = 96
SOURCE_WEEK = dt.datetime(2016, 6, 6, tzinfo=dt.UTC)  # a Monday, inside the extract's June sample
THRESHOLD_MB_PER_DAY = 0.5


def wrapped_feeder(folder: Path, feeder: str, weeks: int) -> None:
    """Write ``feeder``'s extract into ``folder`` with its June week repeated ``weeks`` times
    (and a day either side), dated on from 2016-06-06."""
    shutil.copy(DATA_DIR / f"feeder-{feeder}.csv", folder / f"feeder-{feeder}.csv")
    week0 = int(SOURCE_WEEK.timestamp())
    with (DATA_DIR / f"profiles-{feeder}.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    header, by_time = rows[0], {int(row[0]): row[2:] for row in rows[1:]}
    with (folder / f"profiles-{feeder}.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for t_s in range(week0 - 86_400, week0 + weeks * WEEK_S + 86_400, STEP_S):
            source = week0 + (t_s - week0) % WEEK_S
            stamp = dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
            out.writerow([t_s, stamp, *by_time[source]])


def role(proc: psutil.Process, root: int) -> str:
    """What a process of the run is: testbed, broker, coordinator or agents(first..last)."""
    if proc.pid == root:
        return "testbed"
    cmd = proc.cmdline()
    if any("mosquitto" in part for part in cmd[:1]) or "broker.embedded" in cmd:
        return "broker"
    if "coordinator" in cmd:
        return "coordinator"
    if "agent" in cmd:
        configs = [Path(part).stem for part in cmd if part.endswith(".yaml")]
        return f"agents({configs[0]}..{configs[-1]})" if configs else "agents"
    return " ".join(cmd[:3])


def cleared_through(db: Path) -> int | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT value FROM progress WHERE key = 'cleared_through'").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


class Sampler(threading.Thread):
    """Every ``every_s`` while the market clears the run's slots: the simulated day it has
    reached and each process's RSS (MB)."""

    def __init__(self, proc: subprocess.Popen[str], out: Path, first_slot: int, slots: int,
                 every_s: float) -> None:
        super().__init__(daemon=True)
        self.proc, self.out, self.every_s = proc, out, every_s
        self.first_slot, self.slots = first_slot, slots  # sampled while the market runs the run's slots
        self.samples: dict[str, list[tuple[float, float]]] = defaultdict(list)  # role -> (day, MB)
        self.pids: dict[str, int] = {}

    def run(self) -> None:
        root = psutil.Process(self.proc.pid)
        while self.proc.poll() is None:
            slot = cleared_through(self.out / "coordinator.db")
            if slot is not None and self.first_slot <= slot < self.first_slot + self.slots:
                day = (slot + 1 - self.first_slot) / SLOTS_PER_DAY
                try:
                    procs = [root, *root.children(recursive=True)]
                except psutil.NoSuchProcess:
                    break
                for proc in procs:
                    try:
                        name, rss = role(proc, root.pid), proc.memory_info().rss / 2**20
                    except psutil.NoSuchProcess:
                        continue
                    self.samples[name].append((day, rss))
                    self.pids[name] = proc.pid
            time.sleep(self.every_s)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def figures(points: list[tuple[float, float]], days: float, threshold: float) -> dict[str, object]:
    middle = min(points, key=lambda p: abs(p[0] - days / 2))
    second_half = [p for p in points if p[0] >= days / 2]
    per_day = slope(second_half) if len(second_half) >= 3 else float("nan")
    return {"rss_start_mb": round(points[0][1], 1), "rss_mid_mb": round(middle[1], 1),
            "rss_end_mb": round(points[-1][1], 1), "rss_max_mb": round(max(y for _, y in points), 1),
            "slope_mb_per_day": round(per_day, 3), "samples_second_half": len(second_half),
            "flat": abs(per_day) < threshold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--households", type=int, default=20)
    parser.add_argument("--broker", default="auto", choices=("auto", "mosquitto", "embedded"))
    parser.add_argument("--sample-s", type=float, default=2.0, help="wall seconds between samples")
    parser.add_argument("--threshold", type=float, default=THRESHOLD_MB_PER_DAY,
                        help="MB per simulated day under which memory counts as flat")
    args = parser.parse_args()
    slots = args.weeks * 7 * SLOTS_PER_DAY
    first_slot = int(SOURCE_WEEK.timestamp()) // STEP_S
    with tempfile.TemporaryDirectory(prefix="gridmesh-soak-") as tmp:
        data, out = Path(tmp) / "feeder", Path(tmp) / "run"
        data.mkdir()
        wrapped_feeder(data, BUNDLED_FEEDER, args.weeks)
        cmd = [sys.executable, "-m", "gridmesh", "testbed", "--households", str(args.households),
               "--slots", str(slots), "--start", SOURCE_WEEK.strftime("%Y-%m-%d"), "--feeder-data", str(data),
               "--broker", args.broker, "--out", str(out), "--json"]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = Sampler(proc, out, first_slot, slots, args.sample_s)
        sampler.start()
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - started
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"testbed failed ({proc.returncode}):\n{stderr[-3000:]}")
    summary = json.loads(stdout.strip().splitlines()[-1])
    days = slots / SLOTS_PER_DAY
    processes = {name: {"pid": sampler.pids[name], **figures(points, days, args.threshold)}
                 for name, points in sorted(sampler.samples.items()) if points}
    print(json.dumps({
        "benchmark": "soak", "weeks": args.weeks, "simulated_days": days, "households": args.households,
        "slots": slots, "data": "the extract's week 2016-06-06..12 laid end to end (bench/soak.py)",
        "broker": summary["broker"], "wall_s": round(wall, 1),
        "threshold_mb_per_day": args.threshold, "flat": all(p["flat"] for n, p in processes.items()
                                                            if n != "testbed"),
        "processes": processes, "orders_accepted": summary["orders_accepted"],
        "reports_accepted": summary["reports_accepted"], "ledger_height": summary["ledger_height"],
    }))


if __name__ == "__main__":
    main()
