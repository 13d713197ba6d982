"""Register codec: round trips for every type and word order, known images, clear errors."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.registers.codec import (
    INT_RANGES,
    ReadBlock,
    RegisterError,
    decode_block,
    decode_point,
    encode_point,
    read_plan,
)
from edge.registers.template import DeviceTemplate, Point, load_template

INT_TYPES = tuple(INT_RANGES)
ORDERS = ("big", "little")


def point(type_: str = "int32", order: str = "big", scale: int = 0, sign: int = 1, unit: str = "W",
          name: str = "power_w", **extra: int) -> Point:
    return Point(name, "input", 0, type_, unit, word_order=order, scale=scale, sign=sign,  # type: ignore[arg-type]
                 **extra)  # type: ignore[arg-type]


@st.composite
def int_points(draw: st.DrawFn) -> tuple[Point, list[int]]:
    type_ = draw(st.sampled_from(INT_TYPES))
    p = point(type_, draw(st.sampled_from(ORDERS)), draw(st.integers(0, 3)), draw(st.sampled_from((1, -1))))
    regs = draw(st.lists(st.integers(0, 0xFFFF), min_size=p.count, max_size=p.count))
    return p, regs


@given(int_points())
def test_integer_registers_round_trip(case: tuple[Point, list[int]]) -> None:
    p, regs = case
    assert encode_point(p, decode_point(p, regs)) == regs


@given(st.sampled_from(INT_TYPES), st.sampled_from(ORDERS), st.integers(-3, 0), st.data())
def test_values_round_trip_through_finer_registers(
    type_: str, order: str, scale: int, data: st.DataObject
) -> None:
    p = point(type_, order, scale)
    low, high = INT_RANGES[type_]
    factor = 10**-scale
    value = data.draw(st.integers(-(-low // factor), high // factor))
    regs = encode_point(p, value)
    assert len(regs) == p.count and all(0 <= r <= 0xFFFF for r in regs)
    assert decode_point(p, regs) == value


@given(st.sampled_from(ORDERS), st.integers(-(2**24), 2**24), st.sampled_from(("W", "kW")))
def test_float32_round_trips_exact_integers(order: str, value: int, unit: str) -> None:
    p = point("float32", order, unit=unit)
    if unit == "kW":
        value = value // 1000 * 1000  # whole kW are exact in float32
    assert decode_point(p, encode_point(p, value)) == value


def test_known_images() -> None:
    be = point("float32", "big")
    assert encode_point(be, 230) == [0x4366, 0x0000]
    image_230_5 = list(struct.unpack(">HH", struct.pack(">f", 230.5)))
    assert image_230_5 == [0x4366, 0x8000]
    assert decode_point(be, [0x4366, 0x8000]) == 231  # 230.5 rounds half away from zero
    assert decode_point(be, [0xC366, 0x8000]) == -231
    assert decode_point(point("float32", "little"), [0x8000, 0x4366]) == 231
    assert decode_point(point("float32", unit="kWh", name="import_wh"), [0x3FC0, 0x0000]) == 1500  # 1.5 kWh
    assert encode_point(point("int32"), -1) == [0xFFFF, 0xFFFF]
    assert encode_point(point("int32", "little"), 0x12345678) == [0x5678, 0x1234]
    assert encode_point(point("uint64", name="import_wh", unit="Wh"), 2**40 + 5) == [0, 0x0100, 0, 5]
    assert decode_point(point("int16", sign=-1), [0xFFFE]) == 2  # a device that counts + for export
    assert decode_point(point("uint16", scale=-1, unit="%", name="soc_pct"), [555]) == 56
    assert decode_point(point("uint16", scale=2), [12]) == 1200


@pytest.mark.parametrize("bits", [0x7FC00000, 0x7F800000, 0xFF800000])
def test_nan_and_infinity_are_register_errors(bits: int) -> None:
    with pytest.raises(RegisterError, match="power_w: register holds"):
        decode_point(point("float32"), [bits >> 16, bits & 0xFFFF])


def test_encoding_out_of_range_names_the_point() -> None:
    with pytest.raises(RegisterError, match=r"soc_pct: 70000 needs raw 70000, outside uint16"):
        encode_point(point("uint16", unit="%", name="soc_pct"), 70000)
    with pytest.raises(RegisterError, match=r"power_w: -1 needs raw -1, outside uint32"):
        encode_point(point("uint32"), -1)
    with pytest.raises(RegisterError, match=r"setpoint_w: 101 is outside -100..100"):
        encode_point(point(name="setpoint_w", min=-100, max=100), 101)
    with pytest.raises(RegisterError, match="does not fit a float32"):
        encode_point(point("float32"), 10**40)
    with pytest.raises(RegisterError, match="needs 2 register"):
        decode_point(point("int32"), [1])
    with pytest.raises(RegisterError, match=r"0\.\.65535"):
        decode_point(point("int32"), [1, 70000])
    big = decode_point(point("float32"), encode_point(point("float32"), 10**30))
    assert math.isclose(big, 1e30, rel_tol=1e-6)


def _template(*points: Point) -> DeviceTemplate:
    meter = (point("int32"), point("uint32", name="import_wh", unit="Wh"),
             point("uint32", name="export_wh", unit="Wh"))
    required = tuple(Point(p.name, "holding", 1000 + 2 * i, p.type, p.unit) for i, p in enumerate(meter))
    return DeviceTemplate("t", "meter", "test", (*required, *points))


def test_read_plan_splits_at_gaps_tables_and_125_registers() -> None:
    wide = tuple(Point(f"r{i}", "input", 10 + i, "uint16", "") for i in range(130))
    gap = Point("late", "input", 500, "uint32", "")
    template = _template(*wide, gap)
    assert read_plan(template) == (
        ReadBlock("input", 10, 125), ReadBlock("input", 135, 5), ReadBlock("input", 500, 2),
        ReadBlock("holding", 1000, 6),
    )
    words = list(range(125))
    values = decode_block(template, ReadBlock("input", 10, 125), words)
    assert values["r0"] == 0 and values["r124"] == 124 and "r125" not in values
    with pytest.raises(RegisterError, match="returned 3 register"):
        decode_block(template, ReadBlock("input", 500, 2), [0, 0, 0])


def test_scale_factor_points_decode_with_their_factor() -> None:
    sf = Point("w_sf", "input", 0, "int16", "")
    power = Point("ac_power_w", "input", 1, "int16", "W", scale_factor="w_sf")
    energy = Point("ac_energy_wh", "input", 2, "uint32", "kWh", scale_factor="w_sf")
    template = _template(power, sf, energy)
    block = read_plan(template)[0]
    assert decode_block(template, block, [0xFFFF, 12345, 0, 20]) == {
        "w_sf": -1, "ac_power_w": 1235, "ac_energy_wh": 2000,
    }
    with pytest.raises(RegisterError, match="needs the value of its scale factor w_sf"):
        decode_point(power, [1])


def test_the_bundled_battery_image_decodes_to_what_was_encoded() -> None:
    template = load_template("gridmesh-battery")
    values = {"stored_wh": 2500, "capacity_wh": 5000, "soc_pct": 50, "power_w": -1250,
              "max_charge_w": 2500, "max_discharge_w": 2500, "soc_min_pct": 10, "soc_max_pct": 90,
              "charge_wh": 12_345_678_901, "discharge_wh": 7, "setpoint_w": -1250,
              "setpoint_enable": 1, "setpoint_revert_s": 1800}
    decoded: dict[str, int] = {}
    for block in read_plan(template):
        words = [0] * block.count
        for p in template.points:
            if p.table == block.table:
                words[p.address - block.address : p.end - block.address] = encode_point(p, values[p.name])
        decoded.update(decode_block(template, block, words))
    assert decoded == values
