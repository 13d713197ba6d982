"""Uniform-price call auction for one slot, with the grid as a capacity-limited party.

Every order step is a limit order. The grid sells up to the feeder's import limit at
the import tariff and buys up to the export limit at the feed-in tariff. The traded
volume is the largest at which the marginal bid still meets the marginal ask; the
price is the midpoint of those two (round half up), except that when the grid is the
marginal party its tariff is the price: it trades at its own price or not at all. A
price beyond the grid's tariffs therefore only arises when a feeder limit binds.
Steps at the marginal price level that can only be partly filled share the remainder
pro rata to their size (largest remainder, then order id): the outcome never depends
on arrival order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from broker.community import Tariff
from broker.messages import GRID, Award, Clearing, Order, Trade
from broker.units import money_u, split_evenly


@dataclass(frozen=True)
class OrderFill:
    order_id: str
    device: str
    side: str
    ordered_wh: int
    filled_wh: int
    status: str  # filled, partial, unfilled
    reason: str


@dataclass(frozen=True)
class ClearingOutcome:
    slot: int
    price_u_per_kwh: int | None
    buy_wh: int
    sell_wh: int
    p2p_wh: int
    grid_import_wh: int
    grid_export_wh: int
    fills: tuple[OrderFill, ...]
    trades: tuple[Trade, ...]

    def amount_u(self, fill: OrderFill) -> int:
        """What an order pays (positive) or receives (negative)."""
        if self.price_u_per_kwh is None:
            return 0
        amount = money_u(fill.filled_wh, self.price_u_per_kwh)
        return amount if fill.side == "buy" else -amount


@dataclass(frozen=True)
class _Quote:
    owner: str  # order id, or GRID
    device: str
    price: int
    energy_wh: int


def _fill_side(quotes: list[_Quote], volume: int, best_first: bool) -> dict[str, int]:
    """Fill ``volume`` from quotes sorted best price first; the marginal level pro rata."""
    by_price: dict[int, list[_Quote]] = defaultdict(list)
    for q in quotes:
        by_price[q.price].append(q)
    filled: dict[str, int] = defaultdict(int)
    remaining = volume
    for price in sorted(by_price, reverse=best_first):
        if remaining <= 0:
            break
        level = sorted(by_price[price], key=lambda q: q.owner)
        size = sum(q.energy_wh for q in level)
        if size <= remaining:
            for q in level:
                filled[q.owner] += q.energy_wh
            remaining -= size
        else:
            parts = split_evenly(remaining, tuple(q.energy_wh for q in level))
            for q, part in zip(level, parts, strict=True):
                filled[q.owner] += part
            remaining = 0
    return filled


def _volume_and_price(bids: list[_Quote], asks: list[_Quote]) -> tuple[int, int | None]:
    bid_steps = sorted(bids, key=lambda q: -q.price)
    ask_steps = sorted(asks, key=lambda q: q.price)
    i = j = 0
    bid_left = bid_steps[0].energy_wh if bid_steps else 0
    ask_left = ask_steps[0].energy_wh if ask_steps else 0
    volume = 0
    marginal: tuple[_Quote, _Quote] | None = None
    while i < len(bid_steps) and j < len(ask_steps):
        bid, ask = bid_steps[i], ask_steps[j]
        if bid.price < ask.price or (bid.owner == GRID and ask.owner == GRID):
            break
        take = min(bid_left, ask_left)
        volume += take
        marginal = (bid, ask)
        bid_left -= take
        ask_left -= take
        if bid_left == 0:
            i += 1
            bid_left = bid_steps[i].energy_wh if i < len(bid_steps) else 0
        if ask_left == 0:
            j += 1
            ask_left = ask_steps[j].energy_wh if j < len(ask_steps) else 0
    if marginal is None:
        return 0, None
    bid, ask = marginal
    if bid.owner == GRID:  # the grid buys at its feed-in tariff, never at less
        return volume, bid.price
    if ask.owner == GRID:  # and sells at its import tariff, never at more
        return volume, ask.price
    return volume, (bid.price + ask.price + 1) // 2


def clear_call_auction(
    slot: int, orders: Sequence[Order], tariff: Tariff, grid_import_wh: int, grid_export_wh: int
) -> ClearingOutcome:
    devices = [o.device for o in orders]
    if len(devices) != len(set(devices)):
        raise ValueError("one order per device and slot")
    bids = [_Quote(o.order_id, o.device, s.price_u_per_kwh, s.energy_wh)
            for o in orders if o.side == "buy" for s in o.steps]
    asks = [_Quote(o.order_id, o.device, s.price_u_per_kwh, s.energy_wh)
            for o in orders if o.side == "sell" for s in o.steps]
    if grid_import_wh > 0:
        asks.append(_Quote(GRID, GRID, tariff.import_u_per_kwh, grid_import_wh))
    if grid_export_wh > 0:
        bids.append(_Quote(GRID, GRID, tariff.feedin_u_per_kwh, grid_export_wh))
    volume, price = _volume_and_price(bids, asks)
    if not orders:
        price = None
    if price is not None:
        bids = [q for q in bids if q.price >= price]
        asks = [q for q in asks if q.price <= price]
    bought = _fill_side(bids, volume, best_first=True)
    sold = _fill_side(asks, volume, best_first=False)

    fills = []
    for order in sorted(orders, key=lambda o: o.order_id):
        got = (bought if order.side == "buy" else sold).get(order.order_id, 0)
        ordered = order.energy_wh
        if got == ordered:
            status, reason = "filled", ""
        elif got > 0:
            status, reason = "partial", "partly filled: marginal price level shared pro rata"
        else:
            status = "unfilled"
            limit = order.steps[0].price_u_per_kwh
            if price is None:
                reason = "nothing cleared"
            elif order.side == "buy":
                reason = (f"bid {limit} below clearing price {price}" if limit < price
                          else "feeder import limit reached")
            else:
                reason = (f"ask {limit} above clearing price {price}" if limit > price
                          else "feeder export limit reached")
        fills.append(OrderFill(order.order_id, order.device, order.side, ordered, got, status, reason))

    trades = _pair(bids, bought, asks, sold)
    p2p = sum(t.energy_wh for t in trades if GRID not in (t.buyer, t.seller))
    return ClearingOutcome(
        slot=slot, price_u_per_kwh=price,
        buy_wh=sum(o.energy_wh for o in orders if o.side == "buy"),
        sell_wh=sum(o.energy_wh for o in orders if o.side == "sell"),
        p2p_wh=p2p, grid_import_wh=sold.get(GRID, 0), grid_export_wh=bought.get(GRID, 0),
        fills=tuple(fills), trades=trades,
    )


def _ranked(quotes: list[_Quote], filled: dict[str, int], best_first: bool) -> list[tuple[str, int]]:
    """Filled parties as (device, energy), best limit price first, ties by order id."""
    best: dict[str, tuple[int, str]] = {}
    for q in quotes:
        if filled.get(q.owner, 0) > 0:
            key = (-q.price if best_first else q.price, q.device)
            best[q.owner] = min(best.get(q.owner, key), key)
    return [(best[owner][1], filled[owner]) for owner in sorted(best, key=lambda o: (best[o][0], o))]


def _pair(bids: list[_Quote], bought: dict[str, int], asks: list[_Quote],
          sold: dict[str, int]) -> tuple[Trade, ...]:
    """Pair filled sellers (cheapest first) with filled buyers (highest first), greedily."""
    buyers = _ranked(bids, bought, best_first=True)
    sellers = _ranked(asks, sold, best_first=False)
    merged: dict[tuple[str, str], int] = defaultdict(int)
    i = j = 0
    buyer_left = buyers[0][1] if buyers else 0
    seller_left = sellers[0][1] if sellers else 0
    while i < len(buyers) and j < len(sellers):
        take = min(buyer_left, seller_left)
        buyer, seller = buyers[i][0], sellers[j][0]
        if not (buyer == GRID and seller == GRID):
            merged[(buyer, seller)] += take
        buyer_left -= take
        seller_left -= take
        if buyer_left == 0:
            i += 1
            buyer_left = buyers[i][1] if i < len(buyers) else 0
        if seller_left == 0:
            j += 1
            seller_left = sellers[j][1] if j < len(sellers) else 0
    return tuple(Trade(b, s, e) for (b, s), e in sorted(merged.items()))


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
              outcome.price_u_per_kwh, outcome.amount_u(f), f.reason, t_s)
        for f in outcome.fills
    )
