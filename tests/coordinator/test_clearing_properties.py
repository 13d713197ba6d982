"""The call auction and settlement, by hand-computed scenarios and by properties over
random order books: energy balances, nobody trades with themselves, prices lie between
the limits, the feeder's limits hold and arrival order changes nothing."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.community import Tariff
from broker.messages import GRID, Award, MeterReport, Order, Step
from broker.units import money_u
from coordinator.clearing import ClearingOutcome, clear_call_auction, to_award_messages
from coordinator.settlement import settle_member

TARIFF = Tariff(300_000, 80_000)
SLOT = 100
BIG = 10**7


def order(device: str, side: str, *steps: tuple[int, int]) -> Order:
    return Order(device, SLOT, 0, side, tuple(Step(e, p) for e, p in steps), 0)


def fills(outcome: ClearingOutcome) -> dict[str, int]:
    return {f.device: f.filled_wh for f in outcome.fills}


# -- scenarios -----------------------------------------------------------------------


def test_peers_meet_at_the_midpoint_of_the_marginal_bid_and_ask() -> None:
    out = clear_call_auction(SLOT, [order("a", "buy", (400, 250_000)), order("b", "sell", (300, 150_000))],
                             TARIFF, BIG, BIG)
    # a buys 300 from b; a's remaining 100 Wh bid (250k) is below the grid's 300k ask.
    assert out.price_u_per_kwh == 200_000
    assert fills(out) == {"a": 300, "b": 300}
    assert (out.p2p_wh, out.grid_import_wh, out.grid_export_wh) == (300, 0, 0)


def test_without_peers_the_grid_sells_at_import_and_buys_at_feed_in() -> None:
    buy = clear_call_auction(SLOT, [order("a", "buy", (500, 300_000))], TARIFF, BIG, BIG)
    assert (buy.price_u_per_kwh, buy.grid_import_wh, fills(buy)) == (300_000, 500, {"a": 500})
    sell = clear_call_auction(SLOT, [order("b", "sell", (500, 80_000))], TARIFF, BIG, BIG)
    assert (sell.price_u_per_kwh, sell.grid_export_wh, fills(sell)) == (80_000, 500, {"b": 500})


def test_the_feeder_import_limit_binds_and_the_margin_is_shared_pro_rata() -> None:
    orders = [order("a", "buy", (600, 300_000)), order("b", "buy", (300, 300_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, 600, BIG)
    assert out.grid_import_wh == 600
    assert fills(out) == {"a": 400, "b": 200}  # 600 Wh shared 2:1
    assert {f.device: f.status for f in out.fills} == {"a": "partial", "b": "partial"}


def test_the_feeder_export_limit_binds_and_names_the_reason() -> None:
    out = clear_call_auction(SLOT, [order("a", "sell", (900, 80_000))], TARIFF, BIG, 0)
    assert out.grid_export_wh == 0 and fills(out) == {"a": 0}
    assert out.fills[0].reason == "nothing cleared"
    out = clear_call_auction(SLOT, [order("a", "sell", (900, 80_000)), order("b", "sell", (100, 80_000))],
                             TARIFF, BIG, 500)
    assert out.grid_export_wh == 500 and fills(out) == {"a": 450, "b": 50}


def test_a_bid_below_every_ask_is_unfilled_with_the_reason() -> None:
    out = clear_call_auction(SLOT, [order("a", "buy", (500, 100_000)), order("b", "sell", (500, 200_000))],
                             TARIFF, BIG, BIG)
    # a bids under the grid's import price, b asks over its feed-in price: nothing meets.
    assert out.price_u_per_kwh is None
    assert [(f.device, f.status, f.reason) for f in out.fills] == [
        ("a", "unfilled", "nothing cleared"), ("b", "unfilled", "nothing cleared")]


def test_the_grid_at_the_margin_trades_at_its_own_tariff() -> None:
    # A zero ask meets the grid's feed-in bid: the grid pays feed-in, not the midpoint.
    sell = clear_call_auction(SLOT, [order("a", "sell", (100, 0))], TARIFF, BIG, BIG)
    assert (sell.price_u_per_kwh, sell.grid_export_wh) == (80_000, 100)
    buy = clear_call_auction(SLOT, [order("a", "buy", (100, 400_000))], TARIFF, BIG, BIG)
    assert (buy.price_u_per_kwh, buy.grid_import_wh) == (300_000, 100)
    # With the import limit binding, the next ask sets the price: scarcity is priced.
    book = [order("a", "buy", (1000, 500_000)), order("b", "sell", (900, 400_000))]
    scarce = clear_call_auction(SLOT, book, TARIFF, 100, BIG)
    assert (scarce.grid_import_wh, scarce.price_u_per_kwh) == (100, 450_000)


def test_settling_exactly_what_was_awarded_costs_exactly_the_trade() -> None:
    out = clear_call_auction(SLOT, [order("a", "buy", (400, 250_000)), order("b", "sell", (400, 150_000))],
                             TARIFF, BIG, BIG)
    awards = {a.device: a for a in to_award_messages(out, 0)}
    bill_a = settle_member("a", SLOT, awards["a"], report("a", 400), TARIFF)
    bill_b = settle_member("b", SLOT, awards["b"], report("b", -400), TARIFF)
    assert (bill_a.imbalance_u, bill_a.bill_u) == (0, 80_000)  # 0.4 kWh at 0.20
    assert (bill_b.imbalance_u, bill_b.bill_u) == (0, -80_000)
    assert bill_a.notrade_bill_u == 120_000 and bill_b.notrade_bill_u == -32_000


def test_deviations_settle_at_import_when_short_and_feed_in_when_long() -> None:
    award = Award("a", SLOT, "a:100:0", "buy", "filled", 400, 400, 200_000, 80_000, "", 0)
    short = settle_member("a", SLOT, award, report("a", 500), TARIFF)
    assert (short.deviation_wh, short.imbalance_u) == (100, 30_000)
    long = settle_member("a", SLOT, award, report("a", 300), TARIFF)
    assert (long.deviation_wh, long.imbalance_u) == (-100, -8_000)
    missing = settle_member("a", SLOT, award, None, TARIFF)
    assert missing.metered_wh is None and missing.bill_u == 80_000 and missing.reason == "no meter report"


def report(device: str, net_wh: int) -> MeterReport:
    return MeterReport(device, SLOT, max(net_wh, 0), max(-net_wh, 0), 0, 0, 0)


# -- properties ----------------------------------------------------------------------

prices = st.integers(min_value=0, max_value=400_000)
steps = st.lists(st.tuples(st.integers(1, 5_000), prices), min_size=1, max_size=3)
books = st.lists(st.tuples(st.sampled_from(("buy", "sell")), steps), min_size=0, max_size=8)
limits = st.integers(min_value=0, max_value=20_000)


def build(book: list[tuple[str, list[tuple[int, int]]]]) -> list[Order]:
    return [order(f"d{i}", side, *s) for i, (side, s) in enumerate(book)]


@settings(max_examples=300, deadline=None)
@given(books, limits, limits)
def test_energy_balances_and_every_trade_has_two_different_parties(
    book: list[tuple[str, list[tuple[int, int]]]], import_wh: int, export_wh: int
) -> None:
    orders = build(book)
    out = clear_call_auction(SLOT, orders, TARIFF, import_wh, export_wh)
    bought = sum(f.filled_wh for f in out.fills if f.side == "buy") + out.grid_export_wh
    sold = sum(f.filled_wh for f in out.fills if f.side == "sell") + out.grid_import_wh
    assert bought == sold
    assert out.grid_import_wh <= import_wh and out.grid_export_wh <= export_wh
    per_party: dict[str, int] = defaultdict(int)
    for trade in out.trades:
        assert trade.buyer != trade.seller and trade.energy_wh > 0
        per_party[trade.buyer] += trade.energy_wh
        per_party[trade.seller] -= trade.energy_wh
    for f in out.fills:
        assert 0 <= f.filled_wh <= f.ordered_wh
        assert per_party.get(f.device, 0) == (f.filled_wh if f.side == "buy" else -f.filled_wh)
    assert per_party.get(GRID, 0) == out.grid_export_wh - out.grid_import_wh
    assert out.p2p_wh == sum(t.energy_wh for t in out.trades if GRID not in (t.buyer, t.seller))


@settings(max_examples=300, deadline=None)
@given(books, limits, limits)
def test_filled_orders_trade_within_their_limits_and_pay_the_uniform_price(
    book: list[tuple[str, list[tuple[int, int]]]], import_wh: int, export_wh: int
) -> None:
    orders = {o.order_id: o for o in build(book)}
    out = clear_call_auction(SLOT, list(orders.values()), TARIFF, import_wh, export_wh)
    for f in out.fills:
        if f.filled_wh == 0:
            continue
        assert out.price_u_per_kwh is not None
        limits_of = [s.price_u_per_kwh for s in orders[f.order_id].steps]
        if f.side == "buy":
            assert max(limits_of) >= out.price_u_per_kwh
        else:
            assert min(limits_of) <= out.price_u_per_kwh
        expected = money_u(f.filled_wh, out.price_u_per_kwh)
        assert out.amount_u(f) == (expected if f.side == "buy" else -expected)
    # The grid trades at its own tariff unless its capacity ran out.
    if 0 < out.grid_import_wh < import_wh:
        assert out.price_u_per_kwh == TARIFF.import_u_per_kwh
    if 0 < out.grid_export_wh < export_wh:
        assert out.price_u_per_kwh == TARIFF.feedin_u_per_kwh


@settings(max_examples=200, deadline=None)
@given(books, limits, limits, st.randoms(use_true_random=False))
def test_arrival_order_changes_nothing(
    book: list[tuple[str, list[tuple[int, int]]]], import_wh: int, export_wh: int, rng: object
) -> None:
    orders = build(book)
    shuffled = list(orders)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert clear_call_auction(SLOT, shuffled, TARIFF, import_wh, export_wh) == \
        clear_call_auction(SLOT, orders, TARIFF, import_wh, export_wh)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5_000), st.integers(80_000, 300_000), st.integers(0, 10_000),
       st.sampled_from(("buy", "sell")))
def test_a_member_who_delivers_its_trade_never_pays_more_than_without_trading(
    energy_wh: int, price: int, extra_wh: int, side: str
) -> None:
    """Buying at most the import price and metering at least that much (or selling at
    least at feed-in and exporting at least that much) never costs more than the grid
    alone; rounding may cost one micro-unit per money amount."""
    amount = money_u(energy_wh, price)
    award = Award("a", SLOT, "a:100:0", side, "filled", energy_wh, energy_wh, price,
                  amount if side == "buy" else -amount, "", 0)
    net = energy_wh + extra_wh if side == "buy" else -(energy_wh + extra_wh)
    bill = settle_member("a", SLOT, award, report("a", net), TARIFF)
    assert bill.bill_u == bill.trade_u + bill.imbalance_u
    assert bill.deviation_wh == net - award.contracted_wh
    assert bill.bill_u <= bill.notrade_bill_u + 2
