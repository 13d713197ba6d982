"""Order and meter-report intake: validate, deduplicate, and keep what was accepted.

Pure bookkeeping over data. Each submission gets exactly one verdict; a resubmission
with the same id is answered with the first verdict and changes nothing (an order id
is derived from device, slot and sequence, a report id from device and slot). Only a
submission signed by the member it names can claim an id: a forged or mis-addressed
one is refused without being remembered, so it cannot block the member's real one.
Verdicts of settled slots are dropped from memory; ``recall`` (the coordinator's
database) finds them again for a submission of a slot already cleared or settled, so an
agent replaying its outbox late gets its first verdict too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from broker.community import Community
from broker.identity import Verifier
from broker.messages import MeterReport, Order
from broker.model_messages import ForecastShare
from broker.units import energy_wh_for
from coordinator.standing import Standing

MAX_SLOTS_AHEAD = 96


def sender_problem(community: Community, verifier: Verifier, msg: Order | MeterReport | ForecastShare,
                   topic_device: str) -> str:
    """The checks every submission passes: its topic, its member, its signature."""
    if msg.device != topic_device:
        return f"device {msg.device!r} does not match the topic's device {topic_device!r}"
    member = community.member(msg.device)
    if member is None:
        return f"unknown device {msg.device!r}: not a member of {community.id}"
    if not verifier.verify(msg, member.public_key):
        return "bad signature"
    return ""


@dataclass(frozen=True)
class Verdict:
    ref: str
    slot: int
    accepted: bool
    reason: str
    first_time: bool = True  # False when this answers a duplicate
    authentic: bool = True  # False: not from the member it names; claims no id, not stored


@dataclass
class Intake:
    """What the coordinator has accepted so far, per slot."""

    community: Community
    verifier: Verifier = field(default_factory=Verifier)
    orders: dict[int, dict[str, Order]] = field(default_factory=lambda: defaultdict(dict))
    reports: dict[int, dict[str, MeterReport]] = field(default_factory=lambda: defaultdict(dict))
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    cleared_through: int = -1  # highest slot already cleared
    settled_through: int = -1  # highest slot already settled
    standing: Standing | None = None  # members excluded under the community's rules
    recall: Callable[[str], Verdict | None] | None = None  # first verdicts no longer in memory

    def _sender_problem(self, msg: Order | MeterReport, topic_device: str) -> str:
        return sender_problem(self.community, self.verifier, msg, topic_device)

    def _remember(self, ref: str, slot: int, reason: str) -> Verdict:
        verdict = Verdict(ref, slot, not reason, reason)
        self.verdicts[ref] = verdict
        return verdict

    def _duplicate(self, ref: str, past: bool) -> Verdict | None:
        """The first verdict on ``ref`` as a duplicate's; ``past``: its slot is cleared (an
        order) or settled (a report), so the verdict may be forgotten here."""
        first = self.verdicts.get(ref)
        if first is None and past and self.recall is not None:
            first = self.recall(ref)
        if first is None:
            return None
        return Verdict(ref, first.slot, first.accepted, first.reason, first_time=False)

    def submit_order(self, order: Order, topic_device: str, now_s: int) -> Verdict:
        ref = order.order_id
        forged = self._sender_problem(order, topic_device)
        if forged:
            return Verdict(ref, order.slot, False, forged, first_time=False, authentic=False)
        duplicate = self._duplicate(ref, order.slot <= self.cleared_through)
        if duplicate is not None:
            return duplicate
        reason = self._order_problem(order, topic_device, now_s)
        if not reason:
            self.orders[order.slot][ref] = order
        return self._remember(ref, order.slot, reason)

    def _order_problem(self, order: Order, topic_device: str, now_s: int) -> str:
        times = self.community.market.times
        member = self.community.member(order.device)
        assert member is not None
        if order.slot <= self.cleared_through:
            return f"slot {order.slot} is already cleared"
        if not times.is_open(order.slot, now_s):
            return (
                f"late: the gate for slot {order.slot} closed at {times.gate_s(order.slot)}, "
                f"order handled at {now_s}"
            )
        if order.slot > times.slot_of(now_s) + MAX_SLOTS_AHEAD:
            return f"slot {order.slot} is more than {MAX_SLOTS_AHEAD} slots ahead"
        excluded = self.standing.exclusion(order.device, order.slot) if self.standing else None
        if excluded:
            return excluded
        slot_s = self.community.market.slot_s
        if order.side == "buy":
            limit_wh = energy_wh_for(member.limits.import_limit_w, slot_s)
            what = "import"
        else:
            limit_wh = energy_wh_for(member.limits.export_limit_w, slot_s)
            what = "export"
        if order.energy_wh > limit_wh:
            return (
                f"energy {order.energy_wh} Wh exceeds the connection {what} limit "
                f"of {limit_wh} Wh per slot"
            )
        for other in self.orders.get(order.slot, {}).values():
            if other.device == order.device:
                return f"one order per device and slot: {other.order_id} is already in the book"
        return ""

    def submit_report(self, report: MeterReport, topic_device: str, now_s: int) -> Verdict:
        ref = report.report_id
        forged = self._sender_problem(report, topic_device)
        if forged:
            return Verdict(ref, report.slot, False, forged, first_time=False, authentic=False)
        duplicate = self._duplicate(ref, report.slot <= self.settled_through)
        if duplicate is not None:
            return duplicate
        reason = self._report_problem(report, topic_device, now_s)
        if not reason:
            self.reports[report.slot][report.device] = report
        return self._remember(ref, report.slot, reason)

    def reports_running_slot(self, report: MeterReport, now_s: int) -> bool:
        """True for a report of the slot running at ``now_s``: members report on the clock
        tick that ends a slot, so under the bus clock such a report means this coordinator
        has not seen that tick yet (a restart, a lost session), not that the member is early."""
        times = self.community.market.times
        return now_s < times.end_s(report.slot) <= now_s + times.slot_s

    def _report_problem(self, report: MeterReport, topic_device: str, now_s: int) -> str:
        times = self.community.market.times
        if now_s < times.end_s(report.slot):
            return f"slot {report.slot} has not ended yet (ends at {times.end_s(report.slot)})"
        if report.slot <= self.settled_through:
            return f"slot {report.slot} is already settled"
        return ""

    def take_slot_orders(self, slot: int) -> list[Order]:
        """The accepted orders of ``slot``, sorted by id; marks the slot cleared."""
        self.cleared_through = max(self.cleared_through, slot)
        return [self.orders[slot][ref] for ref in sorted(self.orders.get(slot, {}))]

    def take_slot_reports(self, slot: int) -> dict[str, MeterReport]:
        """The accepted reports of ``slot`` by device; marks the slot settled."""
        self.settled_through = max(self.settled_through, slot)
        return dict(sorted(self.reports.get(slot, {}).items()))

    def forget_before(self, slot: int) -> None:
        """Drop books of slots before ``slot`` (settled and sealed) to keep memory flat."""
        for book in (self.orders, self.reports):
            for old in [s for s in book if s < slot]:
                del book[old]
        for ref in [r for r, v in self.verdicts.items() if v.slot < slot]:
            del self.verdicts[ref]
