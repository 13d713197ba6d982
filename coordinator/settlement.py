"""Settlement of one slot: contracted against metered energy, deviations at grid prices,
then the community's fees and rules. Pure.

The basis is each member's slot net (import - export). A member who took more than
contracted pays the excess at the import price; one who took less (or exported more)
is credited the shortfall at the feed-in price. ``notrade_bill_u`` is what the same
metered net would cost with no trading at all.

On top, in ``fees_u``: the network charge on energy bought from members and the wire
losses on it (that share of it, at the slot's import price), both paid by the buyer.
In ``rules_u``, each with its reason: a penalty per kWh metered beyond the member's
connection limit (a *violation*), a penalty per kWh imported beyond its contracts (grid
use instead of trading), and a bonus for the PV it used at home.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from broker.community import Community, Fees, PowerLimits, Rules, Tariff
from broker.messages import Award, MeterReport, Settlement
from broker.units import money_u


def _grid_cost(net_wh: int, tariff: Tariff) -> int:
    if net_wh > 0:
        return money_u(net_wh, tariff.import_u_per_kwh)
    return money_u(net_wh, tariff.feedin_u_per_kwh)


@dataclass(frozen=True)
class Terms:
    """What a settlement applies beyond the tariff (defaults: nothing)."""

    fees: Fees = field(default_factory=Fees)
    rules: Rules = field(default_factory=Rules)
    limits: PowerLimits | None = None  # the member's connection limits, per slot via slot_s
    slot_s: int = 900


def terms_for(community: Community, device: str) -> Terms:
    """The community's fees and rules with ``device``'s connection limits."""
    member = community.member(device)
    return Terms(community.fees, community.rules, member.limits if member is not None else None,
                 community.market.slot_s)


VIOLATION = "connection limit exceeded"
SETTLEMENT_LAG_SLOTS = 2  # a slot is settled at the gate closure two slots after its own


def settle_member(device: str, slot: int, award: Award | None, report: MeterReport | None,
                  tariff: Tariff, t_s: int = 0, terms: Terms | None = None) -> Settlement:
    terms = terms or Terms()
    contracted = award.contracted_wh if award else 0
    trade_u = award.amount_u if award else 0
    fees_u, notes = _fees(award, tariff, terms.fees)
    if report is None:
        notes.insert(0, "no meter report")
        return Settlement(device, slot, contracted, None, 0, trade_u, 0, trade_u + fees_u, 0,
                          "; ".join(notes), t_s, fees_u)
    metered = report.net_wh
    deviation = metered - contracted
    imbalance = _grid_cost(deviation, tariff)
    rules_u = _rules(report, deviation, terms, notes)
    return Settlement(device, slot, contracted, metered, deviation, trade_u, imbalance,
                      trade_u + imbalance + fees_u + rules_u, _grid_cost(metered, tariff),
                      "; ".join(notes), t_s, fees_u, rules_u)


def _fees(award: Award | None, tariff: Tariff, fees: Fees) -> tuple[int, list[str]]:
    if award is None or award.side != "buy" or award.p2p_wh == 0:
        return 0, []
    notes = []
    fee = money_u(award.p2p_wh, fees.p2p_fee_u_per_kwh)
    if fee:
        notes.append(f"network charge on {award.p2p_wh} Wh from members")
    lost_wh = award.p2p_wh * fees.loss_pct // 100
    losses = money_u(lost_wh, tariff.import_u_per_kwh)
    if losses:
        notes.append(f"losses {fees.loss_pct} % ({lost_wh} Wh) at the import price")
    return fee + losses, notes


def _rules(report: MeterReport, deviation_wh: int, terms: Terms, notes: list[str]) -> int:
    rules = terms.rules
    total = 0
    if terms.limits is not None and rules.limit_penalty_u_per_kwh:
        over = max(report.import_wh - terms.limits.import_limit_wh(terms.slot_s),
                   report.export_wh - terms.limits.export_limit_wh(terms.slot_s), 0)
        if over:
            total += money_u(over, rules.limit_penalty_u_per_kwh)
            notes.append(f"{VIOLATION} by {over} Wh")
    if rules.grid_use_penalty_u_per_kwh and deviation_wh > 0:
        total += money_u(deviation_wh, rules.grid_use_penalty_u_per_kwh)
        notes.append(f"grid use: {deviation_wh} Wh imported beyond contracts")
    if rules.self_consumption_bonus_u_per_kwh and report.pv_wh:
        own = max(0, report.pv_wh - report.export_wh)
        if own:
            total -= money_u(own, rules.self_consumption_bonus_u_per_kwh)
            notes.append(f"bonus: {own} Wh of own PV used at home")
    return total


@dataclass(frozen=True)
class SlotSettlement:
    slot: int
    settlements: tuple[Settlement, ...]

    @property
    def bill_u(self) -> int:
        return sum(s.bill_u for s in self.settlements)

    @property
    def notrade_bill_u(self) -> int:
        return sum(s.notrade_bill_u for s in self.settlements)

    @property
    def savings_u(self) -> int:
        return self.notrade_bill_u - self.bill_u

    @property
    def missing_reports(self) -> tuple[str, ...]:
        return tuple(s.device for s in self.settlements if s.metered_wh is None)


def settle_slot(slot: int, members: Sequence[str], awards: Mapping[str, Award],
                reports: Mapping[str, MeterReport], tariff: Tariff, t_s: int = 0,
                terms: Mapping[str, Terms] | None = None) -> SlotSettlement:
    """Every member's settlement; ``terms`` by member (default: the tariff alone)."""
    return SlotSettlement(slot, tuple(
        settle_member(d, slot, awards.get(d), reports.get(d), tariff, t_s, (terms or {}).get(d))
        for d in sorted(members)
    ))
