"""Household physics: load, PV and a battery behind one grid meter, in integer units.

Pure functions on frozen dataclasses; no I/O. One :func:`step` moves a household from
its state's time to ``end_s`` given the load and PV energy of that interval (from the
profiles) and the battery setpoint and inverter limit last written to its devices.

Model, per step:

- **PV** produces ``pv_wh``; the inverter's export limit caps its AC output at
  ``export_limit_pct`` % of ``pv_peak_w``. What is cut is ``curtailed_wh``.
- **Battery** runs in one of two modes. Under remote control (``remote``: its setpoint
  switch is on) it follows ``setpoint_w`` (+discharge), clamped to ``max_charge_w`` /
  ``max_discharge_w``, moving towards it at ``ramp_w_per_s`` (a step moves the energy
  of that trajectory's mean power). Otherwise, as a hybrid inverter does on its own, it
  keeps the household self-consuming: it charges from the step's PV surplus and
  covers its deficit, within its power limits. Either way the energy it moves is held
  inside its SoC window ``soc_min_pct``..``soc_max_pct``. With ``revert_s`` set, remote
  control lapses when no command has come for that long (``commanded_s``), as SunSpec's
  ``WSetRvrtTms`` makes a real battery return to its own mode when its controller falls
  silent. ``charge_wh`` and ``discharge_wh`` are AC-side.
  The whole round-trip loss is booked on charging: ``charge_wh`` adds
  ``charge_wh * efficiency_pct / 100`` to the stored energy and ``discharge_wh`` takes
  exactly ``discharge_wh`` out, so a full cycle returns ``efficiency_pct`` % of what went
  in. Stored energy is kept in mWh so this is exact.
- **Grid meter** settles the rest: ``import_wh - export_wh == load_wh - pv_wh -
  discharge_wh + charge_wh``, exactly, every step (import and export are netted within
  a step, as a bidirectional meter that is read once per step would see them).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from broker.messages import ID
from broker.schema import bounded, check_bounds
from broker.units import SECONDS_PER_HOUR

MWH_PER_WH = 1000


@dataclass(frozen=True)
class BatterySpec:
    capacity_wh: int = bounded(min=1, max=10_000_000)
    soc_min_pct: int = bounded(10, min=0, max=100)
    soc_max_pct: int = bounded(90, min=0, max=100)
    max_charge_w: int = bounded(2500, min=0, max=10_000_000)
    max_discharge_w: int = bounded(2500, min=0, max=10_000_000)
    efficiency_pct: int = bounded(90, min=1, max=100)  # round trip
    ramp_w_per_s: int = bounded(0, min=0, max=10_000_000)  # how fast power may change; 0: at once

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.soc_min_pct > self.soc_max_pct:
            raise ValueError(f"soc_min_pct {self.soc_min_pct} is above soc_max_pct {self.soc_max_pct}")

    @property
    def min_mwh(self) -> int:
        return self.capacity_wh * self.soc_min_pct * MWH_PER_WH // 100

    @property
    def max_mwh(self) -> int:
        return self.capacity_wh * self.soc_max_pct * MWH_PER_WH // 100


@dataclass(frozen=True)
class HouseholdSpec:
    id: str = bounded(pattern=ID)
    role: Literal["prosumer", "pv", "consumer", "storage"] = bounded(
        choices=("prosumer", "pv", "consumer", "storage"))
    load_profile: str = bounded(max_len=64)
    annual_load_kwh: int = bounded(min=0, max=10_000_000)
    pv_profile: str | None = None
    pv_peak_w: int = bounded(0, min=0, max=10_000_000)
    battery: BatterySpec | None = None

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.role not in ("prosumer", "pv", "consumer", "storage"):
            raise ValueError(f"{self.id}: role must be prosumer, pv, consumer or storage, got {self.role!r}")
        if self.role == "storage" and (self.battery is None or self.pv_profile is not None
                                       or self.annual_load_kwh != 0):
            raise ValueError(f"{self.id}: a storage member is a battery alone (no PV, no load)")
        if (self.pv_profile is None) != (self.pv_peak_w == 0):
            raise ValueError(f"{self.id}: pv_profile and pv_peak_w must be given together")
        if self.role == "consumer" and (self.pv_profile is not None or self.battery is not None):
            raise ValueError(f"{self.id}: a consumer has no PV and no battery")
        if self.role == "pv" and (self.pv_profile is None or self.battery is not None):
            raise ValueError(f"{self.id}: a pv household has PV and no battery")


@dataclass(frozen=True)
class HouseholdState:
    t_s: int
    stored_mwh: int = 0
    import_total_wh: int = 0
    export_total_wh: int = 0
    pv_total_wh: int = 0
    charge_total_wh: int = 0
    discharge_total_wh: int = 0
    setpoint_w: int = 0  # + discharge
    remote: bool = False  # the battery follows setpoint_w; False: it self-consumes on its own
    commanded_s: int = 0  # when the last setpoint or enable was written
    revert_s: int = 0  # remote control lapses this long after the last command; 0: never
    export_limit_pct: int = 100
    battery_power_w: int = 0  # what the battery delivered at the end of the last step


@dataclass(frozen=True)
class StepFlows:
    start_s: int
    end_s: int
    load_wh: int
    pv_wh: int  # after curtailment
    curtailed_wh: int
    charge_wh: int
    discharge_wh: int
    import_wh: int
    export_wh: int

    @property
    def duration_s(self) -> int:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class StepRecord:
    """What one household did in one step, for the run's results."""

    household: str
    flows: StepFlows
    stored_wh: int
    soc_pct: int
    battery_remote: bool | None = None  # under the agent's control this step; None: no battery


def initial_state(spec: HouseholdSpec, t_s: int, soc_pct: int = 50) -> HouseholdState:
    """A household at ``t_s`` with its battery (if any) at ``soc_pct`` (inside its window)."""
    stored = 0
    if spec.battery is not None:
        pct = min(max(soc_pct, spec.battery.soc_min_pct), spec.battery.soc_max_pct)
        stored = spec.battery.capacity_wh * pct * MWH_PER_WH // 100
    return HouseholdState(t_s, stored_mwh=stored)


def stored_wh(state: HouseholdState) -> int:
    return state.stored_mwh // MWH_PER_WH


def soc_pct(spec: HouseholdSpec, state: HouseholdState) -> int:
    """State of charge in whole percent, rounded half up; 0 without a battery."""
    if spec.battery is None:
        return 0
    denominator = spec.battery.capacity_wh * MWH_PER_WH
    return (200 * state.stored_mwh + denominator) // (2 * denominator)


def _energy_wh_floor(power_w: int, duration_s: int) -> int:
    return power_w * duration_s // SECONDS_PER_HOUR


def battery_energy(
    battery: BatterySpec, stored_mwh: int, setpoint_w: int, duration_s: int
) -> tuple[int, int]:
    """(charge_wh, discharge_wh) the battery moves at ``setpoint_w`` for ``duration_s``."""
    return _move(battery, stored_mwh, _energy_wh_floor(setpoint_w, duration_s) if setpoint_w >= 0
                 else -_energy_wh_floor(-setpoint_w, duration_s), duration_s)


def self_consumption_energy(
    battery: BatterySpec, stored_mwh: int, net_wh: int, duration_s: int
) -> tuple[int, int]:
    """(charge_wh, discharge_wh) of a battery that absorbs the surplus (``net_wh`` < 0) or
    covers the deficit (``net_wh`` > 0) of a household for ``duration_s``."""
    return _move(battery, stored_mwh, net_wh, duration_s)


def _move(battery: BatterySpec, stored_mwh: int, wanted_wh: int, duration_s: int) -> tuple[int, int]:
    """Discharge (``wanted_wh`` > 0) or charge (< 0) as much of ``wanted_wh`` as the power
    limits and the SoC window allow."""
    if wanted_wh > 0:
        limit = _energy_wh_floor(battery.max_discharge_w, duration_s)
        room = max(0, stored_mwh - battery.min_mwh) // MWH_PER_WH
        return 0, min(wanted_wh, limit, room)
    if wanted_wh < 0:
        limit = _energy_wh_floor(battery.max_charge_w, duration_s)
        gain_per_wh = battery.efficiency_pct * MWH_PER_WH // 100
        room = max(0, battery.max_mwh - stored_mwh) // gain_per_wh
        return min(-wanted_wh, limit, room), 0
    return 0, 0


def step(
    spec: HouseholdSpec, state: HouseholdState, load_wh: int, pv_wh: int, end_s: int
) -> tuple[HouseholdState, StepFlows]:
    """Advance ``state`` to ``end_s`` with the interval's load and PV energy."""
    duration_s = end_s - state.t_s
    if duration_s < 0:
        raise ValueError(f"{spec.id}: cannot step back from {state.t_s} to {end_s}")
    if load_wh < 0 or pv_wh < 0:
        raise ValueError(f"{spec.id}: load_wh and pv_wh must be >= 0, got {load_wh}, {pv_wh}")
    if spec.pv_profile is None:
        pv_wh = 0
    cap_wh = spec.pv_peak_w * state.export_limit_pct * duration_s // (100 * SECONDS_PER_HOUR)
    pv_out = min(pv_wh, cap_wh)
    charge = discharge = 0
    stored = state.stored_mwh
    power_end = 0
    remote = state.remote and not (state.revert_s and state.t_s - state.commanded_s >= state.revert_s)
    if spec.battery is not None:
        battery = spec.battery
        if remote:
            target = max(-battery.max_charge_w, min(battery.max_discharge_w, state.setpoint_w))
            power_mean, power_end = ramp(state.battery_power_w, target, battery.ramp_w_per_s, duration_s)
            charge, discharge = battery_energy(battery, stored, power_mean, duration_s)
        else:
            charge, discharge = self_consumption_energy(battery, stored, load_wh - pv_out, duration_s)
            power_end = average_power_w(discharge - charge, duration_s)
        if charge == discharge == 0:
            power_end = 0  # held at the edge of its SoC window
        stored += charge * battery.efficiency_pct * MWH_PER_WH // 100 - discharge * MWH_PER_WH
    net_wh = load_wh - pv_out - discharge + charge
    flows = StepFlows(
        start_s=state.t_s, end_s=end_s, load_wh=load_wh, pv_wh=pv_out, curtailed_wh=pv_wh - pv_out,
        charge_wh=charge, discharge_wh=discharge,
        import_wh=max(net_wh, 0), export_wh=max(-net_wh, 0),
    )
    new_state = dataclasses.replace(
        state,
        t_s=end_s,
        stored_mwh=stored,
        import_total_wh=state.import_total_wh + flows.import_wh,
        export_total_wh=state.export_total_wh + flows.export_wh,
        pv_total_wh=state.pv_total_wh + pv_out,
        charge_total_wh=state.charge_total_wh + charge,
        discharge_total_wh=state.discharge_total_wh + discharge,
        battery_power_w=power_end,
        remote=remote,
    )
    return new_state, flows


def ramp(start_w: int, target_w: int, rate_w_per_s: int, duration_s: int) -> tuple[int, int]:
    """(mean power, end power) of moving from ``start_w`` towards ``target_w`` at
    ``rate_w_per_s`` (0: at once) and holding there, over ``duration_s``."""
    gap = target_w - start_w
    if rate_w_per_s == 0 or gap == 0 or duration_s <= 0:
        return target_w, target_w
    direction = 1 if gap > 0 else -1
    ramp_s = Fraction(abs(gap), rate_w_per_s)
    if ramp_s >= duration_s:  # still ramping at the end
        end = start_w + direction * rate_w_per_s * duration_s
        return (start_w + end) // 2, end
    mean = ((start_w + target_w) * ramp_s / 2 + target_w * (duration_s - ramp_s)) / duration_s
    return math.floor(mean), target_w


def average_power_w(energy_wh: int, duration_s: int) -> int:
    """Mean power of ``energy_wh`` over ``duration_s``, rounded half away from zero; 0 for no time."""
    if duration_s <= 0:
        return 0
    product = energy_wh * SECONDS_PER_HOUR
    quotient, remainder = divmod(abs(product), duration_s)
    if 2 * remainder >= duration_s:
        quotient += 1
    return quotient if product >= 0 else -quotient
