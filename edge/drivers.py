"""Modbus TCP drivers: a household's meter, inverter and battery from their templates.

A driver is generic over its register-map template (:mod:`edge.registers`): it reads
each device in as few requests as the template's read plan allows and decodes the
points into gridmesh units. A failed request makes that device's reading unavailable
(``None``) for this cycle; the client reconnects on the next read. The last battery
command (a setpoint, or control handed back to the battery) is written again after
every reconnect. Devices sharing an endpoint share a
link (one request at a time, with the configured gap between frames); a device that
keeps failing is defective and is only tried again after a pause
(:mod:`edge.device_health`), counted in the time of the readings (the virtual clock's in
a testbed). Readings no real device could give are refused
(:mod:`edge.plausibility`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pymodbus.exceptions import ModbusException

from edge.config import DeviceConfig, ModbusConfig
from edge.device_health import DeviceHealth
from edge.modbus_link import ModbusLink
from edge.plausibility import reading_problem
from edge.readings import BatteryReading, InverterReading, MeterReading, Readings
from edge.registers.codec import RegisterError, decode_block, encode_point, read_plan
from edge.registers.template import DeviceTemplate, load_template

log = logging.getLogger("gridmesh.edge.drivers")


@dataclass(frozen=True)
class BoundDevice:
    template: DeviceTemplate
    unit_id: int
    link: ModbusLink


class ModbusHousehold:
    """One household's devices, each on its own endpoint or sharing one (a link each)."""

    def __init__(
        self, config: ModbusConfig, name: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name or f"{config.host}:{config.port}"
        links: dict[tuple[str, int], ModbusLink] = {}

        def bind(device: DeviceConfig) -> BoundDevice:
            where = (device.host or config.host, device.port or config.port)
            if where not in links:
                links[where] = ModbusLink(*where, config.timeout_ms, config.frame_gap_ms, clock, sleep)
            return BoundDevice(load_template(device.template), device.unit_id, links[where])

        self.meter = bind(config.meter)
        self.inverter = bind(config.inverter) if config.inverter else None
        self.battery = bind(config.battery) if config.battery else None
        self.links = tuple(links.values())
        self._now_s = 0.0  # the time of the last read: wall time on a device, virtual in a testbed
        self.health = {d.template.name: DeviceHealth() for d in self._devices()}
        self.skipped = 0  # reads not sent to a defective device
        self._battery_command: int | None = None  # the last setpoint; None: control handed back
        self._commanded = False
        self._last: dict[str, dict[str, int]] = {}  # each device's last good read, by template
        self._needs_reapply = False
        self._revert_s = config.setpoint_revert_s
        self._revert_pending = True  # written once per connection, before the first command
        self.failures = 0
        self.reapplied = 0  # battery commands written again after a reconnect or a failed write

    async def _ensure_connected(self, device: BoundDevice) -> None:
        state = await device.link.ensure_connected()
        if state is False:
            raise ConnectionError(f"{device.link.where}: not connected")
        battery_link = self.battery.link if self.battery is not None else None
        if state is None and device.link is battery_link:
            self._revert_pending = True
            if self._commanded:
                self._needs_reapply = True  # a reconnected battery gets its last command again

    def _devices(self) -> list[BoundDevice]:
        return [d for d in (self.meter, self.inverter, self.battery) if d is not None]

    async def _read_device(self, device: BoundDevice, now_s: float) -> dict[str, int] | None:
        health = self.health[device.template.name]
        if not health.may_try(now_s):
            self.skipped += 1
            return None
        values: dict[str, int] = {}
        try:
            await self._ensure_connected(device)
            client = device.link.client
            for block in read_plan(device.template):
                read = (client.read_input_registers if block.table == "input"
                        else client.read_holding_registers)
                response = await device.link.request(functools.partial(
                    read, block.address, count=block.count, device_id=device.unit_id))
                if response.isError():
                    raise ModbusException(f"exception response {response}")
                values.update(decode_block(device.template, block, response.registers))
            problem = reading_problem(device.template.kind, values)
            if problem:
                raise RegisterError(f"implausible reading, not used: {problem}")
            self._last[device.template.name] = values
            if health.succeeded():
                log.warning("%s: %s (unit %d) answers again", self.name, device.template.name,
                            device.unit_id)
        except (ModbusException, RegisterError, ConnectionError, OSError) as exc:
            self.failures += 1
            log.warning("%s: %s (unit %d) unavailable: %s", self.name,
                        device.template.name, device.unit_id, exc)
            if health.failed(now_s):
                log.warning("%s: %s (unit %d) defective after %d failures; retrying at intervals",
                            self.name, device.template.name, device.unit_id, health.failures_in_row)
            return None
        return values

    async def read(self, t_s: int) -> Readings:
        self._now_s = t_s
        meter = await self._read_device(self.meter, t_s)
        inverter = await self._read_device(self.inverter, t_s) if self.inverter else None
        battery = await self._read_device(self.battery, t_s) if self.battery else None
        if self._needs_reapply and self._commanded and battery is not None:  # it answers again
            if self._battery_command is None:
                ok = await self.release_battery()
            else:
                ok = await self.set_battery_w(self._battery_command)
            self.reapplied += ok
        return Readings(
            t_s,
            MeterReading(meter["power_w"], meter["import_wh"], meter["export_wh"])
            if meter else None,
            InverterReading(inverter["pv_power_w"], inverter["pv_energy_wh"],
                            inverter["rated_power_w"]) if inverter else None,
            BatteryReading(
                battery["stored_wh"], battery["capacity_wh"], battery["soc_pct"],
                battery["power_w"], battery["max_charge_w"], battery["max_discharge_w"],
                battery["soc_min_pct"], battery["soc_max_pct"], battery["charge_wh"],
                battery["discharge_wh"],
            ) if battery else None,
            has_inverter=self.inverter is not None,
            has_battery=self.battery is not None,
        )

    async def set_battery_w(self, power_w: int) -> bool:
        """Write the battery's power setpoint (+discharge); remembered for reconnects."""
        if self.battery is None:
            return False
        self._battery_command, self._commanded = power_w, True
        ok = await self._write_revert() and await self._write_setpoint(self.battery, "setpoint_w", power_w)
        self._needs_reapply = not ok
        return ok

    async def _write_revert(self) -> bool:
        """Tell the battery how long a command holds (once per connection)."""
        assert self.battery is not None
        if not self._revert_pending or not self.battery.template.has_point("setpoint_revert_s"):
            return True
        ok = await self._write(self.battery, "setpoint_revert_s", self._revert_s)
        self._revert_pending = not ok
        return ok

    async def release_battery(self) -> bool:
        """Hand control back to the battery (its enable switches off): it keeps the
        household self-consuming on its own. Remembered for reconnects."""
        if self.battery is None:
            return False
        self._battery_command, self._commanded = None, True
        ok = True
        for point in self.battery.template.points:
            if point.enable is not None:
                ok = await self._write(self.battery, point.name, 0) and ok
        self._needs_reapply = not ok
        return ok

    async def set_pv_limit_pct(self, limit_pct: int) -> bool:
        """Cap the inverter's PV output at ``limit_pct`` % of its rating (100: no cap)."""
        if self.inverter is None or not self.inverter.template.has_point("export_limit_pct"):
            return False
        return await self._write_setpoint(self.inverter, "export_limit_pct", limit_pct)

    async def _write_setpoint(self, device: BoundDevice, name: str, value: int) -> bool:
        """Write a setpoint point after the template's enable switches."""
        return await self._write(device, name, value, with_enables=True)

    async def _write(self, device: BoundDevice, name: str, value: int, with_enables: bool = False) -> bool:
        """Write one point in the device's own scale (SunSpec scale factors come from its
        last read), after its enable switches if asked."""
        point = device.template.point(name)
        try:
            await self._ensure_connected(device)
            exponent = None
            if point.scale_factor is not None:
                known = self._last.get(device.template.name) or await self._read_device(device, self._now_s)
                if known is None:
                    raise ConnectionError(f"scale factor {point.scale_factor} unknown")
                exponent = known[point.scale_factor]
            writes = [(p, p.enable) for p in device.template.points
                      if with_enables and p.enable is not None]
            writes.append((point, value))
            for target, target_value in writes:
                words = encode_point(target, target_value, exponent if target is point else None)
                response = await device.link.request(functools.partial(
                    device.link.client.write_registers, target.address, words, device_id=device.unit_id))
                if response.isError():
                    raise ModbusException(f"{target.name}: exception response {response}")
        except (ModbusException, RegisterError, ConnectionError, OSError) as exc:
            self.failures += 1
            log.warning("%s: %s %s = %d not written: %s", self.name, device.template.name, name,
                        value, exc)
            return False
        return True

    def stats(self) -> dict[str, int]:
        return {"device_failures": self.failures, "device_skipped": self.skipped,
                "battery_reapplied": self.reapplied,
                "devices_defective": sum(h.defective for h in self.health.values())}

    async def close(self) -> None:
        for link in self.links:
            link.close()


