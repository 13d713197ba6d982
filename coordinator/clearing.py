"""One slot's market: the order book cleared under the community's mechanism. Pure.

Every order step is a limit order. The grid takes part as a capacity-limited party: it
sells up to the feeder's import limit at the import price and buys up to the export
limit at the feed-in price. Three mechanisms (``community.market.mechanism``):

``uniform`` (pay-as-clear, the default)
    Bids from the highest, asks from the lowest, are matched while the bid still meets
    the ask. Everyone trades at one price: the midpoint of the last accepted bid and ask,
    so the two sides of the margin share its surplus (a rule that put the price at a
    rationed party's limit would hand one side all of it whenever the members bid and
    ask near the grid's prices, as the agents do). Where the grid is the last accepted
    party its price is the price: it trades at its tariff or not at all; and while the
    grid still has room the price is kept between the feed-in and the import price, so
    no member is paid less, or charged more, than the grid would. Beyond them only when
    a feeder limit binds (a scarcity price, which the grid receives too).
``pay_as_bid``
    The same matching; each trade is priced at the buyer's bid for that step (the
    seller receives it), trades with the grid at the grid's price.
``mmr`` (mid-market rate)
    Members trade at the midpoint of the grid's prices: sellers asking at most that and
    buyers bidding at least that are matched, the longer side shared pro rata; what is
    left buys from or sells to the grid where its limit allows.

Where a price level can only be partly filled it is shared pro rata to the steps'
sizes (largest remainder, then order id): the outcome never depends on arrival order.
Every order gets exactly one fill with its status and, unless filled, the reason. Each
trade carries its price and each order's amount is the sum over its trades, so the
money balances exactly: what buyers pay is what sellers and the grid receive.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from broker.community import Tariff
from broker.messages import GRID, Award, Clearing, Order, Trade
from broker.units import split_evenly
from coordinator.matching import Match, Quote, double_auction, mid_market

MECHANISMS = ("uniform", "pay_as_bid", "mmr")
RATIONED = "partly filled: its price level shared pro rata"


class OrderFill(NamedTuple):
    order_id: str
    device: str
    side: str
    ordered_wh: int
    filled_wh: int
    status: str  # filled, partial, unfilled
    reason: str
    amount_u: int = 0  # what the order pays (positive) or receives (negative)
    curtail_wh: int = 0  # a seller's share of the PV to hold back under the feeder export limit
    p2p_wh: int = 0  # of filled_wh, traded with members rather than the grid

    @property
    def price_u_per_kwh(self) -> int | None:
        """The order's mean price over its trades (None when nothing was filled)."""
        if self.filled_wh == 0:
            return None
        return (abs(self.amount_u) * 1000 + self.filled_wh // 2) // self.filled_wh


@dataclass(frozen=True)
class ClearingOutcome:
    slot: int
    price_u_per_kwh: int | None  # the uniform or mid-market price; pay-as-bid: the mean
    buy_wh: int
    sell_wh: int
    p2p_wh: int
    grid_import_wh: int
    grid_export_wh: int
    fills: tuple[OrderFill, ...]
    trades: tuple[Trade, ...]

    def amount_u(self, fill: OrderFill) -> int:
        return fill.amount_u


def clear_slot(
    slot: int, orders: Sequence[Order], tariff: Tariff, grid_import_wh: int, grid_export_wh: int,
    mechanism: str = "uniform",
) -> ClearingOutcome:
    """Clear one slot's orders; ``tariff`` holds the grid's prices for that slot."""
    # A large book makes hundreds of thousands of short-lived objects without a cycle
    # among them: the cyclic collector only slows it down (by a third at 100,000 orders).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _clear(slot, orders, tariff, grid_import_wh, grid_export_wh, mechanism)
    finally:
        if collecting:
            gc.enable()


def _clear(
    slot: int, orders: Sequence[Order], tariff: Tariff, grid_import_wh: int, grid_export_wh: int,
    mechanism: str,
) -> ClearingOutcome:
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r} (known: {', '.join(MECHANISMS)})")
    devices = [o.device for o in orders]
    if len(devices) != len(set(devices)):
        raise ValueError("one order per device and slot")
    ids = {id(o): o.order_id for o in orders}
    orders = sorted(orders, key=lambda o: ids[id(o)])  # quotes in order-id order, ties so broken
    bids = [Quote(ids[id(o)], o.device, s.price_u_per_kwh, s.energy_wh)
            for o in orders if o.side == "buy" for s in o.steps]
    asks = [Quote(ids[id(o)], o.device, s.price_u_per_kwh, s.energy_wh)
            for o in orders if o.side == "sell" for s in o.steps]
    if mechanism == "mmr":
        match = mid_market(bids, asks, tariff, grid_import_wh, grid_export_wh)
    else:
        match = double_auction(bids, asks, tariff, grid_import_wh, grid_export_wh)
    if not orders:
        match = Match(0, {}, {}, [], None)
    trades = _priced_trades(match, mechanism, tariff)
    amounts: dict[str, int] = defaultdict(int)
    by_device = {o.device: ids[id(o)] for o in orders}
    for trade in trades:
        money, remainder = divmod(trade.energy_wh * trade.price_u_per_kwh, 1000)  # money_u, inlined
        money += 2 * remainder >= 1000
        if trade.buyer != GRID:
            amounts[by_device[trade.buyer]] += money
        if trade.seller != GRID:
            amounts[by_device[trade.seller]] -= money
    price = match.price
    if mechanism == "pay_as_bid" and match.volume:
        energy = sum(t.energy_wh for t in trades)
        price = (sum(t.energy_wh * t.price_u_per_kwh for t in trades) + energy // 2) // energy
    ordered_wh = {id(o): o.energy_wh for o in orders}
    fills = tuple(
        _fill(order, ids[id(order)], ordered_wh[id(order)], match, price, amounts[ids[id(order)]],
              grid_import_wh, grid_export_wh)
        for order in orders
    )
    fills = _curtailment(fills, grid_export_wh)
    peers: dict[str, int] = defaultdict(int)
    for trade in trades:
        if GRID not in (trade.buyer, trade.seller):
            peers[trade.buyer] += trade.energy_wh
            peers[trade.seller] += trade.energy_wh
    fills = tuple(f._replace(p2p_wh=peers[f.device]) if peers.get(f.device) else f for f in fills)
    return ClearingOutcome(
        slot=slot, price_u_per_kwh=price,
        buy_wh=sum(ordered_wh[id(o)] for o in orders if o.side == "buy"),
        sell_wh=sum(ordered_wh[id(o)] for o in orders if o.side == "sell"),
        p2p_wh=sum(t.energy_wh for t in trades if GRID not in (t.buyer, t.seller)),
        grid_import_wh=match.sell_fills.get(GRID, 0), grid_export_wh=match.buy_fills.get(GRID, 0),
        fills=fills, trades=trades,
    )


def clear_call_auction(
    slot: int, orders: Sequence[Order], tariff: Tariff, grid_import_wh: int, grid_export_wh: int
) -> ClearingOutcome:
    """The default mechanism: a uniform-price call auction."""
    return clear_slot(slot, orders, tariff, grid_import_wh, grid_export_wh, "uniform")


# -- prices, fills, messages ---------------------------------------------------------


def _priced_trades(match: Match, mechanism: str, tariff: Tariff) -> tuple[Trade, ...]:
    merged: dict[tuple[str, str, int], int] = defaultdict(int)
    for bid, ask, energy in match.pairs:
        if bid.owner == GRID and ask.owner == GRID:
            continue
        if mechanism == "pay_as_bid":
            price = (tariff.feedin_u_per_kwh if bid.owner == GRID
                     else tariff.import_u_per_kwh if ask.owner == GRID else bid.price)
        elif mechanism == "mmr" and (bid.owner == GRID or ask.owner == GRID):
            price = tariff.feedin_u_per_kwh if bid.owner == GRID else tariff.import_u_per_kwh
        else:
            assert match.price is not None
            price = match.price
        merged[(bid.device, ask.device, price)] += energy
    # In the order the pairs were made (best bid with best ask first), which depends on the
    # book alone, never on arrival order.
    return tuple(Trade(b, s, e, p) for (b, s, p), e in merged.items())


def _fill(
    order: Order, order_id: str, ordered: int, match: Match, price: int | None, amount: int,
    grid_import_wh: int, grid_export_wh: int,
) -> OrderFill:
    got = (match.buy_fills if order.side == "buy" else match.sell_fills).get(order_id, 0)
    if got == ordered:
        return OrderFill(order_id, order.device, order.side, ordered, got, "filled", "", amount)
    if got > 0:
        return OrderFill(order_id, order.device, order.side, ordered, got, "partial",
                         _partial_reason(order, match, grid_import_wh, grid_export_wh), amount)
    return OrderFill(order_id, order.device, order.side, ordered, 0, "unfilled",
                     _unfilled_reason(order, match, price, grid_import_wh, grid_export_wh), 0)


def _curtailment(fills: tuple[OrderFill, ...], export_limit_wh: int) -> tuple[OrderFill, ...]:
    """When the members' offered surplus beyond what they bid for exceeds the feeder's
    export limit, the excess is held back: shared among the sellers in proportion to
    their unsold offers, each told how much and why."""
    surplus = (sum(f.ordered_wh for f in fills if f.side == "sell")
               - sum(f.ordered_wh for f in fills if f.side == "buy"))
    unsold = [(index, f.ordered_wh - f.filled_wh) for index, f in enumerate(fills)
              if f.side == "sell" and f.ordered_wh > f.filled_wh]
    excess = surplus - export_limit_wh
    if excess <= 0 or not unsold:
        return fills
    total = sum(e for _, e in unsold)
    shares = split_evenly(min(excess, total), tuple(e for _, e in unsold))
    out = list(fills)
    for (index, _), share in zip(unsold, shares, strict=True):
        if share:
            note = (f"curtail {share} Wh: offered surplus {surplus} Wh exceeds the feeder's export "
                    f"limit of {export_limit_wh} Wh, shared over unsold offers")
            fill = out[index]
            out[index] = fill._replace(curtail_wh=share,
                                       reason=f"{fill.reason}; {note}" if fill.reason else note)
    return tuple(out)


def _partial_reason(order: Order, match: Match, grid_import_wh: int, grid_export_wh: int) -> str:
    if order.side == "buy" and grid_import_wh > 0 and match.sell_fills.get(GRID, 0) >= grid_import_wh:
        return "partly filled: feeder import limit reached"
    if order.side == "sell" and grid_export_wh > 0 and match.buy_fills.get(GRID, 0) >= grid_export_wh:
        return "partly filled: feeder export limit reached"
    return RATIONED


def _unfilled_reason(
    order: Order, match: Match, price: int | None, grid_import_wh: int, grid_export_wh: int
) -> str:
    best = (max if order.side == "buy" else min)(s.price_u_per_kwh for s in order.steps)
    if order.side == "buy":
        if price is not None and best < price:
            return f"bid {best} below clearing price {price}"
        if grid_import_wh > 0 and match.sell_fills.get(GRID, 0) >= grid_import_wh:
            return "feeder import limit reached"
        return ("no supply left at its limit" if match.volume
                else "nothing cleared: no ask at or below its bid")
    if price is not None and best > price:
        return f"ask {best} above clearing price {price}"
    if grid_export_wh > 0 and match.buy_fills.get(GRID, 0) >= grid_export_wh:
        return "feeder export limit reached"
    return ("no demand left at its limit" if match.volume
            else "nothing cleared: no bid at or above its ask")


def to_clearing_message(outcome: ClearingOutcome, mechanism: str, t_s: int) -> Clearing:
    return Clearing(
        slot=outcome.slot, mechanism=mechanism, price_u_per_kwh=outcome.price_u_per_kwh,
        buy_wh=outcome.buy_wh, sell_wh=outcome.sell_wh, p2p_wh=outcome.p2p_wh,
        grid_import_wh=outcome.grid_import_wh, grid_export_wh=outcome.grid_export_wh,
        orders=len(outcome.fills), trades=outcome.trades, t_s=t_s,
    )


def to_award_messages(outcome: ClearingOutcome, t_s: int) -> tuple[Award, ...]:
    return tuple(
        Award(f.device, outcome.slot, f.order_id, f.side, f.status, f.ordered_wh, f.filled_wh,
              f.price_u_per_kwh, f.amount_u, f.reason, t_s, f.curtail_wh, f.p2p_wh)
        for f in outcome.fills
    )
