"""Faults commanded at run time: ``gridmesh fault`` over a real broker to a farm that
listens, the device misbehaving for a Modbus client until the fault is cleared."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from pathlib import Path

import pytest
import yaml
from pymodbus.client import AsyncModbusTcpClient

from broker.bus import Endpoint, connect
from broker.launcher import BrokerHandle, free_port_block
from broker.messages import FAULT_KINDS, ClockTick, FaultCommand, encode
from broker.monitor import format_payload
from broker.topics import Topics, parse_topic
from gridmesh.cli import UsageError, main
from gridmesh.endpoints import target
from simulators.device_farm import FAULT_NAMES, METER_UNIT, DeviceFarm
from simulators.fault_cli import command_from_args
from simulators.fault_control import FaultInbox, command_problem, listen
from simulators.fleet import make_households
from simulators.profiles import ProfileSet

START = int(dt.datetime(2016, 6, 6, 11, tzinfo=dt.UTC).timestamp())
HOUSEHOLDS = make_households(2, 5, prosumer_pct=0)  # two consumers: a meter each, nothing else


def args(household: str = "h001", device: str = "meter", fault: str = "timeout",
         **kw: object) -> argparse.Namespace:
    return argparse.Namespace(household=household, device=device, fault=fault,
                              **{"run": None, "broker": "127.0.0.1:1883", "community": None, **kw})


def test_the_wire_names_every_fault_the_farm_knows() -> None:
    assert set(FAULT_KINDS) - {"none"} == set(FAULT_NAMES)


def test_bad_arguments_are_refused_with_the_argument_named() -> None:
    assert command_from_args(args(fault="clear")).fault == "none"
    with pytest.raises(UsageError, match="fault: 'fire' is not one of timeout, slow"):
        command_from_args(args(fault="fire"))
    with pytest.raises(UsageError, match="device: 'fridge' is not one of meter, inverter, battery"):
        command_from_args(args(device="fridge"))
    with pytest.raises(UsageError, match="household: 'h 1' does not match"):
        command_from_args(args(household="h 1"))


def test_the_fault_topic_parses_and_the_monitor_decodes_it() -> None:
    topic = Topics("demo").sim_fault
    assert topic == "gm/v1/demo/sim/fault"
    assert (parse_topic(topic).kind, parse_topic(topic).name) == ("fault", None)
    line = format_payload(topic, encode(FaultCommand("h003", "meter", "timeout", 0)), 0)
    assert line.endswith("demo/sim/fault fault h003 meter -> timeout")
    assert format_payload(topic, encode(FaultCommand("h003", "meter", "none", 0)), 0).endswith("-> clear")


def test_commands_are_checked_against_the_farm() -> None:
    households = make_households(4, 7, prosumer_pct=50)
    farm = DeviceFarm(households, ProfileSet.load_bundled(), START)  # not started: no ports needed
    prosumer = next(h.id for h in households if h.battery is not None)
    consumer = next(h.id for h in households if h.pv_profile is None)
    assert command_problem(farm, FaultCommand(prosumer, "battery", "busy")) is None
    assert command_problem(farm, FaultCommand(consumer, "meter", "none")) is None
    assert command_problem(farm, FaultCommand(consumer, "inverter", "slow")) == (
        f"{consumer} (consumer) has no inverter")
    assert command_problem(farm, FaultCommand("h099", "meter", "slow")) == (
        "no household 'h099' here (serving 4)")


def test_payloads_that_are_not_fault_commands_are_refused_with_the_reason() -> None:
    inbox = FaultInbox()
    good = encode(FaultCommand("h001", "meter", "frozen", 0))
    inbox.receive(good.replace(b'"frozen"', b'"fire"'))
    inbox.receive(good.replace(b'"meter"', b'"fridge"'))
    inbox.receive(encode(ClockTick(1, 0)))
    inbox.receive(b"not json")
    inbox.receive(good)
    assert [c.fault for c in inbox.pending] == ["frozen"]
    reasons = [why for what, why in inbox.refused if what == "payload"]
    assert len(reasons) == 4
    assert reasons[0].startswith("fault.fault: must be one of timeout,") and "'fire'" in reasons[0]
    assert reasons[1].startswith("fault.device: must be one of meter,") and "'fridge'" in reasons[1]
    assert "expected 'fault' here, got 'tick'" in reasons[2]


@pytest.mark.parametrize(("argv", "named"), [
    (["h001", "fridge", "busy"], "device: 'fridge'"),
    (["h001", "meter", "fire"], "fault: 'fire'"),
    (["h 1", "meter", "busy"], "household: 'h 1'"),
    (["--community", "a/b", "h001", "meter", "busy"], "--community: 'a/b'"),
])
def test_gridmesh_fault_exits_2_naming_the_bad_argument(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fault", "--broker", "127.0.0.1:1883", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gridmesh fault: ") and named in err


def test_gridmesh_fault_exits_2_when_the_broker_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port_block(1)  # nothing listens there
    assert main(["fault", "--broker", f"127.0.0.1:{port}", "h001", "meter", "busy"]) == 2
    assert f"cannot reach the broker at 127.0.0.1:{port}" in capsys.readouterr().err
    assert main(["fault", "--broker", "nowhere", "h001", "meter", "busy"]) == 2
    assert "--broker: address must be HOST:PORT" in capsys.readouterr().err
    assert main(["fault", "--run", str(tmp_path), "h001", "meter", "busy"]) == 2
    assert "--run: " in capsys.readouterr().err


def test_a_run_folder_names_its_broker_and_community(tmp_path: Path) -> None:
    config = tmp_path / "run" / "config"
    config.mkdir(parents=True)
    coordinator = {"coordinator": {"broker": "127.0.0.1:40123"}}
    (config / "coordinator.yaml").write_text(yaml.safe_dump(coordinator))
    (config / "community.yaml").write_text(yaml.safe_dump({"id": "riverside"}))
    assert target(args(run=tmp_path / "run", broker=None)) == (Endpoint("127.0.0.1", 40123), "riverside")
    with pytest.raises(UsageError, match="holds no testbed configuration"):
        target(args(run=tmp_path, broker=None))


async def read_meter(port: int) -> int | None:
    """The meter's exception code, or None when it answers."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    try:
        assert await client.connect()
        response = await client.read_input_registers(0, count=2, device_id=METER_UNIT)
        return int(response.exception_code) if response.isError() else None
    finally:
        client.close()


def test_gridmesh_fault_reaches_a_listening_farm(broker: BrokerHandle) -> None:
    endpoint = f"{broker.host}:{broker.port}"

    async def main_() -> None:
        inbox = FaultInbox()
        arrived = asyncio.Event()

        async def receive(payload: bytes) -> None:
            inbox.receive(payload)
            await inbox.apply(farm)
            arrived.set()

        async def command(*argv: str) -> None:
            arrived.clear()
            code = await asyncio.get_running_loop().run_in_executor(
                None, main, ["fault", "--broker", endpoint, "--community", "demo", *argv])
            assert code == 0
            await asyncio.wait_for(arrived.wait(), 10)

        async with DeviceFarm(HOUSEHOLDS, ProfileSet.load_bundled(), START) as farm, \
                connect(Endpoint(broker.host, broker.port), "farm", persistent=False) as bus:
            subscribed = asyncio.Event()
            listener = asyncio.create_task(listen(bus, Topics("demo"), receive, subscribed))
            try:
                await asyncio.wait_for(subscribed.wait(), 10)
                _, port = farm.endpoint("h001")
                assert await read_meter(port) is None
                await command("h001", "meter", "failure")
                assert await read_meter(port) == 4  # SLAVE_DEVICE_FAILURE
                await command("h001", "meter", "clear")
                assert await read_meter(port) is None
                await command("h009", "meter", "busy")
                await command("h001", "battery", "busy")
                assert [why for _, why in inbox.refused] == [
                    "no household 'h009' here (serving 2)", "h001 (consumer) has no battery"]
                applied = [(c.household, c.fault) for c in inbox.applied]
                assert applied == [("h001", "failure"), ("h001", "none")]
            finally:
                listener.cancel()

    asyncio.run(main_())


def test_gridmesh_simulate_obeys_fault_commands(broker: BrokerHandle) -> None:
    import subprocess
    import sys

    from broker.launcher import free_port_block

    port = free_port_block(1)
    endpoint = f"{broker.host}:{broker.port}"
    with subprocess.Popen(
        [sys.executable, "-m", "gridmesh", "simulate", "--households", "1", "--port-base", str(port),
         "--broker", endpoint, "--community", "lab"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as simulator:
        assert simulator.stdout is not None
        try:
            seen = []
            for line in simulator.stdout:
                seen.append(line)
                if line.startswith("taking fault commands"):
                    assert main(["fault", "--broker", endpoint, "--community", "lab", "h001", "meter",
                                 "failure"]) == 0
                if line.startswith("fault h001 meter -> failure"):
                    break
            assert any(line.startswith("fault h001 meter") for line in seen), "".join(seen)
            assert asyncio.run(read_meter(port)) == 4
        finally:
            simulator.terminate()
            simulator.wait(timeout=10)
