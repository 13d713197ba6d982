# ruff: noqa: E402  (the path fix below must run before the imports)
"""Benchmark: federated forecasting rounds. Prints one JSON object:

- the payload sizes on the bus: a member's ForecastShare per kind (from a week of
  history, 481 windows; in June, the least compressible PV month, and in January) and
  the coordinator's ModelRelease per kind;
- the member's work: computing and signing its two shares;
- the coordinator's work for a round of 20 members: checking their 40 shares
  (signature, decoding, statistics checks), and pooling, fitting and exporting both
  models (what happens at the slot boundary);
- the agent's work on a release: checking and loading it (signature, SHA-256, the
  model checks, one trial forecast).

    .venv/bin/python bench/federated.py
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the path and bench/ledger.py would
# hide the ``ledger`` package the coordinator imports: take the folder off again.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable

from broker.community import Community, Forecasting, Member
from broker.identity import Identity
from broker.messages import encode
from broker.model_messages import ForecastShare, ModelRelease
from coordinator.cli import bundled_models
from coordinator.model_rounds import ModelRounds
from edge.forecast import History, SlotEnergy
from edge.model_updates import ModelUpdates
from edge.onnx_forecaster import OnnxForecaster
from simulators.profiles import ProfileSet

MEMBERS = 20
JANUARY, JUNE = 1_453_593_600, 1_465_689_600  # 2016-01-24 and 2016-06-12 00:00 UTC: a round's start
BOSS = Identity.derived("coordinator", 1)
IDS = {f"h{i:03d}": Identity.derived(f"h{i:03d}", 1) for i in range(1, MEMBERS + 1)}
COMMUNITY = Community(coordinator_key=BOSS.public_key_hex,
                      members=tuple(Member(name, who.public_key_hex) for name, who in IDS.items()),
                      forecasting=Forecasting(round_slots=96, min_members=3))


def history(profiles: ProfileSet, index: int, round_s: int) -> History:
    """A week of one member's slots before ``round_s``: one of the bundled load and PV
    profiles each, at a size of its own."""
    load = profiles.names("load")[index % len(profiles.names("load"))]
    pv = profiles.names("pv")[index % len(profiles.names("pv"))]
    found = History()
    for slot in range(round_s // 900 - 672, round_s // 900):
        start, end = slot * 900, (slot + 1) * 900
        found.add(SlotEnergy(slot, profiles.energy_wh(load, start, end, 2500 + 150 * index),
                             profiles.energy_wh(pv, start, end, 4000 + 200 * index)))
    return found


def member(name: str) -> ModelUpdates:
    return ModelUpdates(name, COMMUNITY, IDS[name], OnnxForecaster(pv_peak_w=4000), Counter())


def median_ms(run: Callable[[], object], times: int) -> float:
    taken = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        taken.append(time.perf_counter() - started)
    return round(statistics.median(taken) * 1000, 2)


def main() -> dict[str, object]:
    profiles = ProfileSet.load_bundled()
    share_bytes = {}
    for label, round_s in (("june", JUNE), ("january", JANUARY)):
        shares = member("h001").shares(round_s // 900, history(profiles, 0, round_s), round_s)
        share_bytes[label] = {s.kind: len(encode(s)) for s in shares}
    slot = JUNE // 900
    histories = {name: history(profiles, i, JUNE) for i, name in enumerate(IDS)}
    updates = {name: member(name) for name in IDS}
    started = time.perf_counter()
    shares = [s for name in IDS for s in updates[name].shares(slot, histories[name], JUNE)]
    member_ms = (time.perf_counter() - started) * 1000 / MEMBERS
    check_ms, pool_ms = [], []
    for _ in range(5):  # a fresh coordinator each time: the medians
        rounds = ModelRounds(COMMUNITY, BOSS, bundled_models())
        started = time.perf_counter()
        verdicts = [rounds.submit(s, s.device, JUNE) for s in shares]
        check_ms.append((time.perf_counter() - started) * 1000 / len(shares))
        assert all(v.accepted for v in verdicts), [v.reason for v in verdicts if not v.accepted]
        started = time.perf_counter()
        [(_, releases)] = rounds.pool_due(JUNE + 900)
        pool_ms.append((time.perf_counter() - started) * 1000)
    agent = member("h001")

    def take(release: ModelRelease) -> None:
        agent.staged.clear()
        agent.on_release(release, histories["h001"])
        assert agent.staged, "refused"

    return {
        "benchmark": "federated",
        "members": MEMBERS,
        "share_bytes_per_member": share_bytes,
        "share_bytes_limit": ForecastShare.MAX_BYTES,
        "release_bytes": {r.kind: len(encode(r)) for r in releases},
        "member_ms_to_compute_and_sign_both_shares": round(member_ms, 1),
        "coordinator_ms_to_check_one_share": round(statistics.median(check_ms), 2),
        "coordinator_ms_to_pool_fit_export_and_sign_both_models": round(statistics.median(pool_ms), 1),
        "agent_ms_to_check_and_load_release": {r.kind: median_ms(lambda r=r: take(r), 20) for r in releases},
    }


if __name__ == "__main__":
    print(json.dumps(main()))
