"""The edge drivers read and command the virtual devices through the same templates."""

from __future__ import annotations

import asyncio
import datetime as dt

from edge.config import DeviceConfig, ModbusConfig
from edge.drivers import ModbusHousehold
from simulators.device_farm import BATTERY_UNIT, INVERTER_UNIT, METER_UNIT, TEMPLATES, DeviceFarm
from simulators.fleet import make_households
from simulators.profiles import ProfileSet

START = int(dt.datetime(2016, 6, 6, 10, tzinfo=dt.UTC).timestamp())


def test_the_driver_reads_every_household_and_its_setpoint_reaches_the_physics() -> None:
    households = make_households(4, 5, prosumer_pct=50)

    async def main() -> None:
        async with DeviceFarm(households, ProfileSet.load_bundled(), START) as farm:
            farm.advance_to(START + 900)
            for spec in households:
                host, port = farm.endpoint(spec.id)
                prosumer = spec.role == "prosumer"
                config = ModbusConfig(
                    host, port, 2000, DeviceConfig(TEMPLATES[METER_UNIT], METER_UNIT),
                    DeviceConfig(TEMPLATES[INVERTER_UNIT], INVERTER_UNIT) if prosumer else None,
                    DeviceConfig(TEMPLATES[BATTERY_UNIT], BATTERY_UNIT) if prosumer else None,
                )
                driver = ModbusHousehold(config, spec.id)
                try:
                    readings = await driver.read(START + 900)
                    assert readings.fresh and driver.failures == 0
                    shown = farm.values(spec.id)
                    assert readings.meter is not None
                    assert readings.meter.import_wh == shown[METER_UNIT]["import_wh"]
                    assert readings.meter.power_w == shown[METER_UNIT]["power_w"]
                    if not prosumer:
                        assert readings.inverter is None and readings.battery is None
                        continue
                    assert readings.inverter is not None and readings.battery is not None
                    assert readings.inverter.rated_power_w == spec.pv_peak_w
                    assert readings.battery.soc_pct == shown[BATTERY_UNIT]["soc_pct"]
                    assert await driver.set_battery_w(-1000)
                    state = farm.state(spec.id)
                    assert (state.setpoint_w, state.remote, state.revert_s) == (-1000, True, 1800)
                finally:
                    await driver.close()
            records = {r.household: r for r in farm.advance_to(START + 1800)}
            for spec in households:
                expected = 250 if spec.role == "prosumer" else 0
                assert records[spec.id].flows.charge_wh == expected

    asyncio.run(main())


def test_devices_on_different_endpoints_each_get_their_own_link() -> None:
    first, second = [h for h in make_households(6, 5, prosumer_pct=100) if h.pv_profile is not None][:2]

    async def main() -> None:
        async with DeviceFarm([first, second], ProfileSet.load_bundled(), START) as farm:
            farm.advance_to(START + 900)
            host, port = farm.endpoint(first.id)
            other_host, other_port = farm.endpoint(second.id)
            config = ModbusConfig(
                host, port, 2000, DeviceConfig(TEMPLATES[METER_UNIT], METER_UNIT),
                DeviceConfig(TEMPLATES[INVERTER_UNIT], INVERTER_UNIT, other_host, other_port))
            driver = ModbusHousehold(config, "split")
            try:
                readings = await driver.read(START + 900)
            finally:
                await driver.close()
            assert len(driver.links) == 2 and readings.fresh
            assert readings.meter is not None and readings.inverter is not None
            assert readings.meter.power_w == farm.values(first.id)[METER_UNIT]["power_w"]
            assert readings.inverter.pv_power_w == farm.values(second.id)[INVERTER_UNIT]["pv_power_w"]

    asyncio.run(main())
