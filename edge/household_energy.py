"""What a household's readings say about its energy, for the agent's core. Pure.

Between two readings: the PV energy, and a slot's load and PV for the forecasting
history; from two meter readings, whether its counters froze; from one reading, the
power now as one slot's energy, and the power a battery following the household on its
own would run at. Signs as in :mod:`edge.readings`: meter + importing, battery +
discharging.
"""

from __future__ import annotations

from broker.units import SECONDS_PER_HOUR
from edge.forecast import SlotEnergy
from edge.readings import Readings

FROZEN_POWER_W = 100  # at this power a meter's counters move by at least 25 Wh a slot


def pv_energy_wh(prev: Readings, now: Readings) -> int | None:
    """The PV energy between two readings; None without both inverter readings."""
    if now.inverter is None or prev.inverter is None:
        return None
    return max(0, now.inverter.pv_energy_wh - prev.inverter.pv_energy_wh)


def slot_energy(slot: int, prev: Readings, now: Readings, net_wh: int) -> SlotEnergy | None:
    """The load and PV energy of ``slot`` from its first and last readings and the energy
    metered over it (+ imported); None when a device the household has did not answer."""
    pv_wh = pv_energy_wh(prev, now)
    if pv_wh is None:
        if now.has_inverter:
            return None
        pv_wh = 0
    battery_wh = 0  # + discharged
    if now.battery is not None and prev.battery is not None:
        battery_wh = (now.battery.discharge_wh - prev.battery.discharge_wh) - (
            now.battery.charge_wh - prev.battery.charge_wh)
    elif now.has_battery:
        return None
    return SlotEnergy(slot, max(0, net_wh + pv_wh + battery_wh), pv_wh)


def meter_frozen(prev: Readings, now: Readings) -> bool:
    """Energy counters standing still while both readings show power flowing the same
    way: the meter's registers are no longer live."""
    if prev.meter is None or now.meter is None:
        return False
    before, after = prev.meter, now.meter
    still = (after.import_wh, after.export_wh) == (before.import_wh, before.export_wh)
    flowing = min(abs(before.power_w), abs(after.power_w)) >= FROZEN_POWER_W
    return still and flowing and (before.power_w > 0) == (after.power_w > 0)


def self_consumption_w(readings: Readings) -> int:
    """The power (+discharge) a self-consuming battery would run at now: what the
    household draws from (+) or gives to (-) the grid without the battery."""
    if readings.meter is None or readings.battery is None:
        return 0
    return readings.meter.power_w + readings.battery.power_w


def instantaneous(readings: Readings, slot_s: int) -> SlotEnergy | None:
    """Load and PV power read now, as energy over one slot."""
    if readings.meter is None:
        return None
    pv_w = readings.inverter.pv_power_w if readings.inverter else 0
    battery_w = readings.battery.power_w if readings.battery else 0
    load_w = max(0, readings.meter.power_w + pv_w + battery_w)
    return SlotEnergy(0, load_w * slot_s // SECONDS_PER_HOUR, pv_w * slot_s // SECONDS_PER_HOUR)
