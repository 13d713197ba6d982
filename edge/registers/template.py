"""Register-map templates: a device's Modbus registers as data.

A template is a YAML file in ``edge/devices/``::

    name: gridmesh-battery
    kind: battery
    description: gridmesh virtual battery
    points:
      - {name: soc_pct, table: input, address: 4, type: uint16, unit: "%"}
      - {name: setpoint_w, table: holding, address: 0, type: int32, unit: W, access: rw,
         min: -100000, max: 100000}

A point's value in gridmesh units is ``raw * 10**scale * unit_factor * sign``, rounded
half away from zero, where ``raw`` is the register content read as ``type`` in
``word_order`` (bytes within a register are always big-endian, as Modbus sends them),
``scale`` is a power-of-ten exponent (or, with ``scale_factor``, the value of another
int16 point, as SunSpec devices publish it) and ``unit_factor`` converts the point's
``unit`` to the unit its name ends in: ``_w`` is W, ``_wh`` Wh, ``_pct`` %, ``_mv`` mV,
``_ma`` mA, ``_mhz`` mHz (integers keep a meter's precision). Points with other names
(status words, scale factors) are dimensionless (``unit: ""``).

``address`` is the protocol address, counted from 0 within its table: an input
register a datasheet numbers 30001 has address 0, holding register 40001 address 0.
``min``/``max`` bound the values a write may carry, in gridmesh units. ``const`` fixes
a point's raw value (the "SunS" marker, a SunSpec model's id and length): virtual
devices serve it, drivers do not read it. ``enable`` marks an rw switch (SunSpec
``WSetEna``) that drivers set to that value before writing a setpoint, and to 0 to hand
control back to the device (a battery then keeps its household self-consuming). ``read_gap``
lets one read span up to that
many unused registers between points (a SunSpec model answers for all its registers;
some meters refuse reads of undefined ones, so the default is 0).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from broker.schema import bounded, check_bounds
from gridmesh.config import ConfigError, build, read_yaml

DEVICES_DIR = Path(__file__).resolve().parent.parent / "devices"
MAX_READ_REGISTERS = 125  # the Modbus limit for one read of holding/input registers

Table = Literal["input", "holding"]
PointType = Literal["uint16", "int16", "uint32", "int32", "float32", "uint64", "int64"]
Unit = Literal["W", "kW", "Wh", "kWh", "%", "V", "A", "Hz", ""]

REGISTER_COUNT: dict[str, int] = {
    "uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2, "uint64": 4, "int64": 4,
}
# name suffix -> {unit: power-of-ten exponent that converts it to the suffix's unit}
UNITS_BY_SUFFIX: dict[str, dict[str, int]] = {
    "_wh": {"Wh": 0, "kWh": 3},
    "_w": {"W": 0, "kW": 3},
    "_pct": {"%": 0},
    "_mv": {"V": 3},
    "_ma": {"A": 3},
    "_mhz": {"Hz": 3},
}
NAME_PATTERN = r"[a-z][a-z0-9_]{0,63}"
# What the edge drivers read (and write) for each kind of device.
REQUIRED_POINTS: dict[str, tuple[str, ...]] = {
    "meter": ("power_w", "import_wh", "export_wh"),
    "inverter": ("pv_power_w", "pv_energy_wh", "rated_power_w"),
    "battery": ("stored_wh", "capacity_wh", "soc_pct", "power_w", "max_charge_w", "max_discharge_w",
                "soc_min_pct", "soc_max_pct", "charge_wh", "discharge_wh", "setpoint_w", "setpoint_enable"),
}
WRITABLE_POINTS: dict[str, tuple[str, ...]] = {"battery": ("setpoint_w", "setpoint_enable")}


@functools.lru_cache(maxsize=1024)
def unit_exponent(name: str, unit: str) -> int:
    """The power of ten that converts ``unit`` to the unit ``name`` ends in."""
    for suffix, units in UNITS_BY_SUFFIX.items():
        if name.endswith(suffix):
            if unit not in units:
                allowed = " or ".join(units)
                raise ValueError(f"unit: a point named {name!r} needs unit {allowed}, got {unit!r}")
            return units[unit]
    if unit:
        raise ValueError(
            f"unit: {name!r} has no unit suffix (_w, _wh, _pct), so its unit must be \"\"; got {unit!r}"
        )
    return 0


@dataclass(frozen=True)
class Point:
    """One value in a device's registers."""

    name: str = bounded(pattern=NAME_PATTERN)
    table: Literal["input", "holding"] = bounded(choices=get_args(Table))
    address: int = bounded(min=0, max=65535)
    type: Literal["uint16", "int16", "uint32", "int32", "float32", "uint64", "int64"] = bounded(
        choices=get_args(PointType))
    unit: Literal["W", "kW", "Wh", "kWh", "%", "V", "A", "Hz", ""] = bounded(choices=get_args(Unit))
    word_order: Literal["big", "little"] = "big"
    scale: int = bounded(0, min=-9, max=9)
    scale_factor: str | None = bounded(None, pattern=NAME_PATTERN)
    access: Literal["r", "rw"] = "r"
    sign: int = bounded(1, min=-1, max=1)
    min: int | None = None
    max: int | None = None
    const: int | None = None  # a fixed raw value (a SunSpec marker, model id or length)
    enable: int | None = None  # an rw switch written with this value before any setpoint

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.sign == 0:
            raise ValueError("sign: must be 1 or -1, got 0")
        if self.access == "rw" and self.table == "input":
            raise ValueError("access: input registers are read-only; use table: holding for rw")
        if self.address + self.count > 65536:
            raise ValueError(f"address: {self.name} runs past register 65535")
        if self.scale_factor is not None and self.scale != 0:
            raise ValueError("scale: give either scale or scale_factor, not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min: {self.min} is greater than max {self.max}")
        if self.enable is not None and self.access != "rw":
            raise ValueError("enable: only an rw point can be an enable switch")
        if self.const is not None:
            if self.type == "float32" or self.access == "rw":
                raise ValueError("const: only read-only integer points can be constant")
            try:
                self.const.to_bytes(self.count * 2, "big", signed=self.type.startswith("int"))
            except OverflowError:
                raise ValueError(f"const: {self.const} does not fit a {self.type}") from None
        unit_exponent(self.name, self.unit)

    @property
    def count(self) -> int:
        """Registers the point occupies."""
        return REGISTER_COUNT[self.type]

    @property
    def end(self) -> int:
        """One past the point's last register."""
        return self.address + self.count


@dataclass(frozen=True)
class DeviceTemplate:
    """A device's register map: its kind and its points."""

    name: str = bounded(pattern=r"[a-z0-9][a-z0-9._-]{0,63}")
    kind: Literal["meter", "inverter", "battery"] = bounded(choices=tuple(REQUIRED_POINTS))
    description: str = bounded(max_len=500)
    points: tuple[Point, ...] = bounded(min_items=1)
    read_gap: int = bounded(0, min=0, max=MAX_READ_REGISTERS - 1)  # unused registers a read may span
    _by_name: dict[str, Point] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Point] = {}
        for index, point in enumerate(self.points):
            if point.name in by_name:
                raise ValueError(f"points[{index}].name: duplicate point name {point.name!r}")
            by_name[point.name] = point
        for table in ("input", "holding"):
            ordered = sorted((p for p in self.points if p.table == table), key=lambda p: p.address)
            for before, after in itertools.pairwise(ordered):
                if after.address < before.end:
                    raise ValueError(
                        f"points: {after.name} ({table} {after.address}) overlaps {before.name} "
                        f"({table} {before.address}..{before.end - 1})"
                    )
        for index, point in enumerate(self.points):
            if point.scale_factor is None:
                continue
            factor = by_name.get(point.scale_factor)
            if factor is None:
                raise ValueError(f"points[{index}].scale_factor: no point named {point.scale_factor!r}")
            if factor.type != "int16" or factor.table != point.table or factor.scale_factor:
                raise ValueError(
                    f"points[{index}].scale_factor: {factor.name} must be a plain int16 point "
                    f"in the {point.table} table"
                )
        if self.kind not in REQUIRED_POINTS:
            raise ValueError(f"kind: must be one of {', '.join(REQUIRED_POINTS)}; got {self.kind!r}")
        missing = [n for n in REQUIRED_POINTS[self.kind] if n not in by_name]
        if missing:
            raise ValueError(f"points: a {self.kind} needs {', '.join(missing)}")
        for name in WRITABLE_POINTS.get(self.kind, ()):
            if by_name[name].access != "rw":
                raise ValueError(f"points: {name} of a {self.kind} must have access: rw")
        object.__setattr__(self, "_by_name", by_name)
        check_bounds(self)

    def point(self, name: str) -> Point:
        """The point called ``name``; KeyError naming the template otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name} has no point {name!r}") from None

    def has_point(self, name: str) -> bool:
        return name in self._by_name

    def table_points(self, table: Table) -> tuple[Point, ...]:
        """The points of one table, by address."""
        return tuple(sorted((p for p in self.points if p.table == table), key=lambda p: p.address))


def parse_template(data: dict[str, object], source: str) -> DeviceTemplate:
    """Build a template from a parsed YAML mapping; ConfigError names ``source`` and the key."""
    template = build(DeviceTemplate, data, source)
    from edge.registers.codec import check_plan  # the plan needs the codec; import late

    try:
        check_plan(template)
    except ValueError as exc:
        raise ConfigError(source, "points", str(exc)) from None
    return template


def template_path(name_or_path: str | Path) -> Path:
    """``edge/devices/<name>.yaml`` for a bare name, else the given path."""
    text = str(name_or_path)
    if "/" in text or text.endswith((".yaml", ".yml")):
        return Path(text)
    return DEVICES_DIR / f"{text}.yaml"


@functools.lru_cache(maxsize=64)
def _load(path: Path) -> DeviceTemplate:
    template = parse_template(read_yaml(path), str(path))
    if template.name != path.stem:
        raise ConfigError(str(path), "name", f"must match the file name {path.stem!r}, got {template.name!r}")
    return template


def load_template(name_or_path: str | Path) -> DeviceTemplate:
    """Load a template by name (``gridmesh-meter``) or by path to a YAML file."""
    path = template_path(name_or_path)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in DEVICES_DIR.glob("*.yaml")))
        raise ConfigError(str(path), "", f"no such device template (bundled: {known})")
    return _load(path.resolve())


def all_templates() -> tuple[DeviceTemplate, ...]:
    """Every bundled template, by name."""
    return tuple(load_template(p) for p in sorted(DEVICES_DIR.glob("*.yaml")))
