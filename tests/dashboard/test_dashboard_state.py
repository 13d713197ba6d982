"""The dashboard's model, driven by message sequences, and the text every view shows."""

from __future__ import annotations

import dataclasses

from dashboard_traffic import (
    COORDINATOR,
    GATE_S,
    REJECTED_REF,
    REJECTION,
    SLOT,
    T_S,
    community,
    everything,
    gate,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.community import PowerLimits
from broker.dashboard.panels import (
    SHOWN_REJECTIONS,
    device_rows,
    feeder_lines,
    header_lines,
    market_lines,
    parse_filter,
    rejection_lines,
    render_text,
)
from broker.dashboard.state import (
    KEEP_REJECTIONS,
    DashboardState,
    Undecodable,
    apply,
    for_community,
    take,
)
from broker.messages import Award, Clearing, ClockTick, Message, Order, Result, Step, Telemetry
from ledger.blocks import block_data, build_block
from ledger.transactions import Transaction


def fed(messages: list[Message], state: DashboardState | None = None) -> DashboardState:
    state = state if state is not None else for_community(community())
    for msg in messages:
        state = apply(state, msg)
    return state


def traffic() -> list[Message]:
    return [msg for _, msg in everything()]


def rows_by_device(state: DashboardState, terms: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    return {row[0]: row for row in device_rows(state, terms)}


def test_the_community_as_a_slot_starts() -> None:
    state = fed(traffic())
    assert state.current_slot == SLOT and state.ledger_height == 41
    rows = rows_by_device(state)
    assert rows["h001"][:7] == ("h001", "prosumer", "online", "-1500", "2500", "-500", "60")
    assert rows["h001"][7:10] == ("sell partial 300/400 Wh", "100", "-0.0578")
    assert rows["h002"][7:9] == ("buy filled 1000/1000 Wh", "0") and rows["h002"][10] == "1"
    assert rows["h003"][2] == "offline" and rows["coordinator"][1:3] == ("coordinator", "online")
    text = render_text(state, "test")
    for line in (
        f"slot {SLOT} (2023-11-05 16:00 UTC) · ledger height 41 · 19 messages",
        f"order book   slot {SLOT + 1} (open): bids 1 (300 Wh, best 0.300/kWh) · "
        "asks 1 (400 Wh, best 0.080/kWh)",
        f"clearing     slot {SLOT} (uniform): price 0.190/kWh · p2p 300 Wh · 2 orders, 2 trades",
        f"settlement   slot {SLOT - 2}: bills 0.1292 (without trading 0.2722) of 2 members",
        "feeder       limits import 4.0 kW (1000 Wh a slot) · export 2.0 kW (500 Wh a slot)",
        f"  cleared    slot {SLOT}: import 700 Wh (70.0 %) · export 0 Wh (0.0 %)",
        f"  metered    slot {SLOT - 1}: import 600 Wh (60.0 %) · export 0 Wh (0.0 %) · 2 reports",
        "  now        0.7 kW export (35.0 % of its limit) from 2 devices' telemetry",
        f"curtailment  slot {SLOT}: 100 Wh of PV held back (h001 100 Wh)",
        "rejections   1 in all",
        f"  16:00:06 h002 order {REJECTED_REF}: {REJECTION}",
    ):
        assert line in text.splitlines(), f"{line!r} not in\n{text}"


@settings(max_examples=60, deadline=None)
@given(st.permutations(traffic()))
def test_messages_in_any_order_give_the_same_frame(shuffled: list[Message]) -> None:
    assert render_text(fed(shuffled), "test") == render_text(fed(traffic()), "test")


def test_a_state_is_never_changed_by_what_follows_it() -> None:
    before = fed(traffic()[:7])
    text = render_text(before, "test")
    after = fed(traffic()[7:], before)
    assert render_text(before, "test") == text != render_text(after, "test")
    assert before.book is None and after.book is not None and after.book.depth("sell").orders == 1


def test_a_repeated_order_counts_once_and_its_rejection_takes_it_out() -> None:
    order = Order("h001", SLOT + 1, 0, "sell", (Step(400, 80_001),), T_S)
    state = fed([order, order])
    assert state.book is not None and state.book.depth("sell").orders == 1
    refused = Result("h001", order.order_id, "order", "rejected", "late", T_S)
    state = fed([refused], state)
    assert state.book is not None and state.book.depth("sell").orders == 0
    assert fed([order], state).book == state.book  # resent after its rejection: still out


def test_rejections_keep_the_newest_and_count_every_one() -> None:
    devices = [f"h00{1 + i % 3}" for i in range(KEEP_REJECTIONS + 5)]
    refusals = [Result(d, f"{d}:{SLOT}:{i}", "order", "rejected", f"reason {i}", T_S)
                for i, d in enumerate(devices)]
    state = fed(refusals)
    assert state.rejected_total == KEEP_REJECTIONS + 5 and len(state.rejections) == KEEP_REJECTIONS
    assert state.rejections[0].reason == "reason 5"
    lines = rejection_lines(state)
    assert lines[0] == f"rejections   {KEEP_REJECTIONS + 5} in all" and len(lines) == 9
    assert lines[1].endswith(f"reason {KEEP_REJECTIONS + 4}")
    mine = rejection_lines(state, ("h002",))
    assert len(mine) == 1 + SHOWN_REJECTIONS and all(" h002 " in line for line in mine[1:])
    assert "16 recent of the filtered members" in mine[0]


def test_the_filter_narrows_devices_book_curtailment_and_rejections() -> None:
    state = fed(traffic())
    assert parse_filter("h001, h003") == ("h001", "h003") and parse_filter("  ") == ()
    assert list(rows_by_device(state, ("h00",))) == ["h001", "h002", "h003"]
    assert list(rows_by_device(state, parse_filter("h001,h003"))) == ["h001", "h003"]
    market = market_lines(state, ("h002",))
    assert "(filtered members' orders): bids 1 (300 Wh, best 0.300/kWh) · asks 0 (0 Wh)" in market[0]
    assert f"curtailment  slot {SLOT}: none" in feeder_lines(state, ("h002",))
    assert rejection_lines(state, ("h001",))[1:] == []
    assert header_lines(state, "x", ("h002",), paused=True)[2].endswith("filter: h002")


def test_only_the_last_cleared_slots_awards_are_shown() -> None:
    state = fed(traffic())
    later = Clearing(SLOT + 1, "uniform", None, 300, 400, 0, 0, 0, 2, (), GATE_S + 900)
    award = Award("h002", SLOT + 1, f"h002:{SLOT + 1}:0", "buy", "unfilled", 300, 0, None, 0, "",
                  GATE_S + 900)
    rows = rows_by_device(fed([later, award], state))
    assert rows["h001"][7] == "-" and rows["h002"][7] == "buy unfilled 0/300 Wh"
    book = fed([later], state).book
    assert book is not None and book.slot == SLOT + 1 and book.cleared


def test_a_grid_flow_over_the_feeder_limit_is_marked() -> None:
    over = Clearing(SLOT, "uniform", 190_000, 1200, 0, 0, 1200, 0, 1, (), GATE_S)
    assert f"  cleared    slot {SLOT}: import 1200 Wh (120.0 % OVER THE LIMIT) · export 0 Wh (0.0 %)" in (
        feeder_lines(fed([over])))


def test_the_genesis_block_on_the_bus_gives_the_rules_unless_a_registry_was_named() -> None:
    rules = [Transaction.from_community(community())]
    genesis = block_data(build_block(None, -1, GATE_S, rules, 0, COORDINATOR))
    unknown = DashboardState()
    assert feeder_lines(unknown)[0].startswith("feeder       limits unknown (give --registry FILE")
    learned = apply(unknown, genesis)
    assert learned.ledger_height == 0 and learned.community == community()
    assert rows_by_device(learned)["h003"][1:3] == ("consumer", "-")  # a member not heard of yet
    registry = dataclasses.replace(community(), grid=PowerLimits(8000, 8000))
    assert apply(for_community(registry), genesis).community == registry


def test_the_time_is_the_clocks_else_the_traffics_and_the_last_tick_ends_the_run() -> None:
    seen = fed([Telemetry("h001", T_S + 1000, 0, 0, 0, 50)])
    assert seen.current_slot == SLOT + 1 and seen.clock_s is None
    ticked = fed([ClockTick(3, T_S)], seen)
    assert ticked.current_slot == SLOT and not ticked.ended
    ended = fed([ClockTick(4, T_S + 900, last=True)], ticked)
    assert ended.ended and " · run ended · " in header_lines(ended, "x")[1]
    assert fed([m for _, m in gate()]).current_slot == SLOT - 1  # the gate closes in the slot before


def test_an_undecodable_payload_is_counted_with_its_reason() -> None:
    state = take(DashboardState(), Undecodable("gm/v1/demo/dev/h001/order", "steps: missing"))
    assert state.undecodable == 1 and state.messages == 1
    assert "1 undecodable (last: gm/v1/demo/dev/h001/order: steps: missing)" in header_lines(state, "x")[1]
