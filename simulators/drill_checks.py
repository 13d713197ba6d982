"""What every drill checks after its run, from what the run left behind: pure functions on
:class:`RunEvidence` (read by :mod:`simulators.drill_evidence`).

- every slot of the run has one clearing, the same in the coordinator's database and in
  the ledger, and no slot is cleared twice;
- every slot a household metered is settled exactly once, on the energy that really
  flowed (the physics), and nothing is settled twice;
- every order the coordinator accepted has one award and is in the ledger once;
- the chain's heights run on without a gap and each slot's blocks follow one another;
- every agent's outbox is empty: all it had to deliver was delivered and confirmed;
- the market resumed: orders were accepted for slots after the drill struck.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulators.drill_report import Check


@dataclass(frozen=True)
class LedgerTx:
    height: int
    kind: str  # order, clearing, award, report, settlement (community: the genesis)
    body: Mapping[str, Any]


@dataclass(frozen=True)
class RunEvidence:
    run_slots: range
    households: tuple[str, ...]
    strike_slot: int  # the slot in which the drill struck
    metered_truth: Mapping[tuple[str, int], int]  # (household, slot): import - export by the physics, Wh
    excused: Mapping[tuple[str, int], str]  # household-slots nobody could meter, and why
    clearings: Mapping[int, str]  # coordinator.db: slot -> the clearing's payload
    settlements: Mapping[tuple[str, int], str]  # coordinator.db: (device, slot) -> payload
    accepted_orders: Mapping[str, int]  # coordinator.db: order id -> slot
    award_rows: Sequence[str]  # coordinator.db: the order id of every award row
    block_heights: Sequence[int]  # the ledger's blocks, in order
    block_slots: Sequence[int]
    ledger: Sequence[LedgerTx]
    outbox_left: Mapping[str, Sequence[str]]  # agent -> refs still waiting in its outbox at the end


def _pairs(ev: RunEvidence, kind: str) -> Counter[tuple[str, int]]:
    return Counter((tx.body["device"], tx.body["slot"]) for tx in ev.ledger if tx.kind == kind)


def _first(items: Sequence[str], more: int = 3) -> str:
    return ", ".join(items[:more]) + (f" and {len(items) - more} more" if len(items) > more else "")


def every_slot_cleared_once(ev: RunEvidence) -> Check:
    name = "every slot cleared once"
    missing = [str(s) for s in ev.run_slots if s not in ev.clearings]
    in_ledger = Counter(tx.body["slot"] for tx in ev.ledger if tx.kind == "clearing")
    twice = [str(s) for s, n in sorted(in_ledger.items()) if n > 1]
    differ = [str(tx.body["slot"]) for tx in ev.ledger if tx.kind == "clearing"
              and json.loads(ev.clearings.get(tx.body["slot"], "null")) != tx.body]
    problems = [f"{what}: slot(s) {_first(slots)}" for what, slots in (
        ("no clearing", missing), ("cleared twice in the ledger", twice),
        ("the ledger's clearing differs from the coordinator's", differ)) if slots]
    if problems:
        return Check.of(name, False, "; ".join(problems))
    return Check.of(name, True, f"{len(ev.run_slots)} slot(s), one clearing each; the "
                    f"{sum(in_ledger.values())} in the ledger (slots with orders) are the coordinator's")


def metered_slots_settled_once(ev: RunEvidence) -> Check:
    name = "every metered slot settled exactly once"
    settled = _pairs(ev, "settlement")
    bodies = {(tx.body["device"], tx.body["slot"]): tx.body for tx in ev.ledger if tx.kind == "settlement"}
    problems: list[str] = []
    expected = [(h, s) for h in ev.households for s in ev.run_slots if (h, s) not in ev.excused]
    for household, slot in expected:
        count = settled[household, slot]
        if count != 1:
            problems.append(f"{household} slot {slot} settled {count} time(s)")
        elif bodies[household, slot]["metered_wh"] != ev.metered_truth.get((household, slot)):
            problems.append(f"{household} slot {slot} settled on {bodies[household, slot]['metered_wh']} Wh, "
                            f"the meter saw {ev.metered_truth.get((household, slot))} Wh")
    problems += [f"{d} slot {s} settled {n} times" for (d, s), n in sorted(settled.items())
                 if n > 1 and (d, s) not in expected]
    problems += [f"{d} slot {s}: the coordinator's settlement is not the ledger's"
                 for (d, s), payload in sorted(ev.settlements.items())
                 if (d, s) in bodies and json.loads(payload) != bodies[d, s]]
    if problems:
        return Check.of(name, False, _first(problems))
    excused = [f"{h} slot {s} ({why})" for (h, s), why in sorted(ev.excused.items())]
    return Check.of(name, True, f"{len(expected)} household-slot(s), each once, on the energy that flowed"
                    + (f"; not metered: {_first(excused)}" if excused else ""))


def orders_awarded_once(ev: RunEvidence) -> Check:
    name = "every accepted order awarded once"
    awards = Counter(ev.award_rows)
    in_ledger = Counter(f"{tx.body['device']}:{tx.body['slot']}:{tx.body['seq']}"
                        for tx in ev.ledger if tx.kind == "order")
    problems = [f"{ref} has {awards[ref]} award(s)" for ref in sorted(ev.accepted_orders) if awards[ref] != 1]
    problems += [f"{ref} is in the ledger {in_ledger[ref]} time(s)" for ref in sorted(ev.accepted_orders)
                 if in_ledger[ref] != 1]
    problems += [f"{ref} is in the ledger but was not accepted" for ref in sorted(in_ledger)
                 if ref not in ev.accepted_orders]
    if problems:
        return Check.of(name, False, _first(problems))
    return Check.of(name, True, f"{len(ev.accepted_orders)} order(s), one award and one ledger entry each")


def chain_contiguous(ev: RunEvidence) -> Check:
    name = "block heights contiguous, each slot sealed once"
    heights = list(ev.block_heights)
    if heights != list(range(len(heights))):
        gaps = [f"{a}->{b}" for a, b in itertools.pairwise(heights) if b != a + 1]
        return Check.of(name, False, f"heights jump: {_first(gaps) or heights[:1]}")
    slots = list(ev.block_slots[1:])  # after the genesis block
    back = [f"height {i + 2}: slot {b} after {a}" for i, (a, b) in enumerate(itertools.pairwise(slots))
            if b < a]
    if back:
        return Check.of(name, False, f"a slot sealed again after a later one: {_first(back)}")
    return Check.of(name, True, f"heights 0..{len(heights) - 1}, {len(set(slots))} slot(s) in order")


def outboxes_flushed(ev: RunEvidence) -> Check:
    name = "every agent's outbox flushed"
    left = {agent: refs for agent, refs in sorted(ev.outbox_left.items()) if refs}
    if left:
        return Check.of(name, False, "still waiting: " + _first(
            [f"{agent}: {_first(list(refs))}" for agent, refs in left.items()]))
    return Check.of(name, True, f"{len(ev.outbox_left)} agent(s), nothing left undelivered")


def market_resumed(ev: RunEvidence) -> Check:
    name = "the market resumed"
    after = [ref for ref, slot in ev.accepted_orders.items() if slot > ev.strike_slot]
    later = [s for s in ev.run_slots if s > ev.strike_slot]
    if not later:
        return Check(name, "skipped", f"the run ends with slot {ev.strike_slot}, the drill's")
    return Check.of(name, bool(after), f"{len(after)} order(s) accepted for the {len(later)} slot(s) "
                    f"after the drill's ({ev.strike_slot})")


def common_checks(ev: RunEvidence) -> list[Check]:
    return [every_slot_cleared_once(ev), metered_slots_settled_once(ev), orders_awarded_once(ev),
            chain_contiguous(ev), outboxes_flushed(ev), market_resumed(ev)]
