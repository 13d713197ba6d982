"""The audit's replay: every slot's market and every bill, recomputed from the ledger alone.

The genesis block holds the community's rules (mechanism, tariff, limits, fees, rules,
members). For each later block, sealed at the gate closure of its slot ``S``, the replay
clears the block's signed orders with the community's own pure clearing
(:mod:`coordinator.clearing`) and compares the recorded clearing and awards with the
result, field by field; then it settles slot ``S - 2`` from the awards recorded for it
and the signed meter reports in this block (:mod:`coordinator.settlement`), with the
members' standing carried from genesis (:mod:`coordinator.standing`), and compares the
recorded settlements. It also checks each slot's energy balance and the feeder limits.

It trusts nothing the coordinator computed: only the members' signed orders and reports
and the community fixed at genesis. Run it on a chain that passed the structural audit
(:mod:`ledger.verify`); it stops at the first difference and names block, transaction
and field.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from broker.community import Community
from broker.messages import GRID, Award, Clearing, Message, MeterReport, Order, Settlement, message_dict
from coordinator.clearing import clear_slot, to_award_messages, to_clearing_message
from coordinator.settlement import SETTLEMENT_LAG_SLOTS, settle_slot, terms_for
from coordinator.standing import Standing
from ledger.blocks import Block
from ledger.transactions import Transaction
from ledger.verify import place


@dataclass(frozen=True)
class ReplayDifference:
    """The first place where the record and the replay disagree."""

    height: int
    tx_index: int | None
    tx_hash: str | None
    what: str

    def __str__(self) -> str:
        return f"{place(self.height, self.tx_index, self.tx_hash)}: {self.what}"


@dataclass(frozen=True)
class SlotLine:
    slot: int
    orders: int
    price_u_per_kwh: int | None
    p2p_wh: int
    grid_import_wh: int
    grid_export_wh: int
    settled_slot: int
    bills_u: int


@dataclass
class MemberLine:
    bought_wh: int = 0
    sold_wh: int = 0
    trade_u: int = 0
    bill_u: int = 0
    slots_settled: int = 0


@dataclass
class ReplayReport:
    slots: list[SlotLine] = field(default_factory=list)
    members: dict[str, MemberLine] = field(default_factory=lambda: defaultdict(MemberLine))
    transactions_checked: int = 0


class _Differs(Exception):
    def __init__(self, difference: ReplayDifference) -> None:
        super().__init__(str(difference))
        self.difference = difference


def replay_chain(blocks: Iterable[Block]) -> ReplayReport | ReplayDifference:
    """Replay ``blocks`` (from genesis); the report, or the first difference."""
    report = ReplayReport()
    community: Community | None = None
    awards_by_slot: dict[int, dict[str, Award]] = {}
    standing: Standing | None = None
    group: list[Block] = []  # the blocks of one slot (more than one when a slot overflowed)
    try:
        for block in blocks:
            if community is None:
                community = block.transactions[0].community()
                standing = Standing(community.rules)
                continue
            assert standing is not None
            if group and block.header.slot != group[0].header.slot:
                _replay_slot(group, community, awards_by_slot, standing, report)
                group = []
            group.append(block)
            for old in [s for s in awards_by_slot if s < block.header.slot - SETTLEMENT_LAG_SLOTS]:
                del awards_by_slot[old]
        if group and community is not None and standing is not None:
            _replay_slot(group, community, awards_by_slot, standing, report)
    except _Differs as differs:
        return differs.difference
    return report


def _replay_slot(group: list[Block], community: Community, awards_by_slot: dict[int, dict[str, Award]],
                 standing: Standing, report: ReplayReport) -> None:
    last = group[-1]
    slot, t_s, height = last.header.slot, last.header.t_s, last.header.height
    times, grid = community.market.times, community.grid
    by_kind: dict[str, list[tuple[int, Transaction, Message]]] = defaultdict(list)
    where: dict[str, int] = {}  # tx hash -> the height of its block
    for block in group:
        for index, tx in enumerate(block.transactions):
            by_kind[tx.kind].append((index, tx, tx.message()))
            where[tx.tx_hash] = block.height
        report.transactions_checked += len(block.transactions)

    def _compare(height: int, index: int | None, tx: Transaction | None, recorded: Message,
                 replayed: Message) -> None:
        _compare_at(where.get(tx.tx_hash, height) if tx else height, index, tx, recorded, replayed)


    orders = [msg for _, _, msg in by_kind["order"] if isinstance(msg, Order)]
    line_price: int | None = None
    p2p = grid_import = grid_export = 0
    if orders:
        import_limit, export_limit = grid.import_limit_wh(times.slot_s), grid.export_limit_wh(times.slot_s)
        outcome = clear_slot(slot, orders, community.tariff.at(times.start_s(slot)), import_limit,
                             export_limit, community.market.mechanism)
        clearing = to_clearing_message(outcome, community.market.mechanism, t_s)
        [(index, tx, recorded)] = by_kind["clearing"] or [(None, None, None)]  # type: ignore[list-item]
        if recorded is None:
            raise _Differs(ReplayDifference(height, None, None, f"slot {slot} has orders but no clearing"))
        _compare(height, index, tx, recorded, clearing)
        _check_balance(where[tx.tx_hash] if tx else height, index, tx, clearing, import_limit,
                       export_limit)
        replayed = {a.device: a for a in to_award_messages(outcome, t_s)}
        recorded_awards = {msg.device: (i, t, msg) for i, t, msg in by_kind["award"]
                           if isinstance(msg, Award)}
        for device in sorted(set(replayed) | set(recorded_awards)):
            if device not in recorded_awards:
                raise _Differs(ReplayDifference(height, None, None, f"award for {device} is missing"))
            i, t, msg = recorded_awards[device]
            if device not in replayed:
                what = f"award for {device}: no order of its in this slot"
                raise _Differs(ReplayDifference(where[t.tx_hash], i, t.tx_hash, what))
            _compare(height, i, t, msg, replayed[device])
        awards_by_slot[slot] = replayed
        line_price, p2p = clearing.price_u_per_kwh, clearing.p2p_wh
        grid_import, grid_export = clearing.grid_import_wh, clearing.grid_export_wh
        for trade in clearing.trades:
            report.members[trade.buyer].bought_wh += trade.energy_wh if trade.buyer != GRID else 0
            report.members[trade.seller].sold_wh += trade.energy_wh if trade.seller != GRID else 0
        for award in replayed.values():
            report.members[award.device].trade_u += award.amount_u
    elif by_kind["clearing"] or by_kind["award"]:
        index, tx, _ = (by_kind["clearing"] or by_kind["award"])[0]
        what = "a clearing or award without orders"
        raise _Differs(ReplayDifference(where[tx.tx_hash], index, tx.tx_hash, what))

    settled = slot - SETTLEMENT_LAG_SLOTS
    reports = {msg.device: msg for _, _, msg in by_kind["report"] if isinstance(msg, MeterReport)}
    past_awards = awards_by_slot.get(settled, {})
    members = sorted(set(past_awards) | set(reports))
    recorded_settlements = {msg.device: (i, t, msg) for i, t, msg in by_kind["settlement"]
                            if isinstance(msg, Settlement)}
    bills = 0
    if members:
        terms = {device: terms_for(community, device) for device in members}
        settlements = settle_slot(settled, members, past_awards, reports,
                                  community.tariff.at(times.start_s(settled)), terms=terms).settlements
        for settlement in settlements:
            expected = standing.apply(settlement, slot)  # as the coordinator notes an exclusion
            if expected.device not in recorded_settlements:
                missing = f"settlement of slot {settled} for {expected.device} is missing"
                raise _Differs(ReplayDifference(height, None, None, missing))
            i, t, recorded = recorded_settlements.pop(expected.device)
            _compare(height, i, t, recorded, expected)
            bills += expected.bill_u
            line = report.members[expected.device]
            line.bill_u += expected.bill_u
            line.slots_settled += 1
    if recorded_settlements:
        device, (i, t, _) = next(iter(sorted(recorded_settlements.items())))
        what = f"settlement for {device}: nothing to settle"
        raise _Differs(ReplayDifference(where[t.tx_hash], i, t.tx_hash, what))
    report.slots.append(SlotLine(slot, len(orders), line_price, p2p, grid_import, grid_export, settled,
                                 bills))


def _compare_at(height: int, index: int | None, tx: Transaction | None, recorded: Message,
                replayed: Message) -> None:
    """The first field where ``recorded`` (less its signature) differs from ``replayed``."""
    got = {k: v for k, v in message_dict(recorded).items() if k != "sig"}
    want = {k: v for k, v in message_dict(replayed).items() if k != "sig"}
    for key in sorted(set(got) | set(want)):
        if got.get(key) != want.get(key):
            what = (f"{recorded.TYPE}.{key} recorded {_short(got.get(key))}, "
                    f"replayed {_short(want.get(key))}")
            raise _Differs(ReplayDifference(height, index, tx.tx_hash if tx else None, what))


def _check_balance(height: int, index: int | None, tx: Transaction | None, clearing: Clearing,
                   import_limit_wh: int, export_limit_wh: int) -> None:
    bought = sum(t.energy_wh for t in clearing.trades if t.buyer != GRID)
    sold = sum(t.energy_wh for t in clearing.trades if t.seller != GRID)
    if bought + clearing.grid_export_wh != sold + clearing.grid_import_wh:
        what = f"energy does not balance: members bought {bought} Wh and sold {sold} Wh"
        raise _Differs(ReplayDifference(height, index, tx.tx_hash if tx else None, what))
    if clearing.grid_import_wh > import_limit_wh or clearing.grid_export_wh > export_limit_wh:
        raise _Differs(ReplayDifference(height, index, tx.tx_hash if tx else None,
                                        "the feeder's limits are broken"))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
