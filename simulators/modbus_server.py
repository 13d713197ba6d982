"""A Modbus TCP server that serves devices described by register-map templates.

One :class:`DeviceServer` listens on one TCP port and answers for several unit ids,
each a device with a template from ``edge/devices`` (the same files the edge drivers
read). It is a pymodbus 3.16 ``ModbusTcpServer`` over ``SimDevice`` data: every point is
a register range (read-only unless the template says ``rw``), addresses between points
are invalid (ILLEGAL_ADDRESS), and so is every register of a unit id the server does
not serve.

The register image is owned here: :meth:`DeviceServer.update` encodes values into it
and each read copies the requested words out of it. A write to ``rw`` points is decoded
and checked against the points' ``min``/``max``; a value outside them is refused with
ILLEGAL_DATA_VALUE and changes nothing, a good one is stored and reported to
``on_write(unit_id, point_name, value)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.registers.codec import RegisterError, const_words, decode_point, encode_point
from edge.registers.template import DeviceTemplate, Point, Table

WriteHandler = Callable[[int, str, int], None]
READ_INPUT = 4
HOLDING_CODES = frozenset({3, 6, 16, 22, 23})


class DeviceServerError(RuntimeError):
    """The server could not start (address in use, bad template for serving)."""


@dataclass(frozen=True)
class Fault:
    """How a virtual device misbehaves: answer late (``delay_s``; beyond the client's
    timeout it does not answer at all) and/or with a Modbus exception code."""

    delay_s: float = 0.0
    exception: ExcCodes | None = None
    frozen: bool = False  # answers, but its registers no longer follow the physics

    @classmethod
    def named(cls, name: str) -> Fault:
        """The faults a test or a testbed configuration names."""
        if name not in SERVER_FAULTS:
            raise ValueError(f"unknown fault {name!r} (known: {', '.join(SERVER_FAULTS)})")
        return SERVER_FAULTS[name]


SERVER_FAULTS = {
    "timeout": Fault(delay_s=3600.0),
    "slow": Fault(delay_s=0.2),
    "busy": Fault(exception=ExcCodes.DEVICE_BUSY),
    "failure": Fault(exception=ExcCodes.DEVICE_FAILURE),
    "frozen": Fault(frozen=True),
}


@dataclass
class _TableImage:
    """Register words of one table of one device, from ``start`` (as pymodbus lays them out)."""

    start: int
    words: list[int]
    points: tuple[Point, ...]


def _table_image(template: DeviceTemplate, table: Table) -> tuple[_TableImage, list[SimData]]:
    points = template.table_points(table)
    if not points:
        return _TableImage(0, [0, 0], ()), [SimData(0, datatype=DataType.INVALID)]
    start = points[0].address
    words = [0] * (points[-1].end - start + 1)
    for point in points:
        if point.const is not None:
            words[point.address - start : point.end - start] = const_words(point)
    # One block for the whole span, so registers between points read as 0 (a SunSpec
    # model's unused points); writes are checked point by point in the action hook.
    blocks = [SimData(start, values=words[:-1], datatype=DataType.REGISTERS)]
    return _TableImage(start, words, points), blocks


class _Device:
    """One unit id: its template, its register images and its pymodbus action hook."""

    def __init__(self, unit_id: int, template: DeviceTemplate, on_write: WriteHandler | None) -> None:
        self.unit_id = unit_id
        self.template = template
        self.on_write = on_write
        self.fault: Fault | None = None
        self.input, input_blocks = _table_image(template, "input")
        self._input_values: dict[str, tuple[int, int | None]] = {}
        self.holding, holding_blocks = _table_image(template, "holding")
        flags = [SimData(0, values=[False] * 16, datatype=DataType.BITS, readonly=True)]
        self.simdevice = SimDevice(
            unit_id, simdata=(list(flags), list(flags), holding_blocks, input_blocks), action=self.action
        )

    def image(self, point: Point) -> _TableImage:
        return self.input if point.table == "input" else self.holding

    def set_value(self, name: str, value: int) -> None:
        point = self.template.point(name)
        exponent = None
        if point.scale_factor is not None:
            exponent = self.get_value(point.scale_factor)
        # Input registers change only here, so an unchanged value needs no encoding
        # (most of a device's points, e.g. capacity and limits, never change).
        if point.table == "input" and self._input_values.get(name) == (value, exponent):
            return
        image = self.image(point)
        offset = point.address - image.start
        image.words[offset : offset + point.count] = encode_point(point, value, exponent)
        if point.table == "input":
            self._input_values[name] = (value, exponent)

    def forget_input_values(self) -> None:
        """Registers were changed behind set_value's back: re-encode every value next time."""
        self._input_values.clear()

    def get_value(self, name: str) -> int:
        point = self.template.point(name)
        image = self.image(point)
        return _decode(point, image, image.words)

    async def action(
        self, function_code: int, start_address: int, address: int, count: int,
        registers: list[int], set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        fault = self.fault
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)  # a slow device, or one that never answers
            if fault.exception is not None:
                return fault.exception
        if function_code == READ_INPUT:
            image = self.input
        elif function_code in HOLDING_CODES:
            image = self.holding
        else:
            return None
        offset = address - start_address
        if set_values is None:
            registers[offset : offset + count] = image.words[offset : offset + count]
            return None
        return self._write(image, offset, [int(v) for v in set_values])

    def _write(self, image: _TableImage, offset: int, values: list[int]) -> ExcCodes | None:
        words = image.words.copy()
        words[offset : offset + len(values)] = values
        first, last = image.start + offset, image.start + offset + len(values)
        writable = {a for p in image.points if p.access == "rw" for a in range(p.address, p.end)}
        if any(a not in writable for a in range(first, last)):
            return ExcCodes.ILLEGAL_ADDRESS
        accepted: list[tuple[str, int]] = []
        for point in image.points:
            if point.access != "rw" or point.end <= first or point.address >= last:
                continue
            try:
                value = _decode(point, image, words)
            except RegisterError:
                return ExcCodes.ILLEGAL_VALUE
            if (point.min is not None and value < point.min) or (point.max is not None and value > point.max):
                return ExcCodes.ILLEGAL_VALUE
            accepted.append((point.name, value))
        image.words[:] = words
        if self.on_write is not None:
            for name, value in accepted:
                self.on_write(self.unit_id, name, value)
        return None


def _decode(point: Point, image: _TableImage, words: list[int]) -> int:
    exponent = None
    if point.scale_factor is not None:
        factor = next(p for p in image.points if p.name == point.scale_factor)
        exponent = _decode(factor, image, words)
    offset = point.address - image.start
    return decode_point(point, words[offset : offset + point.count], exponent)


def _no_such_unit() -> SimDevice:
    """Unit id 0, which pymodbus also answers for unknown ids: nothing valid to read or write."""
    flags = [SimData(0, values=[False] * 16, datatype=DataType.BITS, readonly=True)]
    invalid = [SimData(0, datatype=DataType.INVALID)]
    return SimDevice(0, simdata=(list(flags), list(flags), list(invalid), list(invalid)))


class DeviceServer:
    """Several template devices (unit ids) behind one Modbus TCP port."""

    def __init__(
        self, devices: dict[int, DeviceTemplate], host: str = "127.0.0.1",
        on_write: WriteHandler | None = None,
    ) -> None:
        if not devices:
            raise ValueError("a device server needs at least one device")
        self.host = host
        self._devices = {unit: _Device(unit, template, on_write) for unit, template in devices.items()}
        self._server: ModbusTcpServer | None = None
        self._port = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return self._port

    async def start(self, port: int = 0) -> int:
        """Listen on ``port`` (0: a free one); returns the port."""
        if self._server is not None:
            raise RuntimeError("the server is already running")
        devices = [d.simdevice for d in self._devices.values()]
        if 0 not in self._devices:
            devices.append(_no_such_unit())
        server = ModbusTcpServer(devices, address=(self.host, port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise DeviceServerError(f"cannot listen on {self.host}:{port}: {exc}") from None
        sockets = getattr(server.transport, "sockets", None)  # asyncio's or uvloop's server
        if not sockets:
            await server.shutdown()  # type: ignore[no-untyped-call]
            raise DeviceServerError(f"no listening socket on {self.host}:{port}")
        self._server = server
        self._port = int(sockets[0].getsockname()[1])
        return self._port

    def update(self, unit_id: int, values: dict[str, int]) -> None:
        """Put new values into a device's registers (gridmesh units); values for points
        the device's template does not have are not shown."""
        device = self._devices[unit_id]
        if device.fault is not None and device.fault.frozen:
            return
        for name, value in values.items():
            if device.template.has_point(name):
                device.set_value(name, value)

    def set_fault(self, unit_id: int, fault: Fault | None) -> None:
        """Make one device misbehave (None: behave again)."""
        self._devices[unit_id].fault = fault

    def set_words(self, unit_id: int, table: Table, address: int, words: list[int]) -> None:
        """Put raw register words in place, whatever they mean (garbage, for fault tests)."""
        device = self._devices[unit_id]
        image = device.input if table == "input" else device.holding
        offset = address - image.start
        if offset < 0 or offset + len(words) > len(image.words) - 1:
            raise ValueError(f"unit {unit_id} has no {table} registers {address}..{address + len(words) - 1}")
        image.words[offset : offset + len(words)] = words
        device.forget_input_values()

    def value(self, unit_id: int, name: str) -> int:
        """The value a point's registers hold now."""
        return self._devices[unit_id].get_value(name)

    def words(self, unit_id: int, table: Table) -> tuple[int, list[int]]:
        """(start address, register words) of one table: the image clients read."""
        device = self._devices[unit_id]
        image = device.input if table == "input" else device.holding
        return image.start, image.words[:-1]

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.shutdown()  # type: ignore[no-untyped-call]
