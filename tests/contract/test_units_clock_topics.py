"""Units, money rounding, slot arithmetic and topic names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.clock import ManualClock, SlotTimes
from broker.topics import TopicError, Topics, parse_topic
from broker.units import energy_wh_for, money_u, split_evenly


@pytest.mark.parametrize(
    ("energy", "price", "expected"),
    [(1000, 300_000, 300_000), (1, 499, 0), (1, 500, 1), (-1, 500, -1), (-1, 499, 0), (0, 7, 0)],
)
def test_money_rounds_half_away_from_zero(energy: int, price: int, expected: int) -> None:
    assert money_u(energy, price) == expected


@given(st.integers(-10**9, 10**9), st.integers(0, 10**8))
def test_money_is_odd_symmetric(energy: int, price: int) -> None:
    assert money_u(-energy, price) == -money_u(energy, price)


def test_energy_of_constant_power() -> None:
    assert energy_wh_for(4000, 900) == 1000
    assert energy_wh_for(-2, 900) == -1  # -0.5 Wh rounds away from zero


@given(st.integers(-10**6, 10**6), st.lists(st.integers(0, 1000), min_size=1, max_size=6))
def test_split_evenly_sums_exactly(total: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        return
    parts = split_evenly(total, tuple(weights))
    assert sum(parts) == total
    assert all(abs(p * sum(weights) - total * w) <= sum(weights) for p, w in zip(parts, weights, strict=True))


def test_slot_times() -> None:
    times = SlotTimes(900, 300)
    assert times.slot_of(1800) == 2 and times.slot_of(1799) == 1
    assert times.gate_s(2) == 1500
    assert times.is_open(2, 1499) and not times.is_open(2, 1500)


def test_slot_times_reject_gate_beyond_slot() -> None:
    with pytest.raises(ValueError, match="gate_closure_s"):
        SlotTimes(900, 900)


def test_manual_clock_never_goes_back() -> None:
    clock = ManualClock(100)
    clock.set(200)
    assert clock.now_s() == 200
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(150)


def test_topics_build_and_parse() -> None:
    topics = Topics("demo")
    assert topics.device("h001", "order") == "gm/v1/demo/dev/h001/order"
    parsed = parse_topic(topics.device("h001", "order"))
    assert (parsed.community, parsed.kind, parsed.name) == ("demo", "order", "h001")
    assert parse_topic(topics.ack("coordinator")).name == "coordinator"
    assert parse_topic(topics.clearing).kind == "clearing"
    assert parse_topic(topics.block).kind == "block"


@pytest.mark.parametrize("topic", ["x/v1/demo/dev/h/order", "gm/v1/demo/dev/h/bogus", "gm/v1/d"])
def test_unknown_topics_are_refused(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_topic_names_are_checked() -> None:
    with pytest.raises(TopicError, match="device"):
        Topics("demo").device("a/b", "order")
