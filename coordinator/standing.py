"""Members' standing: connection-limit violations, running balance, and exclusion. Pure.

Fed every settlement in slot order (also after a restart, from the stored ones, so it
comes back the same). With ``rules.exclusion_after_violations`` set, a member with that
many violations within ``exclusion_window_slots`` is excluded from trading for
``exclusion_slots``; with ``rules.min_balance_u`` set, so is a member whose balance (the
negative sum of its bills) falls below it. Each exclusion carries its reason, which the
settlement that caused it and every order refused meanwhile repeat.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field

from broker.community import Rules
from broker.messages import Settlement
from coordinator.settlement import VIOLATION


@dataclass
class Standing:
    rules: Rules
    violations: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    balance_u: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    excluded: dict[str, tuple[int, str]] = field(default_factory=dict)  # member -> (until slot, why)

    def record(self, settlement: Settlement, decided_at_slot: int) -> str | None:
        """Take in one settlement; the reason when it excludes its member (from
        ``decided_at_slot``, the slot whose gate is closing)."""
        rules, device, slot = self.rules, settlement.device, settlement.slot
        self.balance_u[device] -= settlement.bill_u
        if VIOLATION in settlement.reason:
            self.violations[device].append(slot)
        if self.exclusion(device, decided_at_slot):
            return None
        until = decided_at_slot + rules.exclusion_slots
        recent = [s for s in self.violations[device] if s > slot - rules.exclusion_window_slots]
        if rules.exclusion_after_violations and len(recent) >= rules.exclusion_after_violations:
            reason = (f"excluded until slot {until}: {len(recent)} connection-limit violations in "
                      f"{rules.exclusion_window_slots} slots (slots {', '.join(map(str, recent))})")
            self.violations[device].clear()
            self.excluded[device] = (until, reason)
            return reason
        if rules.min_balance_u is not None and self.balance_u[device] < rules.min_balance_u:
            reason = (f"excluded until slot {until}: balance {self.balance_u[device]} u below "
                      f"the community's minimum {rules.min_balance_u} u")
            self.excluded[device] = (until, reason)
            return reason
        return None

    def apply(self, settlement: Settlement, decided_at_slot: int) -> Settlement:
        """:meth:`record` the settlement; an exclusion it causes is added to its reason."""
        excluded = self.record(settlement, decided_at_slot)
        if excluded is None:
            return settlement
        reason = f"{settlement.reason}; {excluded}" if settlement.reason else excluded
        return dataclasses.replace(settlement, reason=reason[:500])

    def exclusion(self, device: str, slot: int) -> str | None:
        """Why ``device`` may not trade in ``slot``; None when it may."""
        found = self.excluded.get(device)
        if found is None or slot >= found[0]:
            return None
        return found[1]
