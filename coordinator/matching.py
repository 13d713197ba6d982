"""Matching an order book: who trades with whom, and how much. Pure.

The engine behind :mod:`coordinator.clearing`: the double auction (uniform price and
pay-as-bid share its matching) and the mid-market rate. Quotes are order steps, the
grid's a capacity-limited quote at each side; levels of equal price are filled pro rata
(largest remainder, then order id), so nothing depends on arrival order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

from broker.community import Tariff
from broker.messages import GRID
from broker.units import split_evenly


class Quote(NamedTuple):
    owner: str  # order id, or GRID
    device: str
    price: int
    energy_wh: int


@dataclass(frozen=True)
class Match:
    volume: int
    buy_fills: dict[str, int]  # owner -> Wh
    sell_fills: dict[str, int]
    pairs: list[tuple[Quote, Quote, int]]  # (bid step, ask step, Wh)
    price: int | None  # the uniform price


def double_auction(
    bids: list[Quote], asks: list[Quote], tariff: Tariff, grid_import_wh: int, grid_export_wh: int
) -> Match:
    grid_ask = Quote(GRID, GRID, tariff.import_u_per_kwh, grid_import_wh) if grid_import_wh > 0 else None
    grid_bid = Quote(GRID, GRID, tariff.feedin_u_per_kwh, grid_export_wh) if grid_export_wh > 0 else None
    bid_levels = levels(bids, grid_bid, descending=True)
    ask_levels = levels(asks, grid_ask, descending=False)
    volume = crossing_volume(bid_levels, ask_levels)
    buy_fills, bid_parts = fill_levels(bid_levels, volume)
    sell_fills, ask_parts = fill_levels(ask_levels, volume)
    price = None
    if volume:
        last_bid, last_ask = bid_parts[-1][0], ask_parts[-1][0]
        if last_ask.owner == GRID:  # the grid sells at its import price, never at more
            price = last_ask.price
        elif last_bid.owner == GRID:  # and buys at its feed-in price, never at less
            price = last_bid.price
        else:
            price = (last_bid.price + last_ask.price + 1) // 2
            if grid_bid is not None and buy_fills.get(GRID, 0) < grid_bid.energy_wh:
                price = max(price, grid_bid.price)  # the grid would still buy at feed-in
            if grid_ask is not None and sell_fills.get(GRID, 0) < grid_ask.energy_wh:
                price = min(price, grid_ask.price)  # or still sell at import
    pairs = pair(bid_parts, ask_parts)
    return Match(volume, buy_fills, sell_fills, pairs, price)


def levels(quotes: list[Quote], grid: Quote | None, descending: bool) -> list[list[Quote]]:
    """Members' quotes (given in order-id order) grouped by price, best first; the grid's
    quote is a level of its own, after the members' level at the same price."""
    ordered = sorted(quotes, key=attrgetter("price"), reverse=descending)  # stable: ids stay sorted
    levels: list[list[Quote]] = []
    for quote in ordered:
        if levels and levels[-1][0].price == quote.price:
            levels[-1].append(quote)
        else:
            levels.append([quote])
    if grid is not None:
        at = 0
        while at < len(levels) and (levels[at][0].price >= grid.price if descending
                                    else levels[at][0].price <= grid.price):
            at += 1
        levels.insert(at, [grid])
    return levels


def crossing_volume(bid_levels: list[list[Quote]], ask_levels: list[list[Quote]]) -> int:
    """The largest volume at which the marginal bid still meets the marginal ask (the
    grid never trades with itself)."""
    def size(level: list[Quote]) -> int:
        return level[0].energy_wh if len(level) == 1 else sum(q.energy_wh for q in level)

    i = j = 0
    bid_left = size(bid_levels[0]) if bid_levels else 0
    ask_left = size(ask_levels[0]) if ask_levels else 0
    volume = 0
    while i < len(bid_levels) and j < len(ask_levels):
        bid, ask = bid_levels[i][0], ask_levels[j][0]
        if bid.price < ask.price or (bid.owner == GRID and ask.owner == GRID):
            break
        take = min(bid_left, ask_left)
        volume += take
        bid_left -= take
        ask_left -= take
        if bid_left == 0:
            i += 1
            bid_left = size(bid_levels[i]) if i < len(bid_levels) else 0
        if ask_left == 0:
            j += 1
            ask_left = size(ask_levels[j]) if j < len(ask_levels) else 0
    return volume


def fill_levels(
    levels: list[list[Quote]], volume: int
) -> tuple[dict[str, int], list[tuple[Quote, int]]]:
    """Fill ``volume`` level by level; a level that only partly fits is shared pro rata.
    Returns each owner's fill and the filled parts of the quotes, in fill order."""
    fills: dict[str, int] = defaultdict(int)
    parts: list[tuple[Quote, int]] = []
    remaining = volume
    for level in levels:
        if remaining <= 0:
            break
        if len(level) == 1 and level[0].energy_wh <= remaining:  # the common case
            quote = level[0]
            fills[quote.owner] += quote.energy_wh
            parts.append((quote, quote.energy_wh))
            remaining -= quote.energy_wh
            continue
        size = sum(q.energy_wh for q in level)
        if size <= remaining:
            shares: Sequence[int] = [q.energy_wh for q in level]
        else:
            shares = split_evenly(remaining, tuple(q.energy_wh for q in level))
        for quote, share in zip(level, shares, strict=True):
            if share:
                fills[quote.owner] += share
                parts.append((quote, share))
        remaining -= min(size, remaining)
    return dict(fills), parts


def pair(
    bid_parts: list[tuple[Quote, int]], ask_parts: list[tuple[Quote, int]]
) -> list[tuple[Quote, Quote, int]]:
    """Pair filled bid steps (best first) with filled ask steps (best first), greedily."""
    pairs: list[tuple[Quote, Quote, int]] = []
    i = j = 0
    bid_left = bid_parts[0][1] if bid_parts else 0
    ask_left = ask_parts[0][1] if ask_parts else 0
    while i < len(bid_parts) and j < len(ask_parts):
        take = min(bid_left, ask_left)
        pairs.append((bid_parts[i][0], ask_parts[j][0], take))
        bid_left -= take
        ask_left -= take
        if bid_left == 0:
            i += 1
            bid_left = bid_parts[i][1] if i < len(bid_parts) else 0
        if ask_left == 0:
            j += 1
            ask_left = ask_parts[j][1] if j < len(ask_parts) else 0
    return pairs


# -- the mid-market rate -------------------------------------------------------------


def mid_market(
    bids: list[Quote], asks: list[Quote], tariff: Tariff, grid_import_wh: int, grid_export_wh: int
) -> Match:
    rate = (tariff.import_u_per_kwh + tariff.feedin_u_per_kwh + 1) // 2
    buyers = [q for q in bids if q.price >= rate]
    sellers = [q for q in asks if q.price <= rate]
    demand, supply = sum(q.energy_wh for q in buyers), sum(q.energy_wh for q in sellers)
    p2p = min(demand, supply)
    buy_parts = pro_rata(buyers, p2p)
    sell_parts = pro_rata(sellers, p2p)
    pairs = pair(buy_parts, sell_parts)
    got: dict[int, int] = defaultdict(int)
    for quote, share in (*buy_parts, *sell_parts):
        got[id(quote)] += share
    # What members could not trade among themselves goes to the grid, within its limits.
    from_grid = [(q, q.energy_wh - got[id(q)]) for q in sorted(bids, key=lambda q: (-q.price, q.owner))
                 if q.price >= tariff.import_u_per_kwh and q.energy_wh > got[id(q)]]
    to_grid = [(q, q.energy_wh - got[id(q)]) for q in sorted(asks, key=lambda q: (q.price, q.owner))
               if q.price <= tariff.feedin_u_per_kwh and q.energy_wh > got[id(q)]]
    grid_sells = pro_rata_parts(from_grid, grid_import_wh)
    grid_buys = pro_rata_parts(to_grid, grid_export_wh)
    grid = Quote(GRID, GRID, 0, 0)
    pairs += [(q, grid, e) for q, e in grid_sells] + [(grid, q, e) for q, e in grid_buys]
    buy_fills: dict[str, int] = defaultdict(int)
    sell_fills: dict[str, int] = defaultdict(int)
    for bid, ask, energy in pairs:
        buy_fills[bid.owner] += energy
        sell_fills[ask.owner] += energy
    volume = sum(e for _, _, e in pairs)
    return Match(volume, dict(buy_fills), dict(sell_fills), pairs, rate if volume else None)


def pro_rata(quotes: list[Quote], total: int) -> list[tuple[Quote, int]]:
    return pro_rata_parts([(q, q.energy_wh) for q in sorted(quotes, key=lambda q: q.owner)], total)


def pro_rata_parts(parts: list[tuple[Quote, int]], total: int) -> list[tuple[Quote, int]]:
    """``total`` shared in proportion to the parts' sizes (all of them if it is enough)."""
    size = sum(e for _, e in parts)
    if size == 0 or total <= 0:
        return []
    shares = [e for _, e in parts] if size <= total else split_evenly(total, tuple(e for _, e in parts))
    return [(q, s) for (q, _), s in zip(parts, shares, strict=True) if s]
