"""The capability interfaces: readings have their shapes, the driver their controls, and
limiting PV through them curtails the physics on gridmesh and SunSpec inverters alike."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from edge.capabilities import Battery, BatteryControl, EnergyMeter, Meter, PowerLimiter, PvInverter
from edge.config import DeviceConfig, ModbusConfig
from edge.drivers import ModbusHousehold
from edge.readings import BatteryReading, InverterReading, MeterReading
from simulators.device_farm import INVERTER_UNIT, METER_UNIT, DeviceFarm
from simulators.fleet import make_households
from simulators.profiles import ProfileSet

START = int(dt.datetime(2016, 6, 6, 11, tzinfo=dt.UTC).timestamp())
PROSUMER = next(h for h in make_households(4, 5, prosumer_pct=100) if h.pv_profile is not None)


def test_readings_and_the_driver_have_the_capability_shapes() -> None:
    meter = MeterReading(500, 10, 0)
    assert isinstance(meter, Meter) and isinstance(meter, EnergyMeter)
    assert isinstance(InverterReading(100, 5, 4000), PvInverter)
    assert isinstance(BatteryReading(2000, 5000, 40, 0, 2000, 2000, 10, 90, 0, 0), Battery)
    async def build() -> ModbusHousehold:  # its Modbus client needs a running loop
        return ModbusHousehold(ModbusConfig("127.0.0.1", 5020))

    driver = asyncio.run(build())
    assert isinstance(driver, BatteryControl) and isinstance(driver, PowerLimiter)


@pytest.mark.parametrize("template", ["gridmesh-inverter", "sunspec-inverter"])
def test_limiting_pv_through_the_driver_curtails_the_physics(template: str) -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START,
                              inverter_template=template) as farm:
            farm.advance_to(START + 900)
            host, port = farm.endpoint(PROSUMER.id)
            config = ModbusConfig(host, port, 2000, DeviceConfig("gridmesh-meter", METER_UNIT),
                                  DeviceConfig(template, INVERTER_UNIT))
            driver = ModbusHousehold(config, PROSUMER.id)
            try:
                assert await driver.set_pv_limit_pct(10)
            finally:
                await driver.close()
            records = farm.advance_to(START + 1800)
            assert records[-1].flows.curtailed_wh > 0
            assert farm.values(PROSUMER.id)[INVERTER_UNIT]["pv_power_w"] <= PROSUMER.pv_peak_w // 10
            if template == "sunspec-inverter":
                assert farm.server(PROSUMER.id).value(INVERTER_UNIT, "wmaxlim_ena") == 1

    asyncio.run(main())
