"""The uniform-price call auction: hand-computed scenarios, then properties over random
order books (energy balances, nobody trades with themselves, prices lie between the
limits, the feeder's limits hold, arrival order changes nothing, money adds up)."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import BIG_WH, SLOT, Book, best_limit, books, limit_of, order

from broker.community import Tariff
from broker.messages import GRID, Award, Clearing, Trade, decode, encode
from broker.units import money_u
from coordinator.clearing import ClearingOutcome, clear_call_auction, to_award_messages, to_clearing_message

TARIFF = Tariff(import_u_per_kwh=300_000, feedin_u_per_kwh=80_000)


def clear(book: Book) -> ClearingOutcome:
    return clear_call_auction(SLOT, book.orders, book.tariff, book.import_wh, book.export_wh)


def filled(out: ClearingOutcome) -> dict[str, int]:
    return {f.device: f.filled_wh for f in out.fills}


def statuses(out: ClearingOutcome) -> dict[str, tuple[str, str]]:
    return {f.device: (f.status, f.reason) for f in out.fills}


# -- scenarios -----------------------------------------------------------------------


def test_two_buyers_and_two_sellers_meet_at_the_midpoint_of_the_marginal_pair() -> None:
    orders = [order("a", "buy", (300, 260_000)), order("b", "buy", (200, 220_000)),
              order("s", "sell", (250, 100_000)), order("t", "sell", (300, 200_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, BIG_WH)
    # a takes s's 250 and 50 of t; b takes 200 more of t. The last unit is b@220k vs t@200k.
    assert out.price_u_per_kwh == 210_000
    assert filled(out) == {"a": 300, "b": 200, "s": 250, "t": 250}
    assert out.trades == (Trade("a", "s", 250), Trade("a", "t", 50), Trade("b", "t", 200))
    assert (out.buy_wh, out.sell_wh, out.p2p_wh, out.grid_import_wh, out.grid_export_wh) == \
        (500, 550, 500, 0, 0)
    assert statuses(out)["t"] == ("partial", "partly filled: marginal price level shared pro rata")
    assert {f.device: out.amount_u(f) for f in out.fills} == \
        {"a": 63_000, "b": 42_000, "s": -52_500, "t": -52_500}


def test_a_tie_at_the_margin_is_shared_pro_rata_by_largest_remainder() -> None:
    orders = [order("a", "buy", (300, 250_000)), order("b", "buy", (100, 250_000)),
              order("s", "sell", (201, 100_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, BIG_WH)
    # 201 Wh over 300:100 is 150.75 and 50.25; the larger remainder takes the odd Wh.
    assert out.price_u_per_kwh == 175_000
    assert filled(out) == {"a": 151, "b": 50, "s": 201}
    assert out.trades == (Trade("a", "s", 151), Trade("b", "s", 50))


def test_equal_remainders_go_to_the_lower_order_id_whatever_the_arrival_order() -> None:
    a, b = order("a", "buy", (100, 250_000)), order("b", "buy", (100, 250_000))
    s = order("s", "sell", (101, 100_000))
    first = clear_call_auction(SLOT, [a, b, s], TARIFF, BIG_WH, BIG_WH)
    assert filled(first) == {"a": 51, "b": 50, "s": 101}
    assert clear_call_auction(SLOT, [s, b, a], TARIFF, BIG_WH, BIG_WH) == first


def test_when_peers_do_not_cross_the_buyers_buy_from_the_grid_at_import() -> None:
    orders = [order("a", "buy", (400, 300_000)), order("b", "buy", (100, 350_000)),
              order("s", "sell", (200, 320_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, BIG_WH)
    assert out.price_u_per_kwh == TARIFF.import_u_per_kwh
    assert filled(out) == {"a": 400, "b": 100, "s": 0}
    assert out.trades == (Trade("a", GRID, 400), Trade("b", GRID, 100))
    assert (out.p2p_wh, out.grid_import_wh, out.grid_export_wh) == (0, 500, 0)
    assert statuses(out)["s"] == ("unfilled", "ask 320000 above clearing price 300000")


def test_when_peers_do_not_cross_the_sellers_sell_to_the_grid_at_feed_in() -> None:
    orders = [order("a", "buy", (400, 60_000)), order("s", "sell", (200, 80_000)),
              order("t", "sell", (300, 0))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, BIG_WH)
    assert out.price_u_per_kwh == TARIFF.feedin_u_per_kwh
    assert filled(out) == {"a": 0, "s": 200, "t": 300}
    assert out.trades == (Trade(GRID, "s", 200), Trade(GRID, "t", 300))
    assert (out.p2p_wh, out.grid_import_wh, out.grid_export_wh) == (0, 0, 500)
    assert statuses(out)["a"] == ("unfilled", "bid 60000 below clearing price 80000")
    assert [out.amount_u(f) for f in out.fills] == [0, -16_000, -24_000]


def test_the_feeder_import_limit_binds() -> None:
    orders = [order("a", "buy", (600, 350_000)), order("b", "buy", (400, 320_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, 500, BIG_WH)
    assert (out.price_u_per_kwh, out.grid_import_wh) == (300_000, 500)
    assert filled(out) == {"a": 500, "b": 0}
    assert statuses(out)["b"] == ("unfilled", "feeder import limit reached")


def test_past_the_feeder_import_limit_the_next_peer_ask_sets_a_scarcity_price() -> None:
    orders = [order("a", "buy", (600, 350_000)), order("b", "buy", (400, 320_000)),
              order("s", "sell", (300, 310_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, 500, BIG_WH)
    # The grid's 500 Wh go first, then s's 300; the last unit is b@320k vs s@310k.
    assert (out.price_u_per_kwh, out.grid_import_wh) == (315_000, 500)
    assert filled(out) == {"a": 600, "b": 200, "s": 300}
    assert out.trades == (Trade("a", GRID, 500), Trade("a", "s", 100), Trade("b", "s", 200))


def test_the_feeder_export_limit_binds() -> None:
    orders = [order("s", "sell", (600, 50_000)), order("t", "sell", (400, 70_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, 500)
    assert (out.price_u_per_kwh, out.grid_export_wh) == (80_000, 500)
    assert filled(out) == {"s": 500, "t": 0}
    assert statuses(out)["s"][0] == "partial"
    assert statuses(out)["t"] == ("unfilled", "feeder export limit reached")


def test_past_the_feeder_export_limit_a_bid_below_feed_in_sets_the_price() -> None:
    orders = [order("b", "buy", (300, 60_000)), order("s", "sell", (600, 50_000)),
              order("t", "sell", (400, 70_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, 500)
    # The grid takes 500 Wh of s; b takes the last 100 Wh; the last unit is b@60k vs s@50k.
    assert (out.price_u_per_kwh, out.grid_export_wh) == (55_000, 500)
    assert filled(out) == {"b": 100, "s": 600, "t": 0}
    assert out.trades == (Trade("b", "s", 100), Trade(GRID, "s", 500))


def test_a_peer_trade_never_pays_a_seller_less_than_the_grid_would() -> None:
    # The last unit is b@90k vs s@0 (midpoint 45k), but the grid still buys at 80k.
    out = clear_call_auction(SLOT, [order("b", "buy", (100, 90_000)), order("s", "sell", (100, 0))],
                             TARIFF, BIG_WH, BIG_WH)
    assert (out.price_u_per_kwh, filled(out), out.grid_export_wh) == (80_000, {"b": 100, "s": 100}, 0)
    # The same on the other side: the grid still sells at 300k.
    out = clear_call_auction(SLOT, [order("b", "buy", (100, 400_000)), order("s", "sell", (100, 290_000))],
                             TARIFF, BIG_WH, BIG_WH)
    assert (out.price_u_per_kwh, filled(out), out.grid_import_wh) == (300_000, {"b": 100, "s": 100}, 0)


def test_a_bid_tied_with_the_grid_at_feed_in_shares_with_the_grid_at_feed_in() -> None:
    orders = [order("b", "buy", (100, 80_000)), order("s", "sell", (30, 0))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, 200)
    # b (100 Wh) and the grid (200 Wh) bid the same: s's 30 Wh are shared 1:2, at feed-in.
    assert out.price_u_per_kwh == 80_000
    assert (filled(out), out.grid_export_wh) == ({"b": 10, "s": 30}, 20)


def test_with_net_metering_the_grid_only_takes_what_members_leave() -> None:
    flat = Tariff(import_u_per_kwh=200_000, feedin_u_per_kwh=200_000)
    orders = [order("b", "buy", (150, 200_000)), order("s", "sell", (100, 200_000))]
    out = clear_call_auction(SLOT, orders, flat, BIG_WH, BIG_WH)
    assert out.price_u_per_kwh == 200_000
    assert filled(out) == {"b": 150, "s": 100}
    assert (out.grid_import_wh, out.grid_export_wh) == (50, 0)
    assert out.trades == (Trade("b", GRID, 50), Trade("b", "s", 100))


def test_a_multi_step_order_fills_only_its_steps_at_or_beyond_the_price() -> None:
    orders = [order("a", "buy", (200, 350_000), (300, 100_000)), order("s", "sell", (1000, 150_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, BIG_WH)
    # Neither a's cheap step (100k) nor the grid's feed-in bid (80k) meets s's 150k ask:
    # only a's first step trades, at the midpoint of 350k and 150k.
    assert (out.price_u_per_kwh, filled(out)) == (250_000, {"a": 200, "s": 200})


def test_a_member_with_a_buy_and_a_sell_in_one_slot_is_refused() -> None:
    orders = [order("a", "buy", (100, 300_000)), order("a", "sell", (100, 0), seq=1)]
    with pytest.raises(ValueError, match="one order per device and slot"):
        clear_call_auction(SLOT, orders, TARIFF, BIG_WH, BIG_WH)


def test_an_empty_book_clears_nothing() -> None:
    out = clear_call_auction(SLOT, [], TARIFF, BIG_WH, BIG_WH)
    assert out == ClearingOutcome(SLOT, None, 0, 0, 0, 0, 0, (), ())


def test_the_clearing_and_award_messages_carry_the_outcome() -> None:
    orders = [order("a", "buy", (300, 320_000)), order("s", "sell", (100, 100_000)),
              order("z", "sell", (50, 400_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, BIG_WH)
    clearing = to_clearing_message(out, "uniform", 1234)
    assert clearing == Clearing(SLOT, "uniform", 300_000, 300, 150, 100, 200, 0, 3,
                                (Trade("a", GRID, 200), Trade("a", "s", 100)), 1234)
    assert to_award_messages(out, 1234) == (
        Award("a", SLOT, "a:100:0", "buy", "filled", 300, 300, 300_000, 90_000, "", 1234),
        Award("s", SLOT, "s:100:0", "sell", "filled", 100, 100, 300_000, -30_000, "", 1234),
        Award("z", SLOT, "z:100:0", "sell", "unfilled", 50, 0, 300_000, 0,
              "ask 400000 above clearing price 300000", 1234),
    )


# -- properties ----------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(books())
def test_energy_balances_and_nobody_trades_with_themselves(book: Book) -> None:
    out = clear(book)
    bought = sum(f.filled_wh for f in out.fills if f.side == "buy") + out.grid_export_wh
    sold = sum(f.filled_wh for f in out.fills if f.side == "sell") + out.grid_import_wh
    assert bought == sold
    net: dict[str, int] = defaultdict(int)
    for trade in out.trades:
        assert trade.buyer != trade.seller and trade.energy_wh > 0
        net[trade.buyer] += trade.energy_wh
        net[trade.seller] -= trade.energy_wh
    assert sum(net.values()) == 0
    for f in out.fills:
        assert net.get(f.device, 0) == (f.filled_wh if f.side == "buy" else -f.filled_wh)
    assert net.get(GRID, 0) == out.grid_export_wh - out.grid_import_wh
    assert out.p2p_wh == sum(t.energy_wh for t in out.trades if GRID not in (t.buyer, t.seller))
    assert len({(t.buyer, t.seller) for t in out.trades}) == len(out.trades)


@settings(max_examples=400, deadline=None)
@given(books())
def test_nobody_gets_more_than_it_asked_at_the_price(book: Book) -> None:
    out = clear(book)
    by_id = {o.order_id: o for o in book.orders}
    assert [f.order_id for f in out.fills] == sorted(by_id)
    for f in out.fills:
        o = by_id[f.order_id]
        assert (f.device, f.side, f.ordered_wh) == (o.device, o.side, o.energy_wh)
        price = out.price_u_per_kwh
        acceptable = 0 if price is None else sum(
            s.energy_wh for s in o.steps
            if (s.price_u_per_kwh >= price if o.side == "buy" else s.price_u_per_kwh <= price))
        assert 0 <= f.filled_wh <= acceptable
        assert f.status == ("filled" if f.filled_wh == f.ordered_wh else
                            "partial" if f.filled_wh else "unfilled")
        assert (f.reason == "") == (f.status == "filled")


@settings(max_examples=400, deadline=None)
@given(books())
def test_prices_lie_between_the_limits_and_the_tariffs_unless_a_feeder_limit_binds(book: Book) -> None:
    out = clear(book)
    price, tariff = out.price_u_per_kwh, book.tariff
    if price is None:
        assert out.trades == () and all(f.filled_wh == 0 for f in out.fills)
        return
    by_device = {o.device: o for o in book.orders}
    for t in out.trades:
        assert limit_of(t.buyer, by_device, tariff, "buy") >= price >= limit_of(t.seller, by_device, tariff, "sell")
    if price < tariff.feedin_u_per_kwh:
        assert out.grid_export_wh == book.export_wh
    if price > tariff.import_u_per_kwh:
        assert out.grid_import_wh == book.import_wh
    # The grid trades at its own price, or it has run out of room.
    if out.grid_import_wh:
        assert price == tariff.import_u_per_kwh or out.grid_import_wh == book.import_wh
    if out.grid_export_wh:
        assert price == tariff.feedin_u_per_kwh or out.grid_export_wh == book.export_wh


@settings(max_examples=400, deadline=None)
@given(books())
def test_the_feeder_limits_hold_and_the_grid_never_trades_both_ways(book: Book) -> None:
    out = clear(book)
    assert 0 <= out.grid_import_wh <= book.import_wh
    assert 0 <= out.grid_export_wh <= book.export_wh
    assert out.grid_import_wh == 0 or out.grid_export_wh == 0
    # An order is only told that a feeder limit stopped it when that limit was reached.
    for f in out.fills:
        if "import limit" in f.reason:
            assert out.grid_import_wh == book.import_wh
        if "export limit" in f.reason:
            assert out.grid_export_wh == book.export_wh


@settings(max_examples=300, deadline=None)
@given(books())
def test_unfilled_orders_are_told_why(book: Book) -> None:
    out = clear(book)
    by_id = {o.order_id: o for o in book.orders}
    price = out.price_u_per_kwh
    for f in out.fills:
        if f.status != "unfilled":
            continue
        limit = best_limit(by_id[f.order_id])
        if price is None:
            assert f.reason == "nothing cleared"
        elif f.side == "buy" and limit < price:
            assert f.reason == f"bid {limit} below clearing price {price}"
        elif f.side == "sell" and limit > price:
            assert f.reason == f"ask {limit} above clearing price {price}"
        else:
            assert "clearing price" not in f.reason


@settings(max_examples=200, deadline=None)
@given(books(), st.randoms(use_true_random=False))
def test_arrival_order_changes_nothing(book: Book, rng: random.Random) -> None:
    shuffled = list(book.orders)
    rng.shuffle(shuffled)
    assert clear_call_auction(SLOT, shuffled, book.tariff, book.import_wh, book.export_wh) == clear(book)


@settings(max_examples=300, deadline=None)
@given(books())
def test_trade_value_is_conserved_exactly_and_each_amount_is_rounded_once(book: Book) -> None:
    out = clear(book)
    price = out.price_u_per_kwh or 0
    # Exact value in u*Wh/kWh (no rounding yet): what buyers pay is what sellers receive.
    paid = sum(f.filled_wh * price for f in out.fills if f.side == "buy") + out.grid_export_wh * price
    received = sum(f.filled_wh * price for f in out.fills if f.side == "sell") + out.grid_import_wh * price
    assert paid == received
    # Each award is that value rounded once, half away from zero, to micro-units.
    for f in out.fills:
        signed = f.filled_wh * price if f.side == "buy" else -f.filled_wh * price
        assert out.amount_u(f) == money_u(f.filled_wh if f.side == "buy" else -f.filled_wh, price)
        assert 2 * abs(1000 * out.amount_u(f) - signed) <= 1000


@settings(max_examples=300, deadline=None)
@given(books(whole_u_per_wh=True))
def test_at_whole_micro_units_per_wh_money_balances_to_the_micro_unit(book: Book) -> None:
    out = clear(book)
    price = out.price_u_per_kwh
    assert price is None or price % 1000 == 0
    members_u = sum(out.amount_u(f) for f in out.fills)
    grid_u = money_u(out.grid_export_wh, price or 0) - money_u(out.grid_import_wh, price or 0)
    assert members_u + grid_u == 0


@settings(max_examples=150, deadline=None)
@given(books())
def test_published_messages_pass_their_own_schema(book: Book) -> None:
    out = clear(book)
    clearing = to_clearing_message(out, "uniform", 5)
    assert decode(encode(clearing), Clearing) == clearing
    assert (clearing.orders, clearing.trades) == (len(book.orders), out.trades)
    awards = to_award_messages(out, 5)
    assert [a.order_id for a in awards] == [f.order_id for f in out.fills]
    for a, f in zip(awards, out.fills, strict=True):
        assert decode(encode(a), Award) == a
        assert (a.energy_wh, a.amount_u, a.price_u_per_kwh) == (f.filled_wh, out.amount_u(f), out.price_u_per_kwh)
