# ruff: noqa: E402  (the path fix below must run before the imports)
"""Benchmark: the dashboard and playback. Prints one JSON object:

- playback of a testbed day (20 households, 96 slots; or ``--run DIR``): the time to
  build every frame from the run folder (best and median of ``--repeat``), the memory
  the frames hold, and the time to render one frame as text;
- the model: the time to apply one message in a community of 100 devices (telemetry;
  orders for one slot);
- the terminal view (headless): the time per step through the run's frames, each a
  refresh of every panel (the view's own work; textual then repaints what changed).

    .venv/bin/python bench/dashboard.py [--run runs/20h-96s-seed1] [--repeat 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the path and bench/ledger.py would
# hide the ``ledger`` package playback reads: take the folder off again.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
import tracemalloc

from broker.dashboard.app import PlaybackDashboard
from broker.dashboard.panels import render_text
from broker.dashboard.state import DashboardState, apply
from broker.messages import Message, Order, Status, Step, Telemetry
from simulators.playback import load_playback


def playback_figures(run: Path, repeat: int) -> dict[str, float | int]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        playback = load_playback(run)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    playback = load_playback(run)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    start = time.perf_counter()
    for frame in playback.frames:
        render_text(frame, "bench")
    render_s = (time.perf_counter() - start) / len(playback.frames)
    return {"frames": len(playback.frames), "households": len(playback.community.members),
            "load_s_best": round(min(times), 3), "load_s_median": round(statistics.median(times), 3),
            "frames_mb": round(held / 1e6, 1), "render_text_ms": round(render_s * 1000, 2),
            "view_step_ms": round(view_step_s(playback.frames) * 1000, 2)}


def view_step_s(frames: tuple[DashboardState, ...]) -> float:
    """The view's own work per step (panels, table cells), without textual's repaint."""
    async def steps() -> float:
        app = PlaybackDashboard(frames, "bench")
        async with app.run_test(size=(160, 50)):
            start = time.perf_counter()
            for _ in frames[1:]:
                app.action_step(1)
            return (time.perf_counter() - start) / max(len(frames) - 1, 1)
    return asyncio.run(steps())


def apply_us(devices: int = 100, rounds: int = 50) -> dict[str, float]:
    names = [f"h{i:03d}" for i in range(devices)]
    state = DashboardState()
    for name in names:
        state = apply(state, Status(name, "online", 0))
    kinds: dict[str, list[Message]] = {
        "telemetry": [Telemetry(n, 1000 + k, 100, 0, 0, 50) for k in range(rounds) for n in names],
        "order": [Order(n, 5, k, "buy", (Step(100, 1000),), 1000) for k in range(rounds) for n in names],
    }
    out = {}
    for kind, messages in kinds.items():
        start = time.perf_counter()
        for msg in messages:
            state = apply(state, msg)
        out[f"{kind}_us"] = round((time.perf_counter() - start) / len(messages) * 1e6, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished run folder (default: run a testbed day)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            subprocess.run([sys.executable, "-m", "gridmesh", "testbed", "--out", str(run), "--json"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        figures = {"playback": playback_figures(run, args.repeat), "apply_100_devices": apply_us()}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
