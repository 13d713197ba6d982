"""What a household's devices can tell and do, in gridmesh units: the one place the
sign convention is written.

- Grid meter power is positive while the household **imports** from the grid.
- Battery power (and its setpoint) is positive while the battery **discharges**.
- Energy counters only grow: import, export, PV, charge and discharge separately.

Readings (:mod:`edge.readings`) have these shapes; the Modbus driver
(:class:`edge.drivers.ModbusHousehold`) implements the controls for any template.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from edge.readings import Readings


@runtime_checkable
class Meter(Protocol):
    @property
    def power_w(self) -> int: ...  # W, + import


@runtime_checkable
class EnergyMeter(Protocol):
    @property
    def import_wh(self) -> int: ...  # Wh, counter

    @property
    def export_wh(self) -> int: ...  # Wh, counter


@runtime_checkable
class PvInverter(Protocol):
    @property
    def pv_power_w(self) -> int: ...  # W, AC output

    @property
    def pv_energy_wh(self) -> int: ...  # Wh, counter

    @property
    def rated_power_w(self) -> int: ...  # W, nameplate


@runtime_checkable
class Battery(Protocol):
    @property
    def soc_pct(self) -> int: ...

    @property
    def stored_wh(self) -> int: ...

    @property
    def capacity_wh(self) -> int: ...

    @property
    def power_w(self) -> int: ...  # W, + discharge


@runtime_checkable
class BatteryControl(Protocol):
    async def set_battery_w(self, power_w: int) -> bool: ...  # + discharge; False: not written

    async def release_battery(self) -> bool: ...  # the battery self-consumes on its own


@runtime_checkable
class PowerLimiter(Protocol):
    async def set_pv_limit_pct(self, limit_pct: int) -> bool: ...  # % of rating; False: not written


class HouseholdDevices(Protocol):
    """The household's devices as :class:`edge.agent.Agent` drives them
    (:class:`edge.drivers.ModbusHousehold` on Modbus)."""

    async def read(self, t_s: int) -> Readings: ...

    async def set_battery_w(self, power_w: int) -> bool: ...

    async def release_battery(self) -> bool: ...

    async def set_pv_limit_pct(self, limit_pct: int) -> bool: ...

    def stats(self) -> dict[str, int]: ...

    async def close(self) -> None: ...
