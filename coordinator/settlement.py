"""Settlement of one slot: contracted against metered energy, deviations at grid prices.

The basis is each member's slot net (import - export). A member who took more than
contracted pays the excess at the import tariff; one who took less (or exported
more) is credited the shortfall at the feed-in tariff. ``notrade_bill_u`` is what the
same metered net would cost with no trading at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from broker.community import Tariff
from broker.messages import Award, MeterReport, Settlement
from broker.units import money_u


def _grid_cost(net_wh: int, tariff: Tariff) -> int:
    if net_wh > 0:
        return money_u(net_wh, tariff.import_u_per_kwh)
    return money_u(net_wh, tariff.feedin_u_per_kwh)


def settle_member(device: str, slot: int, award: Award | None, report: MeterReport | None,
                  tariff: Tariff, t_s: int = 0) -> Settlement:
    contracted = award.contracted_wh if award else 0
    trade_u = award.amount_u if award else 0
    if report is None:
        return Settlement(device, slot, contracted, None, 0, trade_u, 0, trade_u, 0,
                          "no meter report", t_s)
    metered = report.net_wh
    deviation = metered - contracted
    imbalance = _grid_cost(deviation, tariff)
    return Settlement(device, slot, contracted, metered, deviation, trade_u, imbalance,
                      trade_u + imbalance, _grid_cost(metered, tariff), "", t_s)


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
                reports: Mapping[str, MeterReport], tariff: Tariff, t_s: int = 0) -> SlotSettlement:
    return SlotSettlement(slot, tuple(
        settle_member(d, slot, awards.get(d), reports.get(d), tariff, t_s) for d in sorted(members)
    ))
