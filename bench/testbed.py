"""Benchmark: the whole system, over real MQTT and Modbus TCP, for 10 and 100 households.

Runs `gridmesh testbed --slots 96` as a child process per size and prints one JSON
object: household-slots per second of wall time, wall time, and memory (the largest
single process's peak RSS, and the peak of the whole process tree sampled every 0.1 s).

    .venv/bin/python bench/testbed.py                 # N = 10 and 100, 3 runs each
    .venv/bin/python bench/testbed.py --households 20 --slots 96 --broker embedded
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def tree_rss_mb(root: psutil.Process) -> float:
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def cpu_probe_s() -> float:
    """Seconds for a fixed pure-Python loop: how fast this machine is right now.

    Shared machines change speed from minute to minute; this reading, taken before each
    run, says how much of a difference between runs is the machine's.
    """
    started = time.perf_counter()
    total = 0
    for k in range(3_000_000):
        total += k
    return round(time.perf_counter() - started, 3)


def run(households: int, slots: int, broker: str, seed: int) -> dict[str, object]:
    probe = cpu_probe_s()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "gridmesh", "testbed", "--households", str(households),
               "--slots", str(slots), "--seed", str(seed), "--broker", broker,
               "--out", str(out), "--json"]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = [0.0]
        watched = psutil.Process(proc.pid)

        def sample() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss_mb(watched))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - started
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"testbed failed ({proc.returncode}):\n{stderr[-2000:]}")
        summary = json.loads(stdout.strip().splitlines()[-1])
    largest_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "households": households, "slots": slots, "broker": summary["broker"],
        "household_slots_per_s": round(households * slots / wall, 1),
        "wall_s": round(wall, 2), "testbed_reported_wall_s": summary["wall_s"],
        "peak_rss_tree_mb": round(peak[0], 1), "peak_rss_largest_process_mb": round(largest_mb, 1),
        "orders_accepted": summary["orders_accepted"], "p2p_wh": summary["p2p_wh"],
        "head_hash": summary["head_hash"], "cpu_probe_s": probe,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--slots", type=int, default=96)
    parser.add_argument("--broker", default="auto", choices=("auto", "mosquitto", "embedded"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per size; the figures are the median (and the fastest) run")
    args = parser.parse_args()
    results = []
    for n in args.households:
        runs = []
        for i in range(args.repeat):
            runs.append(run(n, args.slots, args.broker, args.seed))
            print(f"{n} households, run {i + 1}/{args.repeat}: {runs[-1]['wall_s']} s "
                  f"(cpu probe {runs[-1]['cpu_probe_s']} s)",
                  file=sys.stderr, flush=True)
        results.append(summarize(runs))
    print(json.dumps({"benchmark": "testbed", "target": "100 households x 96 slots < 30 s",
                      "sizes": results}))


def summarize(runs: list[dict[str, object]]) -> dict[str, object]:
    """The median run's figures, with every run's wall time and the spread."""
    ordered = sorted(runs, key=lambda r: float(r["wall_s"]))  # type: ignore[arg-type]
    median = dict(ordered[len(ordered) // 2])
    median["wall_s_runs"] = [r["wall_s"] for r in runs]
    median["cpu_probe_s_runs"] = [r["cpu_probe_s"] for r in runs]
    median["wall_s_min"] = ordered[0]["wall_s"]
    median["wall_s_max"] = ordered[-1]["wall_s"]
    median["same_head_every_run"] = len({r["head_hash"] for r in runs}) == 1
    return median


if __name__ == "__main__":
    main()
