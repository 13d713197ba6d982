"""Readings no real device could give are refused, by rule and through the driver."""

from __future__ import annotations

import asyncio
import datetime as dt
import struct

import pytest

from edge.config import DeviceConfig, ModbusConfig
from edge.drivers import ModbusHousehold
from edge.plausibility import reading_problem
from simulators.device_farm import METER_UNIT, DeviceFarm
from simulators.fleet import make_households
from simulators.profiles import ProfileSet

METER = {"power_w": 500, "import_wh": 10, "export_wh": 0}
INVERTER = {"pv_power_w": 3000, "pv_energy_wh": 5, "rated_power_w": 4000}
BATTERY = {"stored_wh": 2000, "capacity_wh": 5000, "soc_pct": 40, "power_w": 1000,
           "max_charge_w": 2000, "max_discharge_w": 2000, "soc_min_pct": 10, "soc_max_pct": 90,
           "charge_wh": 3, "discharge_wh": 4}


@pytest.mark.parametrize(("kind", "values"), [("meter", METER), ("inverter", INVERTER),
                                              ("battery", BATTERY)])
def test_ordinary_readings_pass(kind: str, values: dict[str, int]) -> None:
    assert reading_problem(kind, values) == ""


@pytest.mark.parametrize(("kind", "values", "problem"), [
    ("meter", {**METER, "import_wh": -1}, "negative energy: import_wh=-1"),
    ("meter", {**METER, "power_w": 5_000_000}, "beyond any household connection"),
    ("inverter", {**INVERTER, "pv_power_w": 9000}, "above the nameplate 4000 W"),
    ("inverter", {**INVERTER, "pv_power_w": -1000}, "is negative"),
    ("battery", {**BATTERY, "soc_pct": 140}, "soc_pct=140 is outside 0..100"),
    ("battery", {**BATTERY, "stored_wh": 6000}, "exceeds capacity_wh=5000"),
    ("battery", {**BATTERY, "power_w": -9000}, "beyond the battery's limits"),
])
def test_impossible_readings_are_named(kind: str, values: dict[str, int], problem: str) -> None:
    assert problem in reading_problem(kind, values)


def nan_words() -> list[int]:
    data = struct.pack(">f", float("nan"))
    return [int.from_bytes(data[:2], "big"), int.from_bytes(data[2:], "big")]


@pytest.mark.parametrize(("address", "words", "logged"), [
    (72, nan_words(), "not a number"),                              # import kWh = NaN
    (72, [0xC2C8, 0x0000], "negative energy: import_wh=-100000"),   # import = -100 kWh
])
def test_the_driver_refuses_a_garbage_reading_and_logs_why(
    address: int, words: list[int], logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    household = make_households(1, 5)[0]
    start = int(dt.datetime(2016, 6, 6, 10, tzinfo=dt.UTC).timestamp())

    async def main() -> None:
        async with DeviceFarm([household], ProfileSet.load_bundled(), start,
                              meter_template="eastron-sdm630") as farm:
            farm.server(household.id).set_words(METER_UNIT, "input", address, words)
            host, port = farm.endpoint(household.id)
            driver = ModbusHousehold(
                ModbusConfig(host, port, 2000, DeviceConfig("eastron-sdm630", METER_UNIT)), household.id)
            try:
                readings = await driver.read(start)
            finally:
                await driver.close()
            assert readings.meter is None and not readings.fresh and driver.failures == 1

    with caplog.at_level("WARNING", logger="gridmesh.edge"):
        asyncio.run(main())
    assert logged in caplog.text
