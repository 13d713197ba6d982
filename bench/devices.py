"""Benchmark: the device layer, through the edge driver, against virtual devices.

Prints one JSON object:
- one link: whole-household reads (meter, inverter, battery) per second, one after
  another on one Modbus TCP connection, and the Modbus requests per second that makes;
- 100 devices at once: 100 households read concurrently, each over its own link;
- per household-slot: the wall time of what an agent does on its devices each slot
  (one whole read and one setpoint write), for each template set;
- in the testbed: the same, as the agents measured it during a whole day's run (20 and
  100 households, the default broker), where many agents share a process and the
  devices' servers share the testbed's.

    .venv/bin/python bench/devices.py [--households 20 100]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge.config import DeviceConfig, ModbusConfig
from edge.drivers import ModbusHousehold
from edge.registers.codec import read_plan
from edge.registers.template import load_template
from gridmesh import aio
from simulators.device_farm import BATTERY_UNIT, INVERTER_UNIT, METER_UNIT, DeviceFarm
from simulators.fleet import make_households
from simulators.profiles import ProfileSet

START = int(dt.datetime(2016, 6, 6, 11, tzinfo=dt.UTC).timestamp())
SETS = {
    "gridmesh": ("gridmesh-meter", "gridmesh-inverter", "gridmesh-battery"),
    "real-device maps": ("eastron-sdm630", "sunspec-inverter", "sunspec-battery"),
}


def driver(farm: DeviceFarm, household: str, names: tuple[str, str, str]) -> ModbusHousehold:
    host, port = farm.endpoint(household)
    return ModbusHousehold(ModbusConfig(
        host, port, 2000, DeviceConfig(names[0], METER_UNIT), DeviceConfig(names[1], INVERTER_UNIT),
        DeviceConfig(names[2], BATTERY_UNIT)), household)


def requests_per_read(names: tuple[str, str, str]) -> int:
    return sum(len(read_plan(load_template(n))) for n in names)


async def one_link(names: tuple[str, str, str], reads: int) -> dict[str, float]:
    prosumer = [h for h in make_households(4, 5, prosumer_pct=100) if h.battery is not None][:1]
    async with DeviceFarm(prosumer, ProfileSet.load_bundled(), START, meter_template=names[0],
                          inverter_template=names[1], battery_template=names[2]) as farm:
        link = driver(farm, prosumer[0].id, names)
        try:
            await link.read(START)  # connect
            started = time.perf_counter()
            for _ in range(reads):
                await link.read(START)
            read_s = (time.perf_counter() - started) / reads
            started = time.perf_counter()
            for _ in range(reads):
                await link.read(START)
                await link.set_battery_w(500)
            slot_s = (time.perf_counter() - started) / reads
        finally:
            await link.close()
    per_read = requests_per_read(names)
    return {"household_reads_per_s": round(1 / read_s, 1), "requests_per_read": per_read,
            "modbus_requests_per_s": round(per_read / read_s, 1),
            "device_layer_ms_per_household_slot": round(slot_s * 1000, 3)}


async def many_at_once(count: int, rounds: int) -> dict[str, float]:
    households = [h for h in make_households(count, 5, prosumer_pct=100)]
    names = SETS["gridmesh"]
    async with DeviceFarm(households, ProfileSet.load_bundled(), START) as farm:
        links = [driver(farm, h.id, names) for h in households]
        try:
            await asyncio.gather(*(link.read(START) for link in links))
            started = time.perf_counter()
            for _ in range(rounds):
                await asyncio.gather(*(link.read(START) for link in links))
            elapsed = time.perf_counter() - started
        finally:
            for link in links:
                await link.close()
    reads = count * rounds
    return {"devices": count * 3, "household_reads_per_s": round(reads / elapsed, 1),
            "modbus_requests_per_s": round(reads * requests_per_read(names) / elapsed, 1)}


def in_testbed(households: int) -> dict[str, float]:
    """A day's testbed run; the agents' own measure of their device layer."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        subprocess.run([sys.executable, "-m", "gridmesh", "testbed", "--households", str(households),
                        "--out", str(out), "--json"], check=True, stdout=subprocess.DEVNULL)
        summary = json.loads((out / "summary.json").read_text())
    return {"households": households, "device_layer_ms_per_household_slot":
            summary["device_ms_per_household_slot"], "run_wall_s": summary["wall_s"]}


async def isolated() -> dict[str, object]:
    return {
        "one_link": {name: await one_link(names, 300) for name, names in SETS.items()},
        "hundred_households_at_once": await many_at_once(100, 10),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, nargs="*", default=[20, 100],
                        help="testbed sizes to run (none: skip the testbed part)")
    args = parser.parse_args()
    result = {"benchmark": "devices", **aio.run(isolated()),
              "in_testbed": [in_testbed(n) for n in args.households]}
    print(json.dumps(result))
