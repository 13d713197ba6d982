"""Register codec: points to and from 16-bit register words, in gridmesh units.

Pure functions on :class:`~edge.registers.template.Point` and
:class:`~edge.registers.template.DeviceTemplate`. Values are integers in the unit the
point's name carries (W, Wh, %); register words are integers 0..65535. Rounding is half
away from zero, the same as :mod:`broker.units`.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from edge.registers.template import MAX_READ_REGISTERS, DeviceTemplate, Point, unit_exponent

FLOAT32_MAX = 3.4028234663852886e38
INT_RANGES: dict[str, tuple[int, int]] = {
    "uint16": (0, 2**16 - 1), "int16": (-(2**15), 2**15 - 1),
    "uint32": (0, 2**32 - 1), "int32": (-(2**31), 2**31 - 1),
    "uint64": (0, 2**64 - 1), "int64": (-(2**63), 2**63 - 1),
}
TABLE_ORDER = ("input", "holding")


class RegisterError(ValueError):
    """Registers that do not hold a valid value, or a value that does not fit its point."""


@dataclass(frozen=True)
class ReadBlock:
    """One read request: ``count`` registers of ``table`` from ``address``."""

    table: str
    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count


def _round_half_away(value: Fraction) -> int:
    magnitude = abs(value)
    whole = math.floor(magnitude)
    if 2 * (magnitude - whole) >= 1:
        whole += 1
    return whole if value >= 0 else -whole


def _exponent(point: Point, exponent: int | None) -> int:
    if point.scale_factor is not None:
        if exponent is None:
            raise RegisterError(f"{point.name}: needs the value of its scale factor {point.scale_factor}")
        return exponent + unit_exponent(point.name, point.unit)
    return point.scale + unit_exponent(point.name, point.unit)


def _to_bytes(point: Point, regs: Sequence[int]) -> bytes:
    if len(regs) != point.count:
        raise RegisterError(f"{point.name}: needs {point.count} register(s), got {len(regs)}")
    words = list(regs) if point.word_order == "big" else list(reversed(regs))
    try:
        return b"".join(word.to_bytes(2, "big") for word in words)
    except OverflowError:
        raise RegisterError(f"{point.name}: register words must be 0..65535, got {list(regs)}") from None


def _raw(point: Point, regs: Sequence[int]) -> int | float:
    data = _to_bytes(point, regs)
    if point.type == "float32":
        value: float = struct.unpack(">f", data)[0]
        if not math.isfinite(value):
            raise RegisterError(f"{point.name}: register holds {value}, not a number")
        return value
    return int.from_bytes(data, "big", signed=point.type.startswith("int"))


def decode_point(point: Point, regs: Sequence[int], exponent: int | None = None) -> int:
    """The value of ``point`` held in ``regs``, in gridmesh units.

    ``exponent`` is the scale-factor register's value, for points that have one.

    >>> from edge.registers.template import Point
    >>> decode_point(Point("voltage_pct", "input", 0, "uint16", "%", scale=-1), [2305])
    231
    """
    raw = _raw(point, regs)
    exp = _exponent(point, exponent)
    if isinstance(raw, int) and exp >= 0:
        factor: int = 10**exp
        return raw * factor * point.sign
    scaled = Fraction(raw) * Fraction(10) ** exp * point.sign
    return _round_half_away(scaled)


def const_words(point: Point) -> list[int]:
    """The register words of a ``const`` point's raw value."""
    if point.const is None:
        raise ValueError(f"{point.name} has no const value")
    data = point.const.to_bytes(point.count * 2, "big", signed=point.type.startswith("int"))
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return words if point.word_order == "big" else words[::-1]


def encode_point(point: Point, value: int, exponent: int | None = None) -> list[int]:
    """The register words that make ``point`` read as ``value`` (gridmesh units).

    RegisterError names the point when ``value`` is outside its min/max or its type.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise RegisterError(f"{point.name}: value must be an integer, got {value!r}")
    if (point.min is not None and value < point.min) or (point.max is not None and value > point.max):
        raise RegisterError(f"{point.name}: {value} is outside {point.min}..{point.max}")
    exp = _exponent(point, exponent)
    if point.type != "float32" and exp == 0:
        return _int_words(point, value * point.sign, value)
    raw_exact = Fraction(value * point.sign) / Fraction(10) ** exp
    if point.type == "float32":
        raw_float = float(raw_exact)
        if abs(raw_float) > FLOAT32_MAX:
            raise RegisterError(f"{point.name}: {value} does not fit a float32")
        data = struct.pack(">f", raw_float)
        words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        return words if point.word_order == "big" else words[::-1]
    return _int_words(point, _round_half_away(raw_exact), value)


def _int_words(point: Point, raw: int, value: int) -> list[int]:
    low, high = INT_RANGES[point.type]
    if not low <= raw <= high:
        raise RegisterError(
            f"{point.name}: {value} needs raw {raw}, outside {point.type} range {low}..{high}"
        )
    raw &= (1 << (16 * point.count)) - 1  # two's complement
    words = [(raw >> shift) & 0xFFFF for shift in range(16 * (point.count - 1), -1, -16)]
    return words if point.word_order == "big" else words[::-1]


@functools.lru_cache(maxsize=256)
def read_plan(template: DeviceTemplate) -> tuple[ReadBlock, ...]:
    """The fewest reads that cover every point but the constants: runs of points at most
    ``template.read_gap`` registers apart, at most 125 registers each."""
    blocks: list[ReadBlock] = []
    for table in TABLE_ORDER:
        start = end = -1
        for point in template.table_points(table):  # type: ignore[arg-type]
            if point.const is not None:
                continue
            near = start >= 0 and point.address - end <= template.read_gap
            # A point starts a new read if its scale factor (SunSpec puts them after the
            # values) would not fit in this one.
            reach = point.end
            if point.scale_factor is not None:
                reach = max(reach, template.point(point.scale_factor).end)
            if near and reach - start <= MAX_READ_REGISTERS:
                end = point.end
                continue
            if start >= 0:
                blocks.append(ReadBlock(table, start, end - start))
            start, end = point.address, point.end
        if start >= 0:
            blocks.append(ReadBlock(table, start, end - start))
    return tuple(blocks)


@functools.lru_cache(maxsize=1024)
def block_points(template: DeviceTemplate, block: ReadBlock) -> tuple[Point, ...]:
    """The points inside ``block``, scale factors first."""
    inside = [
        p for p in template.points
        if p.table == block.table and block.address <= p.address and p.end <= block.end
    ]
    inside.sort(key=lambda p: (p.scale_factor is not None, p.address))
    return tuple(inside)


def check_plan(template: DeviceTemplate) -> None:
    """ValueError if a point and its scale factor would land in different reads."""
    for block in read_plan(template):
        names = {p.name for p in block_points(template, block)}
        for point in block_points(template, block):
            if point.scale_factor is not None and point.scale_factor not in names:
                raise ValueError(
                    f"{point.name} and its scale factor {point.scale_factor} do not fit in one read"
                )


def decode_block(template: DeviceTemplate, block: ReadBlock, regs: Sequence[int]) -> dict[str, int]:
    """Decode every point of ``block`` from the registers one read returned."""
    if len(regs) != block.count:
        raise RegisterError(
            f"{template.name}: read of {block.table} {block.address} returned {len(regs)} "
            f"register(s), expected {block.count}"
        )
    values: dict[str, int] = {}
    for point in block_points(template, block):
        offset = point.address - block.address
        exponent = values[point.scale_factor] if point.scale_factor is not None else None
        values[point.name] = decode_point(point, regs[offset : offset + point.count], exponent)
    return values


def encode_values(template: DeviceTemplate, values: dict[str, int]) -> dict[str, list[int]]:
    """Register words for each named value; scale-factor points are taken from ``values``."""
    words: dict[str, list[int]] = {}
    for name, value in values.items():
        point = template.point(name)
        exponent = values.get(point.scale_factor) if point.scale_factor is not None else None
        words[name] = encode_point(point, value, exponent)
    return words
