"""Virtual devices on real Modbus TCP ports: what a client reads is the physics state."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest
from pymodbus.client import AsyncModbusTcpClient

from edge.registers.codec import decode_block, encode_point, read_plan
from edge.registers.template import DeviceTemplate, load_template
from simulators.device_farm import BATTERY_UNIT, INVERTER_UNIT, METER_UNIT, TEMPLATES, DeviceFarm
from simulators.fleet import make_households
from simulators.physics import BatterySpec, HouseholdSpec, StepRecord, average_power_w
from simulators.profiles import ProfileSet

START = int(dt.datetime(2016, 6, 6, 9, tzinfo=dt.UTC).timestamp())
BATTERY = BatterySpec(5000, 10, 90, 2500, 2500, 90)
HOUSEHOLDS = (
    HouseholdSpec("h001", "prosumer", "H0-A", 3000, "PV1", 5000, BATTERY),
    HouseholdSpec("h002", "consumer", "H0-B", 2000),
    HouseholdSpec("h003", "prosumer", "H0-G", 1500, "PV4", 3600, BATTERY),
)
ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE = 2, 3

Scenario = Callable[[DeviceFarm, dict[str, AsyncModbusTcpClient]], Awaitable[None]]


def run(scenario: Scenario, households: tuple[HouseholdSpec, ...] = HOUSEHOLDS) -> None:
    async def main() -> None:
        async with DeviceFarm(households, ProfileSet.load_bundled(), START) as farm:
            clients = {}
            try:
                for h in households:
                    host, port = farm.endpoint(h.id)
                    client = AsyncModbusTcpClient(host, port=port, timeout=5, retries=0)
                    assert await client.connect()
                    clients[h.id] = client
                await scenario(farm, clients)
            finally:
                for client in clients.values():
                    client.close()

    asyncio.run(main())


async def read_device(client: AsyncModbusTcpClient, template: DeviceTemplate, unit: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for block in read_plan(template):
        read = client.read_input_registers if block.table == "input" else client.read_holding_registers
        response = await read(block.address, count=block.count, device_id=unit)
        assert not response.isError(), response
        values.update(decode_block(template, block, response.registers))
    return values


async def write_point(client: AsyncModbusTcpClient, unit: int, name: str, value: int) -> int | None:
    """Write a point; the exception code of a refusal, None when accepted."""
    point = load_template(TEMPLATES[unit]).point(name)
    words = [(value >> (16 * i)) & 0xFFFF for i in reversed(range(point.count))]
    response = await client.write_registers(point.address, words, device_id=unit)
    return int(response.exception_code) if response.isError() else None


def test_clients_read_what_the_physics_says() -> None:
    async def scenario(farm: DeviceFarm, clients: dict[str, AsyncModbusTcpClient]) -> None:
        records = farm.advance_to(START + 900)
        records += farm.advance_to(START + 1500)
        assert [r.household for r in records] == ["h001", "h002", "h003"] * 2
        for household in HOUSEHOLDS:
            state = farm.state(household.id)
            shown = farm.values(household.id)
            for unit, values in shown.items():
                template = load_template(TEMPLATES[unit])
                assert await read_device(clients[household.id], template, unit) == values
            meter = shown[METER_UNIT]
            assert (meter["import_wh"], meter["export_wh"]) == (state.import_total_wh, state.export_total_wh)
            last = records[-3:][HOUSEHOLDS.index(household)].flows
            assert last.duration_s == 600
            assert meter["power_w"] == average_power_w(last.import_wh - last.export_wh, 600)
            if household.battery is not None:
                assert shown[BATTERY_UNIT]["stored_wh"] == state.stored_mwh // 1000
                assert shown[BATTERY_UNIT]["setpoint_enable"] == 0  # self-consuming on its own
                assert shown[INVERTER_UNIT]["pv_energy_wh"] == state.pv_total_wh > 0
        assert set(shown) == {METER_UNIT, INVERTER_UNIT, BATTERY_UNIT}
        assert set(farm.values("h002")) == {METER_UNIT}

    run(scenario)


def test_a_battery_setpoint_written_over_modbus_moves_the_soc() -> None:
    async def scenario(farm: DeviceFarm, clients: dict[str, AsyncModbusTcpClient]) -> None:
        client = clients["h001"]
        battery = load_template("gridmesh-battery")
        point = battery.point("setpoint_w")
        words = encode_point(point, -2000)
        response = await client.write_registers(point.address, words, device_id=BATTERY_UNIT)
        assert not response.isError()
        assert await write_point(client, BATTERY_UNIT, "setpoint_enable", 1) is None
        assert farm.state("h001").setpoint_w == -2000 and farm.state("h001").remote
        [record] = [r for r in farm.advance_to(START + 900) if r.household == "h001"]
        assert isinstance(record, StepRecord)
        assert (record.flows.charge_wh, record.stored_wh, record.soc_pct) == (500, 2950, 59)
        values = await read_device(client, battery, BATTERY_UNIT)
        assert (values["power_w"], values["charge_wh"], values["soc_pct"], values["setpoint_w"]) == (
            -2000, 500, 59, -2000)
        # beyond the battery's own limit: clamped to 2500 W, and the SoC window holds
        assert await write_point(client, BATTERY_UNIT, "setpoint_w", 9000) is None
        farm.advance_to(START + 900 + 4 * 3600)
        values = await read_device(client, battery, BATTERY_UNIT)
        assert values["discharge_wh"] == 2950 - 500 and values["soc_pct"] == 10
        assert farm.advance_to(START + 900 + 4 * 3600) == []

    run(scenario)


def test_out_of_range_writes_get_an_exception_and_change_nothing() -> None:
    async def scenario(farm: DeviceFarm, clients: dict[str, AsyncModbusTcpClient]) -> None:
        client = clients["h003"]
        assert await write_point(client, BATTERY_UNIT, "setpoint_w", 1_000_001) == ILLEGAL_DATA_VALUE
        assert await write_point(client, BATTERY_UNIT, "setpoint_w", -1_000_001) == ILLEGAL_DATA_VALUE
        assert await write_point(client, INVERTER_UNIT, "export_limit_pct", 101) == ILLEGAL_DATA_VALUE
        assert await write_point(client, BATTERY_UNIT, "setpoint_enable", 2) == ILLEGAL_DATA_VALUE
        state = farm.state("h003")
        assert (state.setpoint_w, state.remote, state.export_limit_pct) == (0, False, 100)
        response = await client.read_holding_registers(0, count=2, device_id=BATTERY_UNIT)
        assert response.registers == [0, 0]
        # input registers and unmapped addresses cannot be written
        response = await client.write_register(5, 1, device_id=BATTERY_UNIT)
        assert response.isError()
        response = await client.read_input_registers(21, count=1, device_id=BATTERY_UNIT)
        assert response.isError()
        # a consumer has no battery: its unit id answers with an exception, not silence
        response = await clients["h002"].read_input_registers(0, count=2, device_id=BATTERY_UNIT)
        assert response.isError() and response.exception_code == ILLEGAL_DATA_ADDRESS

    run(scenario)


def test_the_inverter_limit_curtails_pv() -> None:
    async def scenario(farm: DeviceFarm, clients: dict[str, AsyncModbusTcpClient]) -> None:
        assert await write_point(clients["h001"], INVERTER_UNIT, "export_limit_pct", 0) is None
        records = {r.household: r for r in farm.advance_to(START + 900)}
        assert records["h001"].flows.pv_wh == 0 and records["h001"].flows.curtailed_wh > 0
        assert records["h003"].flows.pv_wh > 0 and records["h003"].flows.curtailed_wh == 0
        inverter = await read_device(clients["h001"], load_template("gridmesh-inverter"), INVERTER_UNIT)
        assert (inverter["pv_power_w"], inverter["export_limit_pct"]) == (0, 0)

    run(scenario)


def test_a_hundred_households_serve_from_one_process() -> None:
    households = make_households(100, 1)

    async def scenario(farm: DeviceFarm, clients: dict[str, AsyncModbusTcpClient]) -> None:
        ports = {farm.endpoint(h.id)[1] for h in households}
        assert len(ports) == 100
        farm.advance_to(START + 900)
        meter = load_template("gridmesh-meter")
        for h in households:
            values = await read_device(clients[h.id], meter, METER_UNIT)
            assert values == farm.values(h.id)[METER_UNIT]

    run(scenario, households)


def test_time_only_moves_forward() -> None:
    farm = DeviceFarm(HOUSEHOLDS, ProfileSet.load_bundled(), START)
    assert farm.advance_to(START) == []
    with pytest.raises(ValueError, match="cannot go back"):
        farm.advance_to(START - 1)
    with pytest.raises(ValueError, match="unique"):
        DeviceFarm((*HOUSEHOLDS, HOUSEHOLDS[0]), ProfileSet.load_bundled(), START)
    with pytest.raises(KeyError, match="no running devices"):
        farm.endpoint("h001")
