"""Virtual devices that misbehave, and what the edge driver does about it: a faulty
device's reading is unavailable (never a crash, never a guess), the others still read,
and once the device behaves again the driver reconnects and re-applies its setpoint."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from edge.config import DeviceConfig, ModbusConfig
from edge.drivers import ModbusHousehold
from simulators.device_farm import BATTERY_UNIT, INVERTER_UNIT, METER_UNIT, TEMPLATES, DeviceFarm
from simulators.fleet import make_households
from simulators.modbus_server import Fault
from simulators.profiles import ProfileSet

START = int(dt.datetime(2016, 6, 6, 11, tzinfo=dt.UTC).timestamp())
PROSUMER = next(h for h in make_households(4, 5, prosumer_pct=100) if h.battery is not None)


def driver_for(farm: DeviceFarm, timeout_ms: int = 2000) -> ModbusHousehold:
    host, port = farm.endpoint(PROSUMER.id)
    return ModbusHousehold(ModbusConfig(
        host, port, timeout_ms, DeviceConfig(TEMPLATES[METER_UNIT], METER_UNIT),
        DeviceConfig(TEMPLATES[INVERTER_UNIT], INVERTER_UNIT),
        DeviceConfig(TEMPLATES[BATTERY_UNIT], BATTERY_UNIT)), PROSUMER.id)


@pytest.mark.parametrize("fault", ["busy", "failure", "timeout"])
def test_a_faulty_inverter_reads_as_unavailable_and_recovers(fault: str) -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START) as farm:
            farm.advance_to(START + 900)
            driver = driver_for(farm, timeout_ms=300)
            try:
                farm.server(PROSUMER.id).set_fault(INVERTER_UNIT, Fault.named(fault))
                faulty = await driver.read(START + 900)
                assert faulty.inverter is None and not faulty.fresh and driver.failures == 1
                assert faulty.meter is not None and faulty.battery is not None  # the others still read
                farm.server(PROSUMER.id).set_fault(INVERTER_UNIT, None)
                healthy = await driver.read(START + 900)
                assert healthy.fresh and healthy.inverter is not None
                assert healthy.inverter.pv_power_w == farm.values(PROSUMER.id)[INVERTER_UNIT]["pv_power_w"]
            finally:
                await driver.close()

    asyncio.run(main())


def test_a_slow_device_within_the_timeout_still_reads() -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START) as farm:
            farm.server(PROSUMER.id).set_fault(METER_UNIT, Fault.named("slow"))
            driver = driver_for(farm, timeout_ms=2000)
            try:
                readings = await driver.read(START)
            finally:
                await driver.close()
            assert readings.fresh and driver.failures == 0

    asyncio.run(main())


@pytest.mark.parametrize("last", ["setpoint", "release"])
def test_after_a_dropped_connection_the_driver_reconnects_and_reapplies_its_last_command(last: str) -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START) as farm:
            server = farm.server(PROSUMER.id)
            _, port = farm.endpoint(PROSUMER.id)
            driver = driver_for(farm, timeout_ms=300)
            try:
                assert await driver.set_battery_w(1200) and farm.state(PROSUMER.id).remote
                if last == "release":
                    assert await driver.release_battery()  # the battery self-consumes on its own
                    assert not farm.state(PROSUMER.id).remote
                    assert server.value(BATTERY_UNIT, "setpoint_enable") == 0
                await server.stop()  # the link drops
                down = await driver.read(START)
                assert down.meter is None and not down.fresh
                if last == "setpoint":
                    assert not await driver.set_battery_w(800)  # remembered, not written
                await server.start(port)  # the device comes back in the other state
                server.update(BATTERY_UNIT, {"setpoint_w": 0, "setpoint_enable": int(last == "release")})
                back = await driver.read(START)
                assert back.fresh and driver.reapplied == 1
                if last == "setpoint":  # written again after the reconnect
                    assert server.value(BATTERY_UNIT, "setpoint_w") == 800
                    assert server.value(BATTERY_UNIT, "setpoint_enable") == 1
                else:  # released again
                    assert server.value(BATTERY_UNIT, "setpoint_enable") == 0
            finally:
                await driver.close()

    asyncio.run(main())


def test_an_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault 'fire'"):
        Fault.named("fire")


def test_a_frozen_device_keeps_answering_with_old_values() -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START) as farm:
            farm.advance_to(START + 900)
            server = farm.server(PROSUMER.id)
            before = server.value(INVERTER_UNIT, "pv_energy_wh")
            server.set_fault(INVERTER_UNIT, Fault.named("frozen"))
            farm.advance_to(START + 3600)
            assert server.value(INVERTER_UNIT, "pv_energy_wh") == before
            assert farm.values(PROSUMER.id)[INVERTER_UNIT]["pv_energy_wh"] > before  # the physics went on

    asyncio.run(main())


class FakeClock:
    """Time that moves only when told; sleeps are recorded and pass at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_device_that_keeps_failing_is_left_alone_until_its_pause_is_over() -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START) as farm:
            clock = FakeClock()
            host, port = farm.endpoint(PROSUMER.id)
            driver = ModbusHousehold(ModbusConfig(
                host, port, 2000, DeviceConfig(TEMPLATES[METER_UNIT], METER_UNIT),
                DeviceConfig(TEMPLATES[INVERTER_UNIT], INVERTER_UNIT)), PROSUMER.id,
                clock=clock, sleep=clock.sleep)
            server = farm.server(PROSUMER.id)
            server.set_fault(INVERTER_UNIT, Fault.named("failure"))
            try:
                for _ in range(3):
                    await driver.read(START)
                assert driver.health["gridmesh-inverter"].defective and driver.failures == 3
                readings = await driver.read(START)  # not asked: it would only fail again
                assert readings.inverter is None and driver.skipped == 1 and driver.failures == 3
                assert readings.meter is not None  # the meter on the same link still reads
                server.set_fault(INVERTER_UNIT, None)
                readings = await driver.read(START + 4)  # the first pause is not over yet
                assert readings.inverter is None and driver.skipped == 2
                readings = await driver.read(START + 5)  # now it is
                assert readings.inverter is not None and not driver.health["gridmesh-inverter"].defective
            finally:
                await driver.close()

    asyncio.run(main())


def test_frames_on_one_link_keep_the_configured_gap() -> None:
    async def main() -> None:
        async with DeviceFarm([PROSUMER], ProfileSet.load_bundled(), START) as farm:
            clock = FakeClock()
            host, port = farm.endpoint(PROSUMER.id)
            driver = ModbusHousehold(ModbusConfig(
                host, port, 2000, DeviceConfig(TEMPLATES[METER_UNIT], METER_UNIT),
                DeviceConfig(TEMPLATES[INVERTER_UNIT], INVERTER_UNIT),
                DeviceConfig(TEMPLATES[BATTERY_UNIT], BATTERY_UNIT), frame_gap_ms=40), PROSUMER.id,
                clock=clock, sleep=clock.sleep)
            try:
                readings, written = await asyncio.gather(driver.read(START), driver.set_battery_w(300))
            finally:
                await driver.close()
            assert readings.fresh and written
            # 5 reads and 3 writes (the reversion time, once per connection, the enable switch
            # and the setpoint): every frame after the first waited the full gap (the clock
            # stands still while a frame is on the wire).
            assert clock.sleeps == pytest.approx([0.04] * 7)

    asyncio.run(main())
