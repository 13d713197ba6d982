"""The canonical codec and message validation: what goes over the bus and into the ledger."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.codec import PayloadError, canonical_json, parse_json_object
from broker.identity import Identity, Verifier
from broker.messages import (
    MESSAGE_TYPES,
    Award,
    MeterReport,
    Order,
    Settlement,
    Status,
    Step,
    decode,
    encode,
)

KEY = Identity.derived("h001", 1)


def signed_order(**changes: object) -> Order:
    order = Order("h001", 10, 0, "buy", (Step(1200, 300_000),), 8400)
    return KEY.sign(dataclasses.replace(order, **changes))


def test_canonical_json_sorts_keys_and_has_no_spaces() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == b'{"a":[1,{"c":3,"d":2}],"b":1}'


def test_canonical_json_refuses_floats_anywhere() -> None:
    with pytest.raises(PayloadError, match=r"\$\.a\[0\]"):
        canonical_json({"a": [0.5]})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff", "not UTF-8"),
        (b"{", "not JSON"),
        (b"[1]", "must be a JSON object"),
        (b'{"a":1.5}', "floats are not allowed"),
        (b'{"a":NaN}', "NaN is not allowed"),
        (b'{"a":1,"a":2}', "duplicate key"),
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_json_object(payload)


def test_order_round_trips_and_its_signature_verifies() -> None:
    order = signed_order()
    decoded = decode(encode(order))
    assert decoded == order
    assert Verifier().verify(decoded, KEY.public_key_hex)
    assert order.order_id == "h001:10:0"


def test_a_changed_field_breaks_the_signature() -> None:
    order = signed_order()
    forged = dataclasses.replace(order, steps=(Step(9999, 300_000),))
    assert not Verifier().verify(forged, KEY.public_key_hex)


def test_unsigned_order_does_not_verify() -> None:
    order = Order("h001", 10, 0, "buy", (Step(1200, 300_000),), 8400)
    assert not Verifier().verify(order, KEY.public_key_hex)


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"schema": 2}, "schema: unknown version 2"),
        ({"schema": None}, "schema: missing"),
        ({"type": "bogus"}, "type: unknown message type 'bogus'"),
        ({"slot": "ten"}, "order.slot: must be an integer"),
        ({"side": "hold"}, "order.side: must be one of buy, sell"),
        ({"steps": []}, "order.steps: needs at least 1"),
        ({"steps": [{"energy_wh": 0, "price_u_per_kwh": 1}]}, r"order.steps\[0\].energy_wh: must be >= 1"),
        ({"device": "h 1"}, "order.device: 'h 1' does not match"),
        ({"extra": 1}, "order.extra: unknown key"),
    ],
)
def test_invalid_orders_name_the_field(patch: dict[str, object], reason: str) -> None:
    import json

    data = json.loads(encode(signed_order()))
    for key, value in patch.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(PayloadError, match=reason):
        decode(json.dumps(data).encode())


def test_decode_checks_the_expected_type() -> None:
    with pytest.raises(PayloadError, match="expected 'report' here, got 'order'"):
        decode(encode(signed_order()), MeterReport)


def test_every_message_type_is_registered_once() -> None:
    assert len(MESSAGE_TYPES) == len({cls.TYPE for cls in MESSAGE_TYPES.values()})
    assert {"order", "result", "award", "report", "settlement", "block", "tick"} <= set(MESSAGE_TYPES)


@given(
    energy=st.integers(min_value=1, max_value=10_000_000),
    price=st.integers(min_value=0, max_value=100_000_000),
    slot=st.integers(min_value=0, max_value=2**40),
)
def test_orders_round_trip_for_any_valid_values(energy: int, price: int, slot: int) -> None:
    order = Order("dev-1", slot, 3, "sell", (Step(energy, price),), 0)
    assert decode(encode(order)) == order


def test_optional_fields_round_trip_as_null() -> None:
    award = Award("h001", 5, "h001:5:0", "buy", "unfilled", 100, 0, None, 0, "no seller", 1)
    assert decode(encode(award)) == award
    settlement = Settlement("h001", 5, 0, None, 0, 0, 0, 0, 0, "no meter report")
    assert b'"metered_wh":null' in encode(settlement)
    assert decode(encode(settlement)) == settlement


def test_status_is_not_signed() -> None:
    with pytest.raises(TypeError, match="not signed"):
        KEY.sign(Status("h001", "online", 1))
