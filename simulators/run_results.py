"""What a finished testbed run leaves for its readers: the ledger's audit and replay,
results.db and its CSVs, and summary.json. Shared by ``gridmesh testbed`` and the drills,
so a drill's folder can be reported on and played back like any run's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simulators.compare import baseline_bills
from simulators.results import (
    Summary,
    build_tables,
    read_agent_stats,
    summarize,
    write_results,
    write_summary,
)
from simulators.run_folder import RUN_MARKER, finished_marker
from simulators.testbed import AGENT_STATS, RunArtifacts
from simulators.testbed_config import TestbedSection


@dataclass(frozen=True)
class AuditOutcome:
    failed: bool
    problem: str  # why, when it failed
    height: int  # -1 when the chain did not verify
    head_hash: str

    @property
    def text(self) -> str:
        return f"FAILED: {self.problem}" if self.failed else "passed, market and bills replayed"


def audit_run(out: Path, replicas: dict[str, str]) -> AuditOutcome:
    """Verify RUN/ledger.db, replay every slot's market and bills from it, and check that
    every replica holds its head."""
    from ledger.parallel_audit import audit_file
    from ledger.replay import ReplayDifference, replay_chain
    from ledger.store import LedgerStore
    from ledger.verify import AuditFailure

    audit = audit_file(out / "ledger.db")
    if isinstance(audit, AuditFailure):
        return AuditOutcome(True, str(audit), -1, "")
    with LedgerStore.open_readonly(out / "ledger.db") as store:
        replayed = replay_chain(store.blocks())
    problem = ""
    if isinstance(replayed, ReplayDifference):
        problem = f"replay: {replayed}"
    elif any(head != audit.head_hash for head in replicas.values()):
        problem = f"replicas disagree with the coordinator's head: {replicas}"
    return AuditOutcome(bool(problem), problem, audit.head_height, audit.head_hash)


def record_run(out: Path, artifacts: RunArtifacts, slots: int, audit: AuditOutcome) -> Summary:
    """Write results.db, one CSV per table and summary.json for a finished run."""
    baseline = baseline_bills(artifacts.households, artifacts.profiles, artifacts.community,
                              artifacts.first_slot, slots)
    tables = build_tables(artifacts.records, artifacts.households, artifacts.community,
                          out / "coordinator.db", artifacts.first_slot, slots,
                          read_agent_stats(out / AGENT_STATS), baseline)
    write_results(out, tables)
    summary = summarize(tables, len(artifacts.households), slots, ledger_height=audit.height,
                        head_hash=audit.head_hash, broker=artifacts.broker_kind, wall_s=artifacts.wall_s,
                        slot_s=artifacts.community.market.slot_s)
    write_summary(out, summary)
    return summary


def mark_finished(out: Path, tb: TestbedSection, audit: AuditOutcome, **extra: object) -> None:
    """Write RUN/run.json for a run that reached its end: what it was and how its audit went."""
    (out / RUN_MARKER).write_text(finished_marker(
        **extra, seed=tb.seed, feeder=tb.feeder, planner=tb.planner, forecaster=tb.forecaster,
        audit=audit.text))
