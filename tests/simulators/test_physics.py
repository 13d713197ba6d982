"""Household physics: energy is conserved, the battery keeps its limits, PV can be curtailed."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.physics import (
    BatterySpec,
    HouseholdSpec,
    HouseholdState,
    average_power_w,
    initial_state,
    ramp,
    soc_pct,
    step,
    stored_wh,
)

BATTERY = BatterySpec(5000, 10, 90, 2500, 2500, 90)
PROSUMER = HouseholdSpec("h001", "prosumer", "H0-A", 3000, "PV1", 5000, BATTERY)
CONSUMER = HouseholdSpec("h002", "consumer", "H0-B", 2000)
T0 = 1_465_171_200


def with_setpoint(setpoint_w: int, soc: int = 50, limit_pct: int = 100) -> HouseholdState:
    state = initial_state(PROSUMER, T0, soc)
    return dataclasses.replace(state, setpoint_w=setpoint_w, remote=True, export_limit_pct=limit_pct)


batteries = st.builds(
    BatterySpec,
    capacity_wh=st.integers(1, 50_000), soc_min_pct=st.integers(0, 50), soc_max_pct=st.integers(50, 100),
    max_charge_w=st.integers(0, 20_000), max_discharge_w=st.integers(0, 20_000),
    efficiency_pct=st.integers(1, 100),
)


@given(
    battery=batteries, soc=st.integers(0, 100), setpoint=st.integers(-50_000, 50_000),
    limit=st.integers(0, 100), load=st.integers(0, 20_000), pv=st.integers(0, 20_000),
    duration=st.integers(0, 7200), peak=st.integers(1, 30_000), remote=st.booleans(),
)
def test_every_step_conserves_energy_and_keeps_the_limits(
    battery: BatterySpec, soc: int, setpoint: int, limit: int, load: int, pv: int, duration: int,
    peak: int, remote: bool,
) -> None:
    spec = dataclasses.replace(PROSUMER, battery=battery, pv_peak_w=peak)
    state = dataclasses.replace(initial_state(spec, T0, soc), setpoint_w=setpoint, remote=remote,
                                export_limit_pct=limit)
    new, f = step(spec, state, load, pv, T0 + duration)
    assert f.import_wh - f.export_wh == f.load_wh - f.pv_wh - f.discharge_wh + f.charge_wh
    assert min(f.import_wh, f.export_wh) == 0
    assert f.pv_wh + f.curtailed_wh == pv and f.pv_wh * 100 * 3600 <= peak * limit * duration
    assert f.charge_wh == 0 or f.discharge_wh == 0
    assert f.charge_wh * 3600 <= battery.max_charge_w * duration
    assert f.discharge_wh * 3600 <= battery.max_discharge_w * duration
    assert battery.min_mwh <= new.stored_mwh <= battery.max_mwh
    gain = f.charge_wh * battery.efficiency_pct * 10 - f.discharge_wh * 1000
    assert new.stored_mwh - state.stored_mwh == gain
    assert new.import_total_wh - state.import_total_wh == f.import_wh
    assert new.export_total_wh - state.export_total_wh == f.export_wh
    assert new.t_s == T0 + duration and (f.start_s, f.end_s) == (T0, T0 + duration)
    if not remote:  # on its own the battery only ever shrinks the household's grid exchange
        assert f.charge_wh <= max(0, f.pv_wh - load) and f.discharge_wh <= max(0, load - f.pv_wh)


def test_without_remote_control_the_battery_keeps_the_household_self_consuming() -> None:
    own = dataclasses.replace(with_setpoint(-2000), remote=False)  # a setpoint, but switched off
    new, f = step(PROSUMER, own, 300, 700, T0 + 900)  # 400 Wh surplus
    assert (f.charge_wh, f.discharge_wh, f.import_wh, f.export_wh) == (400, 0, 0, 0)
    assert new.stored_mwh == 2_500_000 + 360_000 and new.battery_power_w == -1600
    new, f = step(PROSUMER, own, 1000, 100, T0 + 900)  # 900 Wh deficit, 625 Wh in 15 min at most
    assert (f.charge_wh, f.discharge_wh, f.import_wh, f.export_wh) == (0, 625, 275, 0)


def test_remote_control_lapses_when_no_command_comes_within_the_revert_time() -> None:
    state = dataclasses.replace(with_setpoint(-2000), commanded_s=T0, revert_s=1800)
    first, f = step(PROSUMER, state, 300, 0, T0 + 900)
    assert first.remote and f.charge_wh == 500
    second, f = step(PROSUMER, first, 300, 0, T0 + 1800)  # 900 s since the command
    assert second.remote and f.charge_wh == 500
    third, f = step(PROSUMER, second, 300, 0, T0 + 2700)  # 1800 s: lapsed, self-consuming
    assert not third.remote and (f.charge_wh, f.discharge_wh, f.import_wh) == (0, 300, 0)


def test_the_battery_follows_its_setpoint() -> None:
    new, f = step(PROSUMER, with_setpoint(-2000), 300, 0, T0 + 900)
    assert (f.charge_wh, f.discharge_wh) == (500, 0)  # 2000 W for a quarter hour
    assert new.stored_mwh == 2_500_000 + 450_000  # 90 % of what went in is stored
    assert (f.import_wh, f.export_wh) == (800, 0)
    new, f = step(PROSUMER, with_setpoint(1000), 300, 0, T0 + 900)
    assert (f.charge_wh, f.discharge_wh, f.import_wh) == (0, 250, 50)
    assert stored_wh(new) == 2250


def test_setpoints_are_clamped_to_the_power_limits() -> None:
    _, f = step(PROSUMER, with_setpoint(-9000), 0, 0, T0 + 3600)
    assert f.charge_wh == 2222  # room for 2000 Wh stored = 2222 Wh in at 90 %, below 2500 W x 1 h
    _, f = step(PROSUMER, with_setpoint(-9000, soc=20), 0, 0, T0 + 3600)
    assert f.charge_wh == 2500
    _, f = step(PROSUMER, with_setpoint(9000, soc=80), 0, 0, T0 + 3600)
    assert f.discharge_wh == 2500


def test_the_soc_window_stops_the_battery() -> None:
    state = with_setpoint(-2500, soc=88)
    new, f = step(PROSUMER, state, 0, 0, T0 + 3600)
    assert new.stored_mwh <= BATTERY.max_mwh and f.charge_wh == (4_500_000 - 4_400_000) // 900
    empty = with_setpoint(2500, soc=10)
    new, f = step(PROSUMER, empty, 100, 0, T0 + 3600)
    assert f.discharge_wh == 0 and new.stored_mwh == BATTERY.min_mwh and f.import_wh == 100
    assert soc_pct(PROSUMER, new) == 10


def test_a_full_cycle_returns_the_round_trip_efficiency() -> None:
    state = with_setpoint(-1000, soc=10)
    state, charged = step(PROSUMER, state, 0, 0, T0 + 3600)
    state = dataclasses.replace(state, setpoint_w=2500, remote=True)
    state, discharged = step(PROSUMER, state, 0, 0, T0 + 7200)
    assert charged.charge_wh == 1000 and discharged.discharge_wh == 900  # 90 %
    assert state.stored_mwh == BATTERY.min_mwh


def test_the_export_limit_curtails_pv() -> None:
    _, f = step(PROSUMER, with_setpoint(0, limit_pct=40), 0, 800, T0 + 900)
    assert (f.pv_wh, f.curtailed_wh, f.export_wh) == (500, 300, 500)  # 40 % of 5 kW for 15 min
    _, f = step(PROSUMER, with_setpoint(0, limit_pct=0), 200, 800, T0 + 900)
    assert (f.pv_wh, f.curtailed_wh, f.import_wh) == (0, 800, 200)
    new, f = step(PROSUMER, with_setpoint(0), 200, 800, T0 + 900)
    assert (f.pv_wh, f.curtailed_wh, f.export_wh) == (800, 0, 600) and new.pv_total_wh == 800


def test_a_consumer_only_imports() -> None:
    new, f = step(CONSUMER, initial_state(CONSUMER, T0), 400, 999, T0 + 900)
    assert (f.pv_wh, f.import_wh, f.export_wh, f.charge_wh) == (0, 400, 0, 0)
    assert new.stored_mwh == 0 and soc_pct(CONSUMER, new) == 0


def test_bad_steps_and_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot step back"):
        step(CONSUMER, initial_state(CONSUMER, T0), 0, 0, T0 - 1)
    with pytest.raises(ValueError, match="must be >= 0"):
        step(CONSUMER, initial_state(CONSUMER, T0), -1, 0, T0 + 1)
    with pytest.raises(ValueError, match="a consumer has no PV"):
        HouseholdSpec("h003", "consumer", "H0-A", 1000, "PV1", 3000)
    with pytest.raises(ValueError, match="together"):
        HouseholdSpec("h003", "prosumer", "H0-A", 1000, "PV1", 0)
    with pytest.raises(ValueError, match="soc_min_pct 60 is above"):
        BatterySpec(1000, 60, 50)
    with pytest.raises(ValueError, match="efficiency_pct: must be >= 1"):
        BatterySpec(1000, efficiency_pct=0)


def test_average_power_rounds_half_away_from_zero() -> None:
    assert average_power_w(500, 900) == 2000
    assert average_power_w(-1, 7200) == -1  # -0.5 W
    assert average_power_w(5, 0) == 0


def test_a_ramp_limit_slows_the_battery_to_its_setpoint() -> None:
    assert ramp(0, 2000, 0, 900) == (2000, 2000)  # no limit: at once
    mean, end = ramp(0, 2000, 10, 900)  # 200 s to get there, then 700 s at 2 kW
    assert (mean, end) == (1777, 2000)  # (1000 * 200 + 2000 * 700) / 900
    assert ramp(0, 2000, 1, 900) == (450, 900)  # still ramping at the end
    assert ramp(1500, -1500, 100, 300) == (-1350, -1500)  # 30 s through zero, 270 s charging


def test_a_ramped_battery_moves_less_energy_in_its_first_step() -> None:
    fast = BatterySpec(capacity_wh=10_000, ramp_w_per_s=0)
    slow = dataclasses.replace(fast, ramp_w_per_s=10)
    moved = []
    for battery in (fast, slow):
        spec = HouseholdSpec("h001", "prosumer", "H0", 3000, "PV1", 4000, battery)
        state = dataclasses.replace(initial_state(spec, 0), setpoint_w=2000, remote=True)
        after, flows = step(spec, state, 0, 0, 900)
        moved.append(flows.discharge_wh)
        assert after.battery_power_w == 2000
    assert moved == [500, 444]  # 2 kW for 15 min, and the ramped trajectory's mean


def test_a_storage_member_is_a_battery_alone() -> None:
    from simulators.fleet import community_battery

    storage = community_battery(20_000, 8000, "H0-A")
    assert (storage.role, storage.annual_load_kwh, storage.pv_profile) == ("storage", 0, None)
    assert storage.battery is not None and storage.battery.max_charge_w == 8000
    with pytest.raises(ValueError, match="a storage member is a battery alone"):
        HouseholdSpec("s001", "storage", "H0-A", 1000, battery=BATTERY)
    with pytest.raises(ValueError, match="a storage member is a battery alone"):
        HouseholdSpec("s001", "storage", "H0-A", 0)
