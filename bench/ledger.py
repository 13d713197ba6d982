# ruff: noqa: E402  (the path fix below must run before the imports)
"""Benchmark: the ledger. Prints one JSON object:

- the raw Ed25519 verification rate of this machine (``cryptography``, one process,
  the same payload size as a ledger transaction), measured in the same run;
- the audit of a testbed day's ledger (``--households``, default 100): transactions per
  second for the structural audit in one process and with every CPU, and for the replay
  of every clearing and bill on top, against the raw rate (target: at least half);
- mining: milliseconds per block at the testbed's difficulty (12 bits) and at 16.

    .venv/bin/python bench/ledger.py [--households 100] [--ledger PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the path and its name would hide
# the ``ledger`` package: take the folder off again.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import statistics
import subprocess
import tempfile
import time

from broker.identity import Identity, Verifier
from broker.messages import BlockHeader
from ledger.parallel_audit import audit_file
from ledger.pow import mine
from ledger.replay import ReplayReport, replay_chain
from ledger.store import LedgerStore
from ledger.verify import AuditSummary, verify_chain


def raw_verify_rate(seconds: float = 2.0) -> float:
    identity = Identity.derived("bench", 1)
    payload = b"x" * 400  # a ledger transaction's signed body is a few hundred bytes
    sig = identity.sign_bytes(payload)
    verifier = Verifier()
    key = identity.public_key_hex
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(200):
            assert verifier.verify_bytes(payload, sig, key)
        count += 200
    return count / (time.perf_counter() - started)


def audit_rates(path: Path) -> dict[str, object]:
    with LedgerStore.open_readonly(path) as store:
        started = time.perf_counter()
        summary = verify_chain(store.blocks())
        one = time.perf_counter() - started
    assert isinstance(summary, AuditSummary), summary
    started = time.perf_counter()
    parallel = audit_file(path)
    every_cpu = time.perf_counter() - started
    assert isinstance(parallel, AuditSummary), parallel
    with LedgerStore.open_readonly(path) as store:
        started = time.perf_counter()
        report = replay_chain(store.blocks())
        replay = time.perf_counter() - started
    assert isinstance(report, ReplayReport), report
    txs = summary.transactions
    return {"transactions": txs, "blocks": summary.blocks,
            "audit_one_process_tx_per_s": round(txs / one),
            "audit_every_cpu_tx_per_s": round(txs / every_cpu),
            "replay_tx_per_s": round(txs / replay),
            "audit_and_replay_one_process_tx_per_s": round(txs / (one + replay))}


def mining_ms(bits: int, blocks: int = 15) -> float:
    times = []
    for i in range(blocks):
        header = BlockHeader(i + 1, f"{i:064x}", "ab" * 32, 1000 + i, 900 * i, bits, 0, 10)
        started = time.perf_counter()
        mine(header)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def testbed_ledger(households: int, folder: Path) -> Path:
    out = folder / "run"
    subprocess.run([sys.executable, "-m", "gridmesh", "testbed", "--households", str(households),
                    "--out", str(out), "--json"], check=True, stdout=subprocess.DEVNULL)
    return out / "ledger.db"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--ledger", type=Path, help="audit this ledger instead of running a testbed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.ledger or testbed_ledger(args.households, Path(tmp))
        raw = raw_verify_rate()
        rates = audit_rates(path)
    one = rates["audit_one_process_tx_per_s"]
    assert isinstance(one, int)
    print(json.dumps({
        "benchmark": "ledger", "raw_ed25519_verify_per_s": round(raw), **rates,
        "audit_one_process_vs_raw": round(one / raw, 3),
        "target": "audit >= 0.5 x raw verification rate",
        "mining_ms_per_block": {"12_bits": mining_ms(12), "16_bits": mining_ms(16)},
    }))
