"""What the agent reads from its devices, in gridmesh units and signs.

A reading is ``None`` when its device did not answer (timeout, exception, bad
registers): the policy then treats the data as stale.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeterReading:
    power_w: int  # + importing from the grid
    import_wh: int  # counter
    export_wh: int  # counter


@dataclass(frozen=True)
class InverterReading:
    pv_power_w: int
    pv_energy_wh: int  # counter
    rated_power_w: int


@dataclass(frozen=True)
class BatteryReading:
    stored_wh: int
    capacity_wh: int
    soc_pct: int
    power_w: int  # + discharging
    max_charge_w: int
    max_discharge_w: int
    soc_min_pct: int
    soc_max_pct: int
    charge_wh: int  # counter, AC side
    discharge_wh: int  # counter, AC side


@dataclass(frozen=True)
class Readings:
    t_s: int
    meter: MeterReading | None
    inverter: InverterReading | None
    battery: BatteryReading | None
    has_inverter: bool
    has_battery: bool

    @property
    def fresh(self) -> bool:
        """Every device this household has answered."""
        return (
            self.meter is not None
            and (self.inverter is not None or not self.has_inverter)
            and (self.battery is not None or not self.has_battery)
        )
