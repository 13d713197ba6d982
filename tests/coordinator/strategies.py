"""Hypothesis strategies for the market's pure core: tariffs, order books and feeder limits.

Limit prices are drawn mostly from a few levels around the tariffs, so that ties between
members, and between members and the grid, come up often; the rest are arbitrary.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from broker.community import Tariff
from broker.messages import GRID, Award, MeterReport, Order, Step

SLOT = 100
BIG_WH = 10**7


def order(device: str, side: str, *steps: tuple[int, int], seq: int = 0) -> Order:
    """An order of ``(energy_wh, price_u_per_kwh)`` steps for :data:`SLOT`."""
    return Order(device, SLOT, seq, side, tuple(Step(e, p) for e, p in steps), 0)


def report(device: str, net_wh: int, slot: int = SLOT) -> MeterReport:
    """A meter report whose slot net (import - export) is ``net_wh``."""
    return MeterReport(device, slot, max(net_wh, 0), max(-net_wh, 0), 0, 0, 0)


def award(device: str, side: str, energy_wh: int, price: int, amount_u: int) -> Award:
    status = "filled" if energy_wh else "unfilled"
    return Award(device, SLOT, f"{device}:{SLOT}:0", side, status, energy_wh, energy_wh,
                 price, amount_u, "", 0)


def best_limit(o: Order) -> int:
    """The most a buy order pays, or the least a sell order accepts, for any of its steps."""
    limits = [s.price_u_per_kwh for s in o.steps]
    return max(limits) if o.side == "buy" else min(limits)


def limit_of(party: str, orders_by_device: dict[str, Order], tariff: Tariff, side: str) -> int:
    """A trade party's best limit on ``side``; the grid's are its tariffs."""
    if party == GRID:
        return tariff.feedin_u_per_kwh if side == "buy" else tariff.import_u_per_kwh
    return best_limit(orders_by_device[party])


@dataclass(frozen=True)
class Book:
    """One slot's market: the grid's prices and limits and the members' orders."""

    tariff: Tariff
    orders: tuple[Order, ...]
    import_wh: int
    export_wh: int


@st.composite
def tariffs(draw: st.DrawFn, whole_u_per_wh: bool = False) -> Tariff:
    """Feed-in never above import; now and then equal (net metering) or zero.

    With ``whole_u_per_wh`` both are multiples of 2000 u/kWh, so every price the auction
    can set (a tariff, or the midpoint of two such limits) is a whole number of
    micro-units per Wh and no amount needs rounding.
    """
    step = 2000 if whole_u_per_wh else 1
    feedin = draw(st.sampled_from((0, 80_000, 100_000)) | st.integers(0, 400_000 // step).map(
        lambda k: k * step))
    gap = draw(st.sampled_from((0, 220_000)) | st.integers(0, 200_000 // step).map(lambda k: k * step))
    return Tariff(import_u_per_kwh=feedin + gap, feedin_u_per_kwh=feedin)


def _prices(tariff: Tariff, whole_u_per_wh: bool) -> st.SearchStrategy[int]:
    lo, hi = tariff.feedin_u_per_kwh, tariff.import_u_per_kwh
    step = 2000 if whole_u_per_wh else 1
    levels = sorted({lo, hi, (lo + hi) // 2 // step * step, max(lo - 20_000, 0), hi + 20_000, 0})
    anywhere = st.integers(0, (hi + 100_000) // step).map(lambda k: k * step)
    return st.sampled_from(levels) | anywhere


energies = st.sampled_from((1, 2, 3, 100, 300)) | st.integers(1, 3_000)
feeder_limits = st.sampled_from((0, 1, 500, BIG_WH)) | st.integers(0, 6_000)


@st.composite
def books(draw: st.DrawFn, max_orders: int = 8, whole_u_per_wh: bool = False) -> Book:
    """A random order book: each device has at most one order (the intake's rule)."""
    tariff = draw(tariffs(whole_u_per_wh))
    prices = _prices(tariff, whole_u_per_wh)
    steps = st.lists(st.tuples(energies, prices), min_size=1, max_size=3)
    sides = draw(st.lists(st.sampled_from(("buy", "sell")), max_size=max_orders))
    orders = tuple(order(f"d{i}", side, *draw(steps), seq=draw(st.integers(0, 3)))
                   for i, side in enumerate(sides))
    return Book(tariff, orders, draw(feeder_limits), draw(feeder_limits))
