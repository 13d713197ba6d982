"""Settlement: metered energy against awards, deviations at the grid's prices. Scenarios
with hand-computed bills, then properties: a bill is its trade plus its imbalance, every
extra Wh costs between feed-in and import, the slot is the sum of its members, and the
community's money adds up to what the grid is owed."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import BIG_WH, SLOT, Book, award, books, order, report, tariffs

from broker.community import Fees, PowerLimits, Rules, Tariff
from broker.messages import Award, MeterReport, Settlement
from broker.units import money_u
from coordinator.clearing import clear_call_auction, to_award_messages
from coordinator.settlement import SlotSettlement, Terms, settle_member, settle_slot
from coordinator.standing import Standing

TARIFF = Tariff(import_u_per_kwh=300_000, feedin_u_per_kwh=80_000)
BUY_400 = award("a", "buy", 400, 200_000, 80_000)
SELL_400 = award("s", "sell", 400, 200_000, -80_000)


def cleared_awards(book: Book) -> dict[str, Award]:
    out = clear_call_auction(SLOT, book.orders, book.tariff, book.import_wh, book.export_wh)
    return {a.device: a for a in to_award_messages(out, 0)}


# -- scenarios -----------------------------------------------------------------------


def test_metering_exactly_the_award_costs_exactly_the_trade() -> None:
    buyer = settle_member("a", SLOT, BUY_400, report("a", 400), TARIFF, t_s=7)
    assert buyer == Settlement("a", SLOT, 400, 400, 0, 80_000, 0, 80_000, 120_000, "", 7)
    seller = settle_member("s", SLOT, SELL_400, report("s", -400), TARIFF, t_s=7)
    assert seller == Settlement("s", SLOT, -400, -400, 0, -80_000, 0, -80_000, -32_000, "", 7)


def test_a_buyer_short_pays_import_and_a_buyer_long_is_credited_feed_in() -> None:
    took_more = settle_member("a", SLOT, BUY_400, report("a", 500), TARIFF)
    assert (took_more.deviation_wh, took_more.imbalance_u, took_more.bill_u) == (100, 30_000, 110_000)
    took_less = settle_member("a", SLOT, BUY_400, report("a", 300), TARIFF)
    assert (took_less.deviation_wh, took_less.imbalance_u, took_less.bill_u) == (-100, -8_000, 72_000)
    # Exporting instead: 400 Wh bought and not used, 50 Wh more sent out, all at feed-in.
    exported = settle_member("a", SLOT, BUY_400, report("a", -50), TARIFF)
    assert (exported.deviation_wh, exported.imbalance_u, exported.bill_u) == (-450, -36_000, 44_000)


def test_a_seller_who_delivers_less_buys_the_gap_at_import() -> None:
    short = settle_member("s", SLOT, SELL_400, report("s", -300), TARIFF)
    assert (short.deviation_wh, short.imbalance_u, short.bill_u) == (100, 30_000, -50_000)
    long = settle_member("s", SLOT, SELL_400, report("s", -500), TARIFF)
    assert (long.deviation_wh, long.imbalance_u, long.bill_u) == (-100, -8_000, -88_000)
    imported = settle_member("s", SLOT, SELL_400, report("s", 100), TARIFF)
    assert (imported.deviation_wh, imported.imbalance_u, imported.bill_u) == (500, 150_000, 70_000)


def test_without_an_award_a_member_pays_what_it_would_without_trading() -> None:
    for unfilled in (None, award("a", "buy", 0, 200_000, 0)):
        bill = settle_member("a", SLOT, unfilled, report("a", 250), TARIFF)
        assert (bill.contracted_wh, bill.deviation_wh, bill.trade_u) == (0, 250, 0)
        assert bill.bill_u == bill.notrade_bill_u == 75_000


def test_without_a_meter_report_the_trade_stands_and_the_reason_says_why() -> None:
    bill = settle_member("a", SLOT, BUY_400, None, TARIFF, t_s=9)
    assert bill == Settlement("a", SLOT, 400, None, 0, 80_000, 0, 80_000, 0, "no meter report", 9)


def test_deviations_round_half_away_from_zero_once_each() -> None:
    odd = Tariff(import_u_per_kwh=300_500, feedin_u_per_kwh=80_500)
    assert settle_member("a", SLOT, None, report("a", 1), odd).imbalance_u == 301  # 300.5
    assert settle_member("a", SLOT, None, report("a", -1), odd).imbalance_u == -81  # -80.5


def test_a_slot_settles_every_member_in_order_and_adds_up() -> None:
    awards = {"a": BUY_400, "s": SELL_400}
    reports = {"a": report("a", 500), "s": report("s", -400), "c": report("c", 200)}
    slot = settle_slot(SLOT, ["s", "c", "a", "b"], awards, reports, TARIFF, t_s=3)
    assert [s.device for s in slot.settlements] == ["a", "b", "c", "s"]
    assert [s.bill_u for s in slot.settlements] == [110_000, 0, 60_000, -80_000]
    assert (slot.bill_u, slot.notrade_bill_u, slot.savings_u) == (90_000, 178_000, 88_000)
    assert slot.missing_reports == ("b",)
    assert all(s.t_s == 3 and s.slot == SLOT for s in slot.settlements)


def test_a_cleared_slot_metered_as_awarded_bills_the_community_what_the_grid_is_owed() -> None:
    orders = [order("a", "buy", (600, 320_000)), order("b", "buy", (300, 200_000)),
              order("s", "sell", (500, 100_000))]
    out = clear_call_auction(SLOT, orders, TARIFF, BIG_WH, BIG_WH)
    # a takes s's 500 and 100 from the grid at 300k; b's 200k bid is below that.
    assert (out.price_u_per_kwh, out.grid_import_wh, out.p2p_wh) == (300_000, 100, 500)
    awards = {a.device: a for a in to_award_messages(out, 0)}
    reports = {d: report(d, a.contracted_wh) for d, a in awards.items()}
    slot = settle_slot(SLOT, list(awards), awards, reports, TARIFF)
    assert [s.bill_u for s in slot.settlements] == [180_000, 0, -150_000]
    assert slot.bill_u == money_u(out.grid_import_wh, 300_000) == 30_000


# -- properties ----------------------------------------------------------------------

nets = st.integers(-20_000, 20_000)
sides = st.sampled_from(("buy", "sell"))


@st.composite
def awards(draw: st.DrawFn) -> Award:
    energy, price, side = draw(st.integers(0, 20_000)), draw(st.integers(0, 500_000)), draw(sides)
    amount = money_u(energy, price)
    return award("a", side, energy, price, amount if side == "buy" else -amount)


def grid_u(deviation_wh: int, tariff: Tariff) -> int:
    return money_u(deviation_wh, tariff.import_u_per_kwh if deviation_wh > 0 else tariff.feedin_u_per_kwh)


@settings(max_examples=200, deadline=None)
@given(st.none() | awards(), nets, tariffs())
def test_a_bill_is_its_trade_plus_its_deviation_at_the_grid_price(
    won: Award | None, net_wh: int, tariff: Tariff
) -> None:
    bill = settle_member("a", SLOT, won, report("a", net_wh), tariff)
    contracted = won.contracted_wh if won else 0
    assert (bill.contracted_wh, bill.metered_wh) == (contracted, net_wh)
    assert bill.deviation_wh == net_wh - contracted
    assert bill.trade_u == (won.amount_u if won else 0)
    assert bill.imbalance_u == grid_u(bill.deviation_wh, tariff)
    assert bill.bill_u == bill.trade_u + bill.imbalance_u
    assert bill.notrade_bill_u == grid_u(net_wh, tariff)
    assert bill.reason == ""
    exact = settle_member("a", SLOT, won, report("a", contracted), tariff)
    assert (exact.deviation_wh, exact.imbalance_u, exact.bill_u) == (0, 0, exact.trade_u)


@settings(max_examples=200, deadline=None)
@given(st.none() | awards(), nets, tariffs(), st.integers(0, 5_000))
def test_only_the_net_counts_and_each_extra_wh_costs_between_feed_in_and_import(
    won: Award | None, net_wh: int, tariff: Tariff, both_ways_wh: int
) -> None:
    bill = settle_member("a", SLOT, won, report("a", net_wh), tariff)
    gross = MeterReport("a", SLOT, max(net_wh, 0) + both_ways_wh, max(-net_wh, 0) + both_ways_wh, 0, 0, 0)
    assert settle_member("a", SLOT, won, gross, tariff) == bill
    more = settle_member("a", SLOT, won, report("a", net_wh + 1), tariff)
    cheapest, dearest = tariff.feedin_u_per_kwh // 1000, -(-tariff.import_u_per_kwh // 1000)
    assert cheapest <= more.bill_u - bill.bill_u <= dearest
    assert cheapest <= more.notrade_bill_u - bill.notrade_bill_u <= dearest


@settings(max_examples=200, deadline=None)
@given(st.none() | awards(), nets, nets, tariffs())
def test_deviations_are_linear_to_within_one_rounding(
    won: Award | None, net_wh: int, extra_wh: int, tariff: Tariff
) -> None:
    bill = settle_member("a", SLOT, won, report("a", net_wh), tariff)
    price = tariff.import_u_per_kwh if bill.deviation_wh > 0 else tariff.feedin_u_per_kwh
    # In u*Wh/kWh the imbalance is exactly deviation times price, rounded once.
    assert 2 * abs(1000 * bill.imbalance_u - bill.deviation_wh * price) <= 1000
    same_side = settle_member("a", SLOT, won, report("a", net_wh + extra_wh), tariff)
    if price % 1000 == 0 and (same_side.deviation_wh > 0) == (bill.deviation_wh > 0):
        assert same_side.imbalance_u - bill.imbalance_u == extra_wh * price // 1000


@settings(max_examples=100, deadline=None)
@given(books(), st.data())
def test_a_slot_is_the_sum_of_its_members(book: Book, data: st.DataObject) -> None:
    won = cleared_awards(book)
    members = [*sorted(won), "late", "idle"]
    reports = {d: report(d, data.draw(nets)) for d in members if data.draw(st.booleans())}
    slot = settle_slot(SLOT, list(reversed(members)), won, reports, book.tariff)
    assert slot == SlotSettlement(SLOT, tuple(
        settle_member(d, SLOT, won.get(d), reports.get(d), book.tariff) for d in sorted(members)))
    assert slot.bill_u == sum(s.trade_u + s.imbalance_u for s in slot.settlements)
    assert slot.notrade_bill_u == sum(grid_u(r.net_wh, book.tariff) for r in reports.values())
    assert slot.savings_u == slot.notrade_bill_u - slot.bill_u
    assert slot.missing_reports == tuple(d for d in sorted(members) if d not in reports)


@settings(max_examples=100, deadline=None)
@given(books(whole_u_per_wh=True), st.data())
def test_money_is_conserved_the_community_pays_exactly_what_the_grid_is_owed(
    book: Book, data: st.DataObject
) -> None:
    out = clear_call_auction(SLOT, book.orders, book.tariff, book.import_wh, book.export_wh)
    won = {a.device: a for a in to_award_messages(out, 0)}
    reports = {d: report(d, a.contracted_wh + data.draw(st.integers(-500, 500))) for d, a in won.items()}
    slot = settle_slot(SLOT, list(won), won, reports, book.tariff)
    price = out.price_u_per_kwh or 0
    # P2P money cancels: buyers pay exactly what sellers receive, so what is left over is
    # the grid's side of the trades plus every deviation at the grid's prices.
    owed_to_grid = money_u(out.grid_import_wh, price) - money_u(out.grid_export_wh, price)
    assert sum(s.trade_u for s in slot.settlements) == owed_to_grid
    assert slot.bill_u == owed_to_grid + sum(s.imbalance_u for s in slot.settlements)


# -- fees and the community's rules ----------------------------------------------------

LIMITS = PowerLimits(import_limit_w=10_000, export_limit_w=4_000)  # 2500 and 1000 Wh a slot
TERMS = Terms(Fees(p2p_fee_u_per_kwh=20_000, loss_pct=2),
              Rules(limit_penalty_u_per_kwh=100_000, grid_use_penalty_u_per_kwh=50_000,
                    self_consumption_bonus_u_per_kwh=20_000), LIMITS, 900)


def test_a_buyer_pays_the_network_charge_and_the_losses_on_what_it_bought_from_peers() -> None:
    award = dataclasses.replace(BUY_400, p2p_wh=300)  # 100 Wh of it came from the grid
    bill = settle_member("a", SLOT, award, report("a", 400), TARIFF, terms=TERMS)
    # 300 Wh at 20,000 u/kWh is 6,000; 2 % of 300 Wh is 6 Wh at 300,000 u/kWh: 1,800.
    assert (bill.fees_u, bill.rules_u, bill.bill_u) == (7_800, 0, 80_000 + 7_800)
    assert bill.reason == "network charge on 300 Wh from members; losses 2 % (6 Wh) at the import price"
    seller = settle_member("s", SLOT, dataclasses.replace(SELL_400, p2p_wh=400), report("s", -400),
                           TARIFF, terms=TERMS)
    assert seller.fees_u == 0  # the buyer pays


def test_the_rules_charge_violations_and_grid_use_and_reward_own_pv() -> None:
    over = settle_member("a", SLOT, BUY_400, report("a", 3000), TARIFF, terms=TERMS)
    # 500 Wh beyond the 2500 Wh import limit at 100,000; 2600 Wh beyond the contract at 50,000.
    assert over.rules_u == 50_000 + 130_000
    assert over.reason == "connection limit exceeded by 500 Wh; grid use: 2600 Wh imported beyond contracts"
    sunny = MeterReport("p", SLOT, 0, 300, 0, 300, 0, pv_wh=1000)
    bonus = settle_member("p", SLOT, None, sunny, TARIFF, terms=TERMS)
    assert (bonus.rules_u, bonus.reason) == (-14_000, "bonus: 700 Wh of own PV used at home")
    assert bonus.bill_u == bonus.imbalance_u - 14_000


def test_repeated_violations_exclude_a_member_for_a_while_with_the_reason() -> None:
    rules = Rules(exclusion_after_violations=2, exclusion_window_slots=10, exclusion_slots=4)
    standing = Standing(rules)
    violation = Settlement("a", 1, 0, 3000, 3000, 0, 0, 0, 0, "connection limit exceeded by 500 Wh")
    assert standing.record(violation, 3) is None
    assert standing.record(dataclasses.replace(violation, slot=20), 22) is None  # outside the window
    reason = standing.record(dataclasses.replace(violation, slot=25), 27)
    assert reason == "excluded until slot 31: 2 connection-limit violations in 10 slots (slots 20, 25)"
    assert standing.exclusion("a", 30) == reason and standing.exclusion("a", 31) is None
    assert standing.exclusion("b", 30) is None


def test_a_balance_below_the_minimum_excludes_too() -> None:
    standing = Standing(Rules(min_balance_u=-100_000, exclusion_slots=2))
    bill = Settlement("a", 5, 0, 100, 100, 0, 60_000, 60_000, 60_000, "")
    assert standing.record(bill, 7) is None
    assert standing.record(dataclasses.replace(bill, slot=6), 8) == (
        "excluded until slot 10: balance -120000 u below the community's minimum -100000 u")
