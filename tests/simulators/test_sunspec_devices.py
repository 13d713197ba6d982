"""SunSpec devices served from the physics pass a third-party SunSpec client
(pysunspec2): every model is found with its length, and the values are the physics'."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from edge.config import DeviceConfig, ModbusConfig
from edge.drivers import ModbusHousehold
from simulators.device_farm import BATTERY_UNIT, INVERTER_UNIT, METER_UNIT, DeviceFarm
from simulators.fleet import make_households
from simulators.profiles import ProfileSet

sunspec_client = pytest.importorskip("sunspec2.modbus.client")

START = int(dt.datetime(2016, 6, 6, 11, tzinfo=dt.UTC).timestamp())  # midday: PV produces
PROSUMER = next(h for h in make_households(4, 5, prosumer_pct=100) if h.pv_profile is not None)
CONSUMER = make_households(1, 5, prosumer_pct=0)[0]  # its meter shows power: no battery zeroes it


def scan(port: int, unit: int) -> dict[str, Any]:
    """What pysunspec2 finds: {model name: (id, length, {point: value})}."""
    device = sunspec_client.SunSpecModbusClientDeviceTCP(slave_id=unit, ipaddr="127.0.0.1",
                                                         ipport=port, timeout=5)
    try:
        device.scan()
        found = {}
        for model_id, models in device.models.items():
            if not isinstance(model_id, int):
                continue
            model = models[0]
            found[model.gname] = (model_id, model.len,
                                  {name: point.cvalue for name, point in model.points.items()})
        return found
    finally:
        device.close()


def test_pysunspec2_scans_the_simulated_inverter_and_reads_the_physics() -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START,
                              inverter_template="sunspec-inverter") as farm:
            farm.advance_to(START + 900)
            shown = farm.values(PROSUMER.id)[INVERTER_UNIT]
            _, port = farm.endpoint(PROSUMER.id)
            found = await asyncio.get_running_loop().run_in_executor(None, scan, port, INVERTER_UNIT)
            assert {name: (mid, length) for name, (mid, length, _) in found.items()} == {
                "common": (1, 66), "inverter_three_phase": (103, 50), "nameplate": (120, 26),
                "controls": (123, 24)}
            inverter = found["inverter_three_phase"][2]
            assert inverter["W"] == shown["pv_power_w"] > 0
            assert inverter["WH"] == shown["pv_energy_wh"]
            assert found["nameplate"][2]["WRtg"] == PROSUMER.pv_peak_w
            assert found["controls"][2]["WMaxLimPct"] == 100
            # pysunspec2 writes a 10 % limit: the next step's PV is capped there.
            await asyncio.get_running_loop().run_in_executor(None, limit, port, 10)
            records = farm.advance_to(START + 1800)
            capped_w = PROSUMER.pv_peak_w * 10 // 100
            assert farm.values(PROSUMER.id)[INVERTER_UNIT]["pv_power_w"] <= capped_w
            assert records[-1].flows.curtailed_wh > 0

    asyncio.run(main())


def limit(port: int, pct: int) -> None:
    device = sunspec_client.SunSpecModbusClientDeviceTCP(slave_id=INVERTER_UNIT, ipaddr="127.0.0.1",
                                                         ipport=port, timeout=5)
    try:
        device.scan()
        controls = device.models[123][0]
        controls.WMaxLimPct.cvalue = pct
        controls.WMaxLim_Ena.cvalue = 1
        controls.write()
    finally:
        device.close()


def test_our_driver_reads_the_simulated_sunspec_inverter() -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START,
                              inverter_template="sunspec-inverter") as farm:
            farm.advance_to(START + 900)
            host, port = farm.endpoint(PROSUMER.id)
            driver = ModbusHousehold(ModbusConfig(
                host, port, 2000, DeviceConfig("gridmesh-meter", METER_UNIT),
                DeviceConfig("sunspec-inverter", INVERTER_UNIT)), PROSUMER.id)
            try:
                readings = await driver.read(START + 900)
            finally:
                await driver.close()
            shown = farm.values(PROSUMER.id)[INVERTER_UNIT]
            assert readings.inverter is not None
            assert (readings.inverter.pv_power_w, readings.inverter.pv_energy_wh) == (
                shown["pv_power_w"], shown["pv_energy_wh"])

    asyncio.run(main())


def set_power(port: int, watts: int) -> None:
    device = sunspec_client.SunSpecModbusClientDeviceTCP(slave_id=BATTERY_UNIT, ipaddr="127.0.0.1",
                                                         ipport=port, timeout=5)
    try:
        device.scan()
        controls = device.models[704][0]
        controls.WSetEna.cvalue = 1
        controls.WSet.cvalue = watts
        controls.write()
    finally:
        device.close()


def test_pysunspec2_scans_the_simulated_battery_and_its_setpoint_moves_the_soc() -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START,
                              battery_template="sunspec-battery") as farm:
            farm.advance_to(START + 900)
            shown = farm.values(PROSUMER.id)[BATTERY_UNIT]
            _, port = farm.endpoint(PROSUMER.id)
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(None, scan, port, BATTERY_UNIT)
            assert {name: (mid, length) for name, (mid, length, _) in found.items()} == {
                "common": (1, 66), "DERMeasureAC": (701, 153), "DERStorageCapacity": (713, 7),
                "battery": (802, 62), "DERCtlAC": (704, 65)}
            capacity, battery = found["DERStorageCapacity"][2], found["battery"][2]
            assert (capacity["WHRtg"], capacity["WHAvail"], capacity["SoC"]) == (
                shown["capacity_wh"], shown["stored_wh"], shown["soc_pct"])
            assert (battery["SoCMin"], battery["SoCMax"]) == (shown["soc_min_pct"], shown["soc_max_pct"])
            assert battery["WDisChaRteMax"] == shown["max_discharge_w"]
            # Discharging at 2 kW for a slot lowers the stored energy, within the SoC window.
            await loop.run_in_executor(None, set_power, port, 2000)
            farm.advance_to(START + 1800)
            after = farm.values(PROSUMER.id)[BATTERY_UNIT]
            assert after["setpoint_w"] == 2000
            assert after["stored_wh"] < shown["stored_wh"]
            floor = after["capacity_wh"] * after["soc_min_pct"] // 100
            assert after["stored_wh"] >= floor
            measured = (await loop.run_in_executor(None, scan, port, BATTERY_UNIT))["DERMeasureAC"][2]
            assert measured["W"] == after["power_w"] > 0 and measured["TotWhInj"] == after["discharge_wh"]

    asyncio.run(main())


def test_pysunspec2_and_our_driver_read_the_simulated_sunspec_meter() -> None:
    async def main() -> None:
        async with DeviceFarm([CONSUMER], ProfileSet.load_bundled(), START,
                              meter_template="sunspec-meter") as farm:
            farm.advance_to(START + 900)
            shown = farm.values(CONSUMER.id)[METER_UNIT]
            host, port = farm.endpoint(CONSUMER.id)
            found = await asyncio.get_running_loop().run_in_executor(None, scan, port, METER_UNIT)
            assert [(mid, length) for mid, length, _ in found.values()] == [(1, 66), (203, 105)]
            meter = next(values for mid, _, values in found.values() if mid == 203)
            assert meter["W"] == shown["power_w"] != 0
            # An acc32 of 0 reads as "not implemented" (None) to a SunSpec client.
            energy = (meter["TotWhImp"] or 0, meter["TotWhExp"] or 0)
            assert energy == (shown["import_wh"], shown["export_wh"])
            assert meter["WphA"] + meter["WphB"] + meter["WphC"] == meter["W"]
            assert (meter["PhVphA"], meter["Hz"]) == (230, 50)
            driver = ModbusHousehold(
                ModbusConfig(host, port, 2000, DeviceConfig("sunspec-meter", METER_UNIT)), CONSUMER.id)
            try:
                readings = await driver.read(START + 900)
            finally:
                await driver.close()
            assert readings.meter is not None
            assert (readings.meter.power_w, readings.meter.import_wh, readings.meter.export_wh) == (
                shown["power_w"], shown["import_wh"], shown["export_wh"])

    asyncio.run(main())


def test_our_driver_enables_and_writes_the_sunspec_battery_setpoint() -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START,
                              battery_template="sunspec-battery") as farm:
            host, port = farm.endpoint(PROSUMER.id)
            driver = ModbusHousehold(ModbusConfig(
                host, port, 2000, DeviceConfig("gridmesh-meter", METER_UNIT), None,
                DeviceConfig("sunspec-battery", BATTERY_UNIT)), PROSUMER.id)
            try:
                assert await driver.set_battery_w(-1500)  # charge at 1.5 kW
            finally:
                await driver.close()
            shown = farm.values(PROSUMER.id)[BATTERY_UNIT]
            assert shown["setpoint_w"] == -1500
            assert farm.server(PROSUMER.id).value(BATTERY_UNIT, "setpoint_enable") == 1

    asyncio.run(main())
