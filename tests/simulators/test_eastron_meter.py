"""An Eastron SDM630/SDM72 served from the physics: our driver and mbpoll (a third-party
Modbus client) read the values the physics holds, at the real meter's addresses."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
import subprocess

import pytest

from edge.config import DeviceConfig, ModbusConfig
from edge.drivers import ModbusHousehold
from simulators.device_farm import METER_UNIT, DeviceFarm
from simulators.fleet import make_households
from simulators.meter_values import three_phase_values
from simulators.profiles import ProfileSet

START = int(dt.datetime(2016, 6, 6, 10, tzinfo=dt.UTC).timestamp())
HOUSEHOLDS = make_households(2, 5, prosumer_pct=0)  # no battery to zero the meter's power


def test_the_phases_add_up_to_the_total() -> None:
    for power in (0, 1, -7, 4_321, -10_000):
        values = three_phase_values(power)
        assert sum(values[f"power_{p}_w"] for p in ("l1", "l2", "l3")) == power
        assert values["voltage_l1_mv"] == 230_000 and values["frequency_mhz"] == 50_000
    assert three_phase_values(690)["current_l2_ma"] == 1_000  # 230 W on a phase at 230 V


@pytest.mark.parametrize("template", ["eastron-sdm630", "eastron-sdm72"])
def test_our_driver_reads_a_simulated_eastron_meter(template: str) -> None:
    async def main() -> None:
        async with DeviceFarm(HOUSEHOLDS, ProfileSet.load_bundled(), START,
                              meter_template=template) as farm:
            farm.advance_to(START + 900)
            for spec in HOUSEHOLDS:
                host, port = farm.endpoint(spec.id)
                driver = ModbusHousehold(
                    ModbusConfig(host, port, 2000, DeviceConfig(template, METER_UNIT)), spec.id)
                try:
                    readings = await driver.read(START + 900)
                finally:
                    await driver.close()
                shown = farm.values(spec.id)[METER_UNIT]
                assert readings.meter is not None and readings.fresh
                assert readings.meter.power_w == shown["power_w"] != 0
                assert (readings.meter.import_wh, readings.meter.export_wh) == (
                    shown["import_wh"], shown["export_wh"])

    asyncio.run(main())


def mbpoll(port: int, reference: int, count: int) -> list[float]:
    """Input-register floats, big-endian words, 1-based references like a datasheet's."""
    done = subprocess.run(
        ["mbpoll", "-m", "tcp", "-p", str(port), "-a", str(METER_UNIT), "-t", "3:float", "-B",
         "-r", str(reference), "-c", str(count), "-1", "-o", "2", "127.0.0.1"],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # One line per value: "[53]: \t-1648"
    return [float(m.group(1)) for m in re.finditer(r"^\[\d+\]:\s+(\S+)", done.stdout, re.MULTILINE)]


def test_mbpoll_reads_the_physics_from_a_simulated_sdm630() -> None:
    if shutil.which("mbpoll") is None:
        if os.environ.get("CI"):
            pytest.fail("mbpoll is not installed but CI is set: .ci/run installs it")
        pytest.skip("mbpoll is not installed (apt install mbpoll)")
    spec = HOUSEHOLDS[0]

    async def main() -> None:
        async with DeviceFarm([spec], ProfileSet.load_bundled(), START,
                              meter_template="eastron-sdm630") as farm:
            farm.advance_to(START + 900)
            shown = farm.values(spec.id)[METER_UNIT]
            _, port = farm.endpoint(spec.id)
            # mbpoll blocks; the farm's server must keep answering meanwhile.
            loop = asyncio.get_running_loop()
            total_power, = await loop.run_in_executor(None, mbpoll, port, 53, 1)    # 30053
            energy = await loop.run_in_executor(None, mbpoll, port, 73, 2)          # 30073, 30075
            phases = await loop.run_in_executor(None, mbpoll, port, 1, 9)           # 30001..30017
            assert round(total_power) == shown["power_w"]
            assert [round(kwh * 1000) for kwh in energy] == [shown["import_wh"], shown["export_wh"]]
            assert phases[:3] == [230.0, 230.0, 230.0]
            assert round(sum(phases[6:9])) == shown["power_w"]

    asyncio.run(main())
