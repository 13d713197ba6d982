"""Modbus TCP drivers: a household's meter, inverter and battery from their templates.

A driver is generic over its register-map template (:mod:`edge.registers`): it reads
each device in as few requests as the template's read plan allows and decodes the
points into gridmesh units. A failed request makes that device's reading unavailable
(``None``) for this cycle; the client reconnects on the next read. The last battery
setpoint is written again after every reconnect.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.config import DeviceConfig, ModbusConfig
from edge.device_health import DeviceHealth
from edge.plausibility import reading_problem
from edge.readings import BatteryReading, InverterReading, MeterReading, Readings
from edge.registers.codec import RegisterError, decode_block, encode_point, read_plan
from edge.registers.template import DeviceTemplate, load_template

log = logging.getLogger("gridmesh.edge.drivers")


@dataclass(frozen=True)
class BoundDevice:
    template: DeviceTemplate
    unit_id: int


class ModbusHousehold:
    """One household's devices behind one Modbus TCP endpoint."""

    def __init__(
        self, config: ModbusConfig, name: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name or f"{config.host}:{config.port}"
        self._client = AsyncModbusTcpClient(
            config.host, port=config.port, timeout=config.timeout_ms / 1000, retries=0,
            reconnect_delay=0,
        )
        self.meter = _bind(config.meter)
        self.inverter = _bind(config.inverter) if config.inverter else None
        self.battery = _bind(config.battery) if config.battery else None
        # One request at a time on the link, with a gap between frames (RS485 gateways).
        self._link = asyncio.Lock()
        self._gap_s = config.frame_gap_ms / 1000
        self._last_frame = -math.inf
        self._clock, self._sleep = clock, sleep
        self.health = {d.template.name: DeviceHealth() for d in self._devices()}
        self.skipped = 0  # reads not sent to a defective device
        self._setpoint_w: int | None = None
        self._last: dict[str, dict[str, int]] = {}  # each device's last good read, by template
        self._needs_reapply = False
        self.failures = 0

    async def _ensure_connected(self) -> bool:
        if self._client.connected:
            return True
        ok = bool(await self._client.connect())
        if ok and self._setpoint_w is not None:
            self._needs_reapply = True
        return ok

    def _devices(self) -> list[BoundDevice]:
        return [d for d in (self.meter, self.inverter, self.battery) if d is not None]

    async def _request(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """One frame on the link: after the previous one, and the configured gap."""
        async with self._link:
            wait = self._last_frame + self._gap_s - self._clock()
            if wait > 0:
                await self._sleep(wait)
            try:
                return await call()
            finally:
                self._last_frame = self._clock()

    async def _read_device(self, device: BoundDevice) -> dict[str, int] | None:
        health = self.health[device.template.name]
        if not health.may_try(self._clock()):
            self.skipped += 1
            return None
        values: dict[str, int] = {}
        try:
            if not await self._ensure_connected():
                raise ConnectionError("not connected")
            for block in read_plan(device.template):
                read = (self._client.read_input_registers if block.table == "input"
                        else self._client.read_holding_registers)
                response = await self._request(functools.partial(
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
            if health.failed(self._clock()):
                log.warning("%s: %s (unit %d) defective after %d failures; retrying at intervals",
                            self.name, device.template.name, device.unit_id, health.failures_in_row)
            return None
        return values

    async def read(self, t_s: int) -> Readings:
        meter = await self._read_device(self.meter)
        inverter = await self._read_device(self.inverter) if self.inverter else None
        battery = await self._read_device(self.battery) if self.battery else None
        if self._needs_reapply and self._setpoint_w is not None:
            await self.set_battery_w(self._setpoint_w)
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
        self._setpoint_w = power_w
        ok = await self._write_setpoint(self.battery, "setpoint_w", power_w)
        self._needs_reapply = not ok
        return ok

    async def set_pv_limit_pct(self, limit_pct: int) -> bool:
        """Cap the inverter's PV output at ``limit_pct`` % of its rating (100: no cap)."""
        if self.inverter is None or not self.inverter.template.has_point("export_limit_pct"):
            return False
        return await self._write_setpoint(self.inverter, "export_limit_pct", limit_pct)

    async def _write_setpoint(self, device: BoundDevice, name: str, value: int) -> bool:
        """Write a setpoint point, after the template's enable switches, in the device's
        own scale (SunSpec scale factors come from its last read)."""
        point = device.template.point(name)
        try:
            if not await self._ensure_connected():
                raise ConnectionError("not connected")
            exponent = None
            if point.scale_factor is not None:
                known = self._last.get(device.template.name) or await self._read_device(device)
                if known is None:
                    raise ConnectionError(f"scale factor {point.scale_factor} unknown")
                exponent = known[point.scale_factor]
            writes = [(p, p.enable) for p in device.template.points if p.enable is not None]
            writes.append((point, value))
            for target, target_value in writes:
                words = encode_point(target, target_value, exponent if target is point else None)
                response = await self._request(functools.partial(
                    self._client.write_registers, target.address, words, device_id=device.unit_id))
                if response.isError():
                    raise ModbusException(f"{target.name}: exception response {response}")
        except (ModbusException, RegisterError, ConnectionError, OSError) as exc:
            self.failures += 1
            log.warning("%s: %s %s = %d not written: %s", self.name, device.template.name, name,
                        value, exc)
            return False
        return True

    async def close(self) -> None:
        self._client.close()


def _bind(config: DeviceConfig) -> BoundDevice:
    return BoundDevice(load_template(config.template), config.unit_id)
