"""Read what a drill's run left behind into :class:`~simulators.drill_checks.RunEvidence`:
the coordinator's database, the ledger, the physics' records and the agents' outboxes;
and audit and replay the ledger as ``gridmesh ledger audit --replay`` does."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from edge.outbox import Outbox, OutboxError
from gridmesh.config import relative_to
from ledger.errors import LedgerError
from ledger.parallel_audit import audit_file
from ledger.replay import ReplayDifference, replay_chain
from ledger.store import LedgerStore
from ledger.verify import AuditFailure
from simulators.device_farm import StepRecord
from simulators.drill_checks import LedgerTx, RunEvidence
from simulators.drill_report import Check


def metered_truth(records: Iterable[StepRecord], slot_s: int) -> dict[tuple[str, int], int]:
    """What each household's meter counted per slot: import - export, Wh."""
    net: dict[tuple[str, int], int] = defaultdict(int)
    for record in records:
        flows = record.flows
        net[record.household, flows.start_s // slot_s] += flows.import_wh - flows.export_wh
    return dict(net)


def outbox_path(agent_file: Path) -> Path:
    """Where the agent configured in ``agent_file`` keeps its outbox (as ``gridmesh agent`` does)."""
    section = yaml.safe_load(agent_file.read_text())["agent"]
    return relative_to(agent_file, section.get("state_dir", "state")) / f"{section['device']}.outbox.db"


def outbox_waiting(agent_file: Path) -> list[str]:
    """The refs waiting in an agent's outbox (its process must not be running)."""
    path = outbox_path(agent_file)
    if not path.exists():
        return []
    try:
        outbox = Outbox(path)
    except OutboxError as exc:
        return [f"(unreadable: {exc})"]
    try:
        return [entry.ref for entry in outbox.waiting()]
    finally:
        outbox.close()


def gather(out: Path, run_slots: range, households: tuple[str, ...], strike_slot: int,
           truth: Mapping[tuple[str, int], int], excused: Mapping[tuple[str, int], str],
           agent_files: Iterable[Path]) -> RunEvidence:
    with sqlite3.connect(f"{(out / 'coordinator.db').resolve().as_uri()}?mode=ro", uri=True) as db:
        clearings = dict(db.execute("SELECT slot, payload FROM clearings").fetchall())
        settlements = {(d, s): p for s, d, p in db.execute("SELECT slot, device, payload FROM settlements")}
        accepted = dict(db.execute("SELECT ref, slot FROM verdicts WHERE kind = 'order' AND accepted = 1"))
        awards = [ref for (ref,) in db.execute("SELECT json_extract(payload, '$.order_id') FROM awards")]
    heights: list[int] = []
    slots: list[int] = []
    txs: list[LedgerTx] = []
    with LedgerStore.open_readonly(out / "ledger.db") as store:
        for block in store.blocks():
            heights.append(block.header.height)
            slots.append(block.header.slot)
            txs.extend(LedgerTx(block.header.height, tx.kind, tx.body) for tx in block.transactions)
    return RunEvidence(
        run_slots, households, strike_slot, truth, excused, clearings, settlements, accepted, awards,
        heights, slots, txs, {path.stem: outbox_waiting(path) for path in agent_files})


def ledger_checks(ledger: Path) -> list[Check]:
    """The audit (chain, proof of work, Merkle roots, signatures) and the replay of every
    slot's clearing and bills from the signed orders and reports."""
    audit = audit_file(ledger)
    if isinstance(audit, AuditFailure):
        return [Check.of("ledger audit", False, str(audit))]
    checks = [Check.of("ledger audit", True, f"{audit.blocks} block(s), head {audit.head_hash[:16]}")]
    try:
        with LedgerStore.open_readonly(ledger) as store:
            replayed = replay_chain(store.blocks())
    except LedgerError as exc:
        return [*checks, Check.of("ledger replay", False, str(exc))]
    if isinstance(replayed, ReplayDifference):
        return [*checks, Check.of("ledger replay", False, str(replayed))]
    return [*checks, Check.of("ledger replay", True, "every slot's clearing and bills recomputed alike")]
