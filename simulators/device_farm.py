"""Every household's simulated devices, served over Modbus TCP from one process.

A :class:`DeviceFarm` runs one :class:`~simulators.modbus_server.DeviceServer` per
household on a free port of ``host``: unit id 1 is the grid meter, 2 the PV inverter and
3 the battery (prosumers only), with the bundled templates ``gridmesh-meter``,
``gridmesh-inverter`` and ``gridmesh-battery``. Time moves only when
:meth:`DeviceFarm.advance_to` is called (by the virtual clock): each household is
integrated with :func:`simulators.physics.step` from its last time to the new one, with
the setpoints last written over Modbus, and its register images are updated.

Faults (:meth:`DeviceFarm.set_fault`) are those of :class:`~simulators.modbus_server.Fault`
(a device that answers late, not at all, with an exception or with frozen values) and
two of the farm's own: ``counter_reset`` (a device's energy counters start again from
zero, as after a meter exchange) and ``dropped`` (the household's Modbus endpoint
closes its connections and refuses new ones until the fault is cleared).

Powers in the registers are the mean over the last step; energy counters are totals
since the farm started. A battery setpoint, its enable switch or an inverter limit
written over Modbus takes effect from the next step. Batteries start with the switch
off, keeping their households self-consuming until an agent takes control.

    farm = DeviceFarm(households, ProfileSet.load_bundled(), start_s)
    await farm.start()
    host, port = farm.endpoint("h001")
    records = farm.advance_to(start_s + 900)
    await farm.stop()
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from types import TracebackType

from edge.registers.template import load_template
from simulators.meter_values import three_phase_values
from simulators.modbus_server import SERVER_FAULTS, DeviceServer, Fault
from simulators.physics import (
    HouseholdSpec,
    HouseholdState,
    StepFlows,
    StepRecord,
    average_power_w,
    initial_state,
    soc_pct,
    step,
    stored_wh,
)
from simulators.profiles import ProfileSet

__all__ = ["BATTERY_UNIT", "INVERTER_UNIT", "METER_UNIT", "DeviceFarm", "StepRecord", "device_values"]

METER_UNIT, INVERTER_UNIT, BATTERY_UNIT = 1, 2, 3
COUNTERS = {METER_UNIT: ("import_wh", "export_wh"), INVERTER_UNIT: ("pv_energy_wh",),
            BATTERY_UNIT: ("charge_wh", "discharge_wh")}
FARM_FAULTS = ("counter_reset", "dropped")
FAULT_NAMES = (*SERVER_FAULTS, *FARM_FAULTS)
TEMPLATES = {
    METER_UNIT: "gridmesh-meter", INVERTER_UNIT: "gridmesh-inverter", BATTERY_UNIT: "gridmesh-battery",
}


def device_units(spec: HouseholdSpec) -> tuple[int, ...]:
    """The unit ids a household's server answers for."""
    units = [METER_UNIT]
    if spec.pv_profile is not None:
        units.append(INVERTER_UNIT)
    if spec.battery is not None:
        units.append(BATTERY_UNIT)
    return tuple(units)


def device_values(
    spec: HouseholdSpec, state: HouseholdState, last: StepFlows | None
) -> dict[int, dict[str, int]]:
    """What each of a household's devices shows, by unit id and point name."""
    duration = last.duration_s if last else 0

    def power(energy_wh: int) -> int:
        return average_power_w(energy_wh, duration)

    net_wh = last.import_wh - last.export_wh if last else 0
    values: dict[int, dict[str, int]] = {
        METER_UNIT: {
            **three_phase_values(power(net_wh)),  # shown where the meter's template has them
            "power_w": power(net_wh),
            "import_wh": state.import_total_wh,
            "export_wh": state.export_total_wh,
        }
    }
    if spec.pv_profile is not None:
        values[INVERTER_UNIT] = {
            "pv_power_w": power(last.pv_wh if last else 0),
            "pv_energy_wh": state.pv_total_wh,
            "rated_power_w": spec.pv_peak_w,
            "export_limit_pct": state.export_limit_pct,
        }
    if spec.battery is not None:
        battery = spec.battery
        values[BATTERY_UNIT] = {
            "stored_wh": stored_wh(state),
            "capacity_wh": battery.capacity_wh,
            "soc_pct": soc_pct(spec, state),
            "power_w": power(last.discharge_wh - last.charge_wh if last else 0),
            "max_charge_w": battery.max_charge_w,
            "max_discharge_w": battery.max_discharge_w,
            "soc_min_pct": battery.soc_min_pct,
            "soc_max_pct": battery.soc_max_pct,
            "charge_wh": state.charge_total_wh,
            "discharge_wh": state.discharge_total_wh,
            "setpoint_w": state.setpoint_w,
            "setpoint_enable": int(state.remote),
            "setpoint_revert_s": state.revert_s,
        }
    return values


class DeviceFarm:
    """Simulated meters, inverters and batteries of many households, on real TCP ports."""

    def __init__(
        self, households: Sequence[HouseholdSpec], profiles: ProfileSet, start_s: int,
        host: str = "127.0.0.1", meter_template: str = TEMPLATES[METER_UNIT],
        inverter_template: str = TEMPLATES[INVERTER_UNIT], battery_template: str = TEMPLATES[BATTERY_UNIT],
    ) -> None:
        self.host = host
        self.templates = {METER_UNIT: meter_template, INVERTER_UNIT: inverter_template,
                          BATTERY_UNIT: battery_template}
        self.profiles = profiles
        self._specs = {h.id: h for h in households}
        if len(self._specs) != len(households):
            raise ValueError("household ids must be unique")
        self._states = {h.id: initial_state(h, start_s) for h in households}
        self._last: dict[str, StepFlows | None] = {h.id: None for h in households}
        self._servers: dict[str, DeviceServer] = {}
        self._ports: dict[str, int] = {}
        self._dropped: set[str] = set()
        self._counter_offsets: dict[tuple[str, int], dict[str, int]] = {}

    async def start(self, port_base: int | None = None) -> None:
        """Start one Modbus TCP server per household: on free ports, or on
        ``port_base``, ``port_base + 1``, ... in household order."""
        templates = {unit: load_template(name) for unit, name in self.templates.items()}
        try:
            for index, (household_id, spec) in enumerate(self._specs.items()):
                server = DeviceServer(
                    {unit: templates[unit] for unit in device_units(spec)}, self.host,
                    on_write=functools.partial(self._written, household_id),
                )
                port = await server.start(0 if port_base is None else port_base + index)
                self._servers[household_id] = server
                self._ports[household_id] = port
                self._publish(household_id)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        servers, self._servers = self._servers, {}
        for household_id, server in servers.items():
            if household_id not in self._dropped:
                await server.stop()
        self._dropped.clear()

    async def set_fault(self, household_id: str, unit: int, fault: str | None) -> None:
        """Make one device misbehave by name (see the module's doc), or clear the fault
        (None); ``counter_reset`` happens once, when set."""
        server = self.server(household_id)
        if unit not in device_units(self._specs[household_id]):
            raise ValueError(f"{household_id} has no unit {unit}")
        if fault is not None and fault not in FAULT_NAMES:
            raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULT_NAMES)})")
        if fault == "counter_reset":
            state = self._states[household_id]
            totals = {"import_wh": state.import_total_wh, "export_wh": state.export_total_wh,
                      "pv_energy_wh": state.pv_total_wh, "charge_wh": state.charge_total_wh,
                      "discharge_wh": state.discharge_total_wh}
            self._counter_offsets[household_id, unit] = {n: totals[n] for n in COUNTERS[unit]}
            self._publish(household_id)
            return
        dropped = fault == "dropped"
        if dropped and household_id not in self._dropped:
            self._dropped.add(household_id)
            await server.stop()
        elif not dropped and household_id in self._dropped:
            self._dropped.discard(household_id)
            await server.start(self._ports[household_id])
        if not dropped:
            server.set_fault(unit, Fault.named(fault) if fault is not None else None)
            self._publish(household_id)  # a device that thaws shows live values at once

    async def __aenter__(self) -> DeviceFarm:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def household_ids(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def server(self, household_id: str) -> DeviceServer:
        """The Modbus server of one household (its registers, for tests and tools)."""
        return self._servers[household_id]

    def endpoint(self, household_id: str) -> tuple[str, int]:
        """(host, port) of a household's Modbus TCP server."""
        try:
            server = self._servers[household_id]
        except KeyError:
            raise KeyError(f"no running devices for household {household_id!r}") from None
        return self.host, server.port

    def spec(self, household_id: str) -> HouseholdSpec:
        return self._specs[household_id]

    def state(self, household_id: str) -> HouseholdState:
        return self._states[household_id]

    def values(self, household_id: str) -> dict[int, dict[str, int]]:
        """What the household's devices show now, by unit id and point name (the points
        each device's template has)."""
        spec = self._specs[household_id]
        values = device_values(spec, self._states[household_id], self._last[household_id])
        shown: dict[int, dict[str, int]] = {}
        for unit, unit_values in values.items():
            template = load_template(self.templates[unit])
            offsets = self._counter_offsets.get((household_id, unit), {})
            shown[unit] = {name: v - offsets.get(name, 0) for name, v in unit_values.items()
                           if template.has_point(name)}
        return shown

    def advance_to(self, t_s: int) -> list[StepRecord]:
        """Integrate every household up to ``t_s``; one record per household that moved."""
        records: list[StepRecord] = []
        for household_id, spec in self._specs.items():
            state = self._states[household_id]
            if t_s < state.t_s:
                raise ValueError(f"{household_id}: cannot go back from {state.t_s} to {t_s}")
            if t_s == state.t_s:
                continue
            load_wh = self.profiles.energy_wh(spec.load_profile, state.t_s, t_s, spec.annual_load_kwh)
            pv_wh = 0
            if spec.pv_profile is not None:
                pv_wh = self.profiles.energy_wh(spec.pv_profile, state.t_s, t_s, spec.pv_peak_w)
            state, flows = step(spec, state, load_wh, pv_wh, t_s)
            self._states[household_id] = state
            self._last[household_id] = flows
            remote = state.remote if spec.battery is not None else None
            records.append(StepRecord(household_id, flows, stored_wh(state), soc_pct(spec, state), remote))
            if household_id in self._servers:
                self._publish(household_id)
        return records

    def _publish(self, household_id: str) -> None:
        server = self._servers[household_id]
        for unit, values in self.values(household_id).items():
            server.update(unit, values)

    def _written(self, household_id: str, unit: int, name: str, value: int) -> None:
        state = self._states[household_id]
        if unit == BATTERY_UNIT and name == "setpoint_w":
            self._states[household_id] = dataclasses.replace(state, setpoint_w=value, commanded_s=state.t_s)
        elif unit == BATTERY_UNIT and name == "setpoint_enable":
            self._states[household_id] = dataclasses.replace(state, remote=bool(value), commanded_s=state.t_s)
        elif unit == BATTERY_UNIT and name == "setpoint_revert_s":
            self._states[household_id] = dataclasses.replace(state, revert_s=value)
        elif unit == INVERTER_UNIT and name == "export_limit_pct":
            self._states[household_id] = dataclasses.replace(state, export_limit_pct=value)
