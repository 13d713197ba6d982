"""``gridmesh device read`` and ``gridmesh device scan`` against virtual devices, as an
installer would run them against real ones."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys

import pytest

from broker.launcher import free_port
from gridmesh.cli import main
from simulators.device_farm import INVERTER_UNIT, METER_UNIT, DeviceFarm
from simulators.fleet import make_households
from simulators.profiles import ProfileSet

START = int(dt.datetime(2016, 6, 6, 11, tzinfo=dt.UTC).timestamp())
PROSUMER = next(h for h in make_households(4, 5, prosumer_pct=100) if h.pv_profile is not None)


def gridmesh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridmesh", *args], capture_output=True, text=True,
                          timeout=30, check=False)


def test_read_prints_the_physics_and_scan_lists_the_sunspec_models() -> None:
    async def main_() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START,
                              meter_template="eastron-sdm630",
                              inverter_template="sunspec-inverter") as farm:
            farm.advance_to(START + 900)
            meter = farm.values(PROSUMER.id)[METER_UNIT]
            address = f"127.0.0.1:{farm.endpoint(PROSUMER.id)[1]}"
            loop = asyncio.get_running_loop()
            read = await loop.run_in_executor(None, gridmesh, "device", "read", address,
                                              "--template", "eastron-sdm630", "--unit", "1")
            assert read.returncode == 0, read.stderr
            lines = dict(line.split() for line in read.stdout.splitlines()[1:])
            assert int(lines["power_w"]) == meter["power_w"]
            assert int(lines["import_wh"]) == meter["import_wh"]
            assert int(lines["voltage_l1_mv"]) == 230_000
            scan = await loop.run_in_executor(None, gridmesh, "device", "scan", address,
                                              "--unit", str(INVERTER_UNIT))
            assert scan.returncode == 0, scan.stderr
            assert [line.split()[1:6:2] for line in scan.stdout.splitlines()[1:]] == [
                ["1", "40002", "66"], ["103", "40070", "50"], ["120", "40122", "26"],
                ["123", "40150", "24"]]
            no_sunspec = await loop.run_in_executor(None, gridmesh, "device", "scan", address,
                                                    "--unit", str(METER_UNIT))
            assert no_sunspec.returncode == 2 and "no SunSpec marker" in no_sunspec.stderr

    asyncio.run(main_())


@pytest.mark.parametrize(("args", "message"), [
    (["device", "read", "127.0.0.1:PORT", "--template", "no-such-meter"], "no such device template"),
    (["device", "read", "127.0.0.1:PORT", "--template", "eastron-sdm630"], "cannot connect to 127.0.0.1:"),
    (["device", "scan", "localhost", "--unit", "1"], "address must be HOST:PORT, got 'localhost'"),
    (["device", "scan", "127.0.0.1:PORT", "--unit", "300"], "--unit must be 0..247"),
])
def test_bad_input_exits_2_with_one_clear_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(free_port())  # nothing listens there
    assert main([a.replace("PORT", port) for a in args]) == 2
    assert message in capsys.readouterr().err
