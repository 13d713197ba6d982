"""One slot's market under each mechanism: hand-computed books, the known edge cases of
auction engines, properties over random books, and the uniform auction checked against
a brute-force search for the competitive equilibrium on small books."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import BIG_WH, SLOT, Book, books, order

from broker.community import Tariff
from broker.messages import GRID, Clearing, Trade, decode, encode
from broker.schema import check_bounds
from broker.units import money_u
from coordinator.clearing import (
    MECHANISMS,
    ClearingOutcome,
    clear_slot,
    to_award_messages,
    to_clearing_message,
)

TARIFF = Tariff(import_u_per_kwh=300_000, feedin_u_per_kwh=80_000)


def clear(book: Book, mechanism: str = "uniform") -> ClearingOutcome:
    return clear_slot(SLOT, book.orders, book.tariff, book.import_wh, book.export_wh, mechanism)


def run(*orders: object, mechanism: str = "uniform", import_wh: int = BIG_WH,
        export_wh: int = BIG_WH) -> ClearingOutcome:
    return clear_slot(SLOT, list(orders), TARIFF, import_wh, export_wh, mechanism)  # type: ignore[arg-type]


def filled(out: ClearingOutcome) -> dict[str, int]:
    return {f.device: f.filled_wh for f in out.fills}


def why(out: ClearingOutcome) -> dict[str, tuple[str, str]]:
    return {f.device: (f.status, f.reason) for f in out.fills}


def amounts(out: ClearingOutcome) -> dict[str, int]:
    return {f.device: f.amount_u for f in out.fills}


FOUR = (order("a", "buy", (300, 260_000)), order("b", "buy", (200, 220_000)),
        order("s", "sell", (250, 100_000)), order("t", "sell", (300, 200_000)))


# -- uniform price (pay-as-clear) --------------------------------------------------------


def test_two_buyers_and_two_sellers_meet_at_the_midpoint_of_the_marginal_pair() -> None:
    out = run(*FOUR)
    # a takes s's 250 and 50 of t; b takes 200 more of t. The last unit is b@220k vs t@200k.
    assert out.price_u_per_kwh == 210_000
    assert filled(out) == {"a": 300, "b": 200, "s": 250, "t": 250}
    assert out.trades == (Trade("a", "s", 250, 210_000), Trade("a", "t", 50, 210_000),
                          Trade("b", "t", 200, 210_000))
    assert (out.buy_wh, out.sell_wh, out.p2p_wh, out.grid_import_wh, out.grid_export_wh) == \
        (500, 550, 500, 0, 0)
    assert why(out)["t"] == ("partial", "partly filled: its price level shared pro rata")
    assert amounts(out) == {"a": 63_000, "b": 42_000, "s": -52_500, "t": -52_500}


def test_a_peer_is_never_paid_less_nor_charged_more_than_by_the_grid_with_room() -> None:
    # The last unit is b@90k vs s@0 (midpoint 45k), but the grid would still buy at 80k.
    out = run(order("b", "buy", (100, 90_000)), order("s", "sell", (100, 0)))
    assert (out.price_u_per_kwh, filled(out), out.grid_export_wh) == (80_000, {"b": 100, "s": 100}, 0)
    out = run(order("b", "buy", (100, 400_000)), order("s", "sell", (100, 290_000)))
    assert (out.price_u_per_kwh, out.grid_import_wh) == (300_000, 0)  # and would still sell at 300k


def test_a_tie_at_the_margin_is_shared_pro_rata_by_largest_remainder() -> None:
    out = run(order("a", "buy", (300, 250_000)), order("b", "buy", (100, 250_000)),
              order("s", "sell", (201, 100_000)))
    # 201 Wh over 300:100 is 150.75 and 50.25: the larger remainder takes the odd Wh.
    assert (out.price_u_per_kwh, filled(out)) == (175_000, {"a": 151, "b": 50, "s": 201})


def test_equal_remainders_go_to_the_lower_order_id_whatever_the_arrival_order() -> None:
    a, b = order("a", "buy", (100, 250_000)), order("b", "buy", (100, 250_000))
    s = order("s", "sell", (101, 100_000))
    first = run(a, b, s)
    assert filled(first) == {"a": 51, "b": 50, "s": 101}
    assert run(s, b, a) == first


def test_when_peers_do_not_cross_the_buyers_buy_from_the_grid_at_import() -> None:
    out = run(order("a", "buy", (400, 300_000)), order("b", "buy", (100, 350_000)),
              order("s", "sell", (200, 320_000)))
    assert out.price_u_per_kwh == TARIFF.import_u_per_kwh
    assert filled(out) == {"a": 400, "b": 100, "s": 0}
    assert out.trades == (Trade("b", GRID, 100, 300_000), Trade("a", GRID, 400, 300_000))
    assert why(out)["s"] == ("unfilled", "ask 320000 above clearing price 300000")


def test_when_peers_do_not_cross_the_sellers_sell_to_the_grid_at_feed_in() -> None:
    out = run(order("a", "buy", (400, 60_000)), order("s", "sell", (200, 80_000)),
              order("t", "sell", (300, 0)))
    assert out.price_u_per_kwh == TARIFF.feedin_u_per_kwh
    assert filled(out) == {"a": 0, "s": 200, "t": 300}
    assert why(out)["a"] == ("unfilled", "bid 60000 below clearing price 80000")
    assert amounts(out) == {"a": 0, "s": -16_000, "t": -24_000}


def test_the_feeder_import_limit_binds_and_the_grid_still_sells_at_its_price() -> None:
    out = run(order("a", "buy", (600, 350_000)), order("b", "buy", (400, 320_000)), import_wh=500)
    assert (out.price_u_per_kwh, out.grid_import_wh, filled(out)) == (300_000, 500, {"a": 500, "b": 0})
    assert why(out) == {"a": ("partial", "partly filled: feeder import limit reached"),
                        "b": ("unfilled", "feeder import limit reached")}


def test_past_the_feeder_import_limit_the_next_peer_ask_sets_a_scarcity_price() -> None:
    out = run(order("a", "buy", (600, 350_000)), order("b", "buy", (400, 320_000)),
              order("s", "sell", (300, 310_000)), import_wh=500)
    # The grid's 500 Wh go first, then s's 300; the last unit is b@320k vs s@310k.
    assert (out.price_u_per_kwh, out.grid_import_wh) == (315_000, 500)
    assert filled(out) == {"a": 600, "b": 200, "s": 300}


def test_the_feeder_export_limit_binds() -> None:
    out = run(order("s", "sell", (600, 50_000)), order("t", "sell", (400, 70_000)), export_wh=500)
    assert (out.price_u_per_kwh, out.grid_export_wh, filled(out)) == (80_000, 500, {"s": 500, "t": 0})
    # What the grid cannot take is held back: 1000 offered, 500 exported, the rest curtailed.
    assert why(out)["s"][1].startswith("partly filled: feeder export limit reached; curtail 100 Wh")
    assert why(out)["t"][1].startswith("feeder export limit reached; curtail 400 Wh")


def test_a_multi_step_order_fills_only_its_steps_at_or_beyond_the_price() -> None:
    out = run(order("a", "buy", (200, 250_000), (300, 150_000)), order("s", "sell", (400, 100_000)))
    # a's first step takes 200; its second, at 150k, takes the other 200 of s: the last
    # unit is a@150k vs s@100k.
    assert (out.price_u_per_kwh, filled(out)) == (125_000, {"a": 400, "s": 400})
    assert why(out)["a"] == ("partial", "partly filled: its price level shared pro rata")


# -- pay-as-bid and the mid-market rate ------------------------------------------------


def test_pay_as_bid_prices_each_trade_at_the_buyers_bid() -> None:
    out = run(*FOUR, mechanism="pay_as_bid")
    assert filled(out) == filled(run(*FOUR))  # the same matching as the uniform auction
    assert out.trades == (Trade("a", "s", 250, 260_000), Trade("a", "t", 50, 260_000),
                          Trade("b", "t", 200, 220_000))
    assert amounts(out) == {"a": 78_000, "b": 44_000, "s": -65_000, "t": -57_000}
    assert out.price_u_per_kwh == 244_000  # the volume-weighted mean
    awards = {a.device: a.price_u_per_kwh for a in to_award_messages(out, 0)}
    assert awards == {"a": 260_000, "b": 220_000, "s": 260_000, "t": 228_000}


def test_pay_as_bid_trades_with_the_grid_at_the_grids_prices() -> None:
    out = run(order("a", "buy", (400, 350_000)), order("s", "sell", (200, 0)), mechanism="pay_as_bid")
    assert out.trades == (Trade("a", "s", 200, 350_000), Trade("a", GRID, 200, 300_000))


def test_the_mid_market_rate_shares_peer_supply_and_leaves_the_rest_to_the_grid() -> None:
    out = run(order("a", "buy", (300, 260_000)), order("b", "buy", (200, 150_000)),
              order("c", "buy", (100, 320_000)), order("s", "sell", (250, 100_000)),
              order("t", "sell", (300, 200_000)), mechanism="mmr")
    # The rate is 190k: a and c (400 Wh) may buy from peers, s (250 Wh) may sell; the
    # 250 are shared 3:1; c also buys its rest from the grid (its bid covers the import
    # price), a does not.
    assert out.price_u_per_kwh == 190_000
    assert filled(out) == {"a": 188, "b": 0, "c": 100, "s": 250, "t": 0}
    assert Trade("c", GRID, 38, 300_000) in out.trades
    assert why(out)["b"] == ("unfilled", "bid 150000 below clearing price 190000")
    assert why(out)["t"] == ("unfilled", "ask 200000 above clearing price 190000")


# -- edge cases ------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_an_empty_book_clears_nothing(mechanism: str) -> None:
    out = run(mechanism=mechanism)
    assert (out.price_u_per_kwh, out.fills, out.trades) == (None, (), ())


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_buyers_only_buy_from_the_grid_and_sellers_only_sell_to_it(mechanism: str) -> None:
    buyers = run(order("a", "buy", (100, 310_000)), order("b", "buy", (100, 200_000)), mechanism=mechanism)
    assert filled(buyers) == {"a": 100, "b": 0} and buyers.grid_import_wh == 100
    sellers = run(order("s", "sell", (100, 70_000)), order("t", "sell", (100, 90_000)), mechanism=mechanism)
    assert filled(sellers) == {"s": 100, "t": 0} and sellers.grid_export_wh == 100


def test_all_prices_equal_share_at_that_price() -> None:
    out = run(order("a", "buy", (300, 200_000)), order("b", "buy", (100, 200_000)),
              order("s", "sell", (200, 200_000)))
    assert (out.price_u_per_kwh, filled(out)) == (200_000, {"a": 150, "b": 50, "s": 200})


def test_demand_above_supply_and_grid_capacity_is_rationed_with_reasons() -> None:
    out = run(order("a", "buy", (1000, 400_000)), order("s", "sell", (200, 100_000)), import_wh=300)
    assert filled(out) == {"a": 500, "s": 200} and out.grid_import_wh == 300
    assert why(out)["a"] == ("partial", "partly filled: feeder import limit reached")


def test_no_feeder_at_all_and_no_peers_leaves_orders_unfilled_with_the_reason() -> None:
    out = run(order("a", "buy", (100, 400_000)), import_wh=0, export_wh=0)
    assert why(out) == {"a": ("unfilled", "nothing cleared: no ask at or below its bid")}


# -- messages --------------------------------------------------------------------------


def test_the_clearing_and_award_messages_carry_the_outcome() -> None:
    out = run(*FOUR)
    message = to_clearing_message(out, "uniform", 42)
    assert decode(encode(message), Clearing) == message
    check_bounds(message)
    awards = to_award_messages(out, 42)
    assert [(a.device, a.status, a.energy_wh, a.amount_u) for a in awards] == [
        ("a", "filled", 300, 63_000), ("b", "filled", 200, 42_000),
        ("s", "filled", 250, -52_500), ("t", "partial", 250, -52_500)]


# -- properties over random books --------------------------------------------------------


def _orders_by_device(book: Book) -> dict[str, object]:
    return {o.device: o for o in book.orders}


@settings(max_examples=300, deadline=None)
@given(book=books(), mechanism=st.sampled_from(MECHANISMS))
def test_every_book_balances_and_keeps_its_limits(book: Book, mechanism: str) -> None:
    out = clear(book, mechanism)
    by_device = {o.device: o for o in book.orders}
    # Every order has exactly one fill, never more than it offered.
    assert sorted(f.device for f in out.fills) == sorted(by_device)
    for fill in out.fills:
        assert 0 <= fill.filled_wh <= by_device[fill.device].energy_wh
        assert fill.status == ("filled" if fill.filled_wh == fill.ordered_wh
                               else "partial" if fill.filled_wh else "unfilled")
        assert fill.status == "filled" or fill.reason
    # Energy: what is bought is what is sold, trades add up to fills, nobody trades with
    # themselves, the grid never with itself, and the feeder's limits hold.
    bought: dict[str, int] = defaultdict(int)
    sold: dict[str, int] = defaultdict(int)
    for trade in out.trades:
        assert trade.buyer != trade.seller and trade.energy_wh > 0
        bought[trade.buyer] += trade.energy_wh
        sold[trade.seller] += trade.energy_wh
    for fill in out.fills:
        assert (bought if fill.side == "buy" else sold).get(fill.device, 0) == fill.filled_wh
    assert out.grid_import_wh == sold.get(GRID, 0) <= book.import_wh
    assert out.grid_export_wh == bought.get(GRID, 0) <= book.export_wh
    assert out.p2p_wh == sum(t.energy_wh for t in out.trades if GRID not in (t.buyer, t.seller))
    # Prices: every trade lies within both parties' limits (the grid's are its prices).
    for trade in out.trades:
        if trade.buyer != GRID:
            assert trade.price_u_per_kwh <= max(s.price_u_per_kwh for s in by_device[trade.buyer].steps)
        if trade.seller != GRID:
            assert trade.price_u_per_kwh >= min(s.price_u_per_kwh for s in by_device[trade.seller].steps)
    # Money: each order pays what its trades are worth, so the market's budget balances
    # with the grid's account.
    for fill in out.fills:
        trades = [t for t in out.trades if fill.device in (t.buyer, t.seller)]
        worth = sum(money_u(t.energy_wh, t.price_u_per_kwh) for t in trades)
        assert fill.amount_u == (worth if fill.side == "buy" else -worth)
    grid_account = sum(money_u(t.energy_wh, t.price_u_per_kwh) * (1 if t.seller == GRID else -1)
                       for t in out.trades if GRID in (t.buyer, t.seller))
    assert sum(f.amount_u for f in out.fills) == grid_account
    # The grid never buys and sells in one slot.
    assert out.grid_import_wh == 0 or out.grid_export_wh == 0
    # Arrival order changes nothing.
    shuffled = list(book.orders)
    random.Random(len(shuffled)).shuffle(shuffled)
    assert clear_slot(SLOT, shuffled, book.tariff, book.import_wh, book.export_wh, mechanism) == out


@settings(max_examples=300, deadline=None)
@given(book=books(max_orders=5))
def test_the_uniform_auction_trades_the_most_any_price_could_clear(book: Book) -> None:
    """Cross-checked by brute force: the traded volume is the most any single price could
    clear, nobody trades beyond what it wants at the price, and while the grid has room
    the price lies between its two."""
    out = clear(book)
    tariff = book.tariff
    bids = [(s.price_u_per_kwh, s.energy_wh) for o in book.orders if o.side == "buy" for s in o.steps]
    asks = [(s.price_u_per_kwh, s.energy_wh) for o in book.orders if o.side == "sell" for s in o.steps]
    bids.append((tariff.feedin_u_per_kwh, book.export_wh))
    asks.append((tariff.import_u_per_kwh, book.import_wh))
    candidates = sorted({p for p, _ in bids + asks})

    def tradeable(price: int) -> int:
        return min(sum(e for p, e in bids if p >= price), sum(e for p, e in asks if p <= price))

    volume = sum(f.filled_wh for f in out.fills if f.side == "buy") + out.grid_export_wh
    if tariff.import_u_per_kwh > tariff.feedin_u_per_kwh:  # (equal prices: the grid would meet itself)
        assert volume == max((tradeable(p) for p in candidates), default=0)
    price = out.price_u_per_kwh
    if volume == 0 or price is None:
        return
    if out.grid_import_wh < book.import_wh and out.grid_export_wh < book.export_wh:
        assert tariff.feedin_u_per_kwh <= price <= tariff.import_u_per_kwh  # the grid has room
    by_device = {o.device: o for o in book.orders}
    for fill in out.fills:
        steps = by_device[fill.device].steps
        willing = sum(s.energy_wh for s in steps if (s.price_u_per_kwh >= price if fill.side == "buy"
                                                     else s.price_u_per_kwh <= price))
        assert fill.filled_wh <= willing


def test_a_surplus_beyond_the_feeder_export_limit_is_curtailed_pro_rata_with_the_reason() -> None:
    out = run(order("s", "sell", (600, 80_001)), order("t", "sell", (300, 80_001)),
              order("b", "buy", (100, 299_999)), export_wh=500)
    # 900 offered, 100 bid for: 800 would flow out, 300 more than the feeder takes. b buys
    # 100 of s and t pro rata; the 300 held back are shared over what stays unsold.
    curtailed = {f.device: f.curtail_wh for f in out.fills}
    assert curtailed == {"b": 0, "s": 200, "t": 100} and filled(out) == {"b": 100, "s": 67, "t": 33}
    assert why(out)["s"][1].endswith("curtail 200 Wh: offered surplus 800 Wh exceeds the feeder's "
                                      "export limit of 500 Wh, shared over unsold offers")
    assert {a.device: a.curtail_wh for a in to_award_messages(out, 0)} == curtailed
    assert run(order("s", "sell", (400, 80_001)), export_wh=500).fills[0].curtail_wh == 0


def test_an_order_left_out_past_the_margin_is_told_there_was_no_counterpart_at_its_limit() -> None:
    # s@90k takes b's 100 at 170k; t would sell at 100k too, but nobody is left to buy
    # (and the grid, with room, buys only at 80k).
    out = run(order("b", "buy", (100, 250_000)), order("s", "sell", (100, 90_000)),
              order("t", "sell", (100, 100_000)), import_wh=0)
    assert out.price_u_per_kwh == 170_000
    assert why(out)["t"] == ("unfilled", "no demand left at its limit")
    out = run(order("s", "sell", (100, 90_000)), order("a", "buy", (100, 250_000)),
              order("b", "buy", (100, 200_000)), import_wh=0)
    assert why(out)["b"] == ("unfilled", "no supply left at its limit")
