"""systemd integration: a real AF_UNIX datagram socket stands in for systemd's notify
socket. ``READY=1`` once the agents run, ``WATCHDOG=1`` only while their slot loop is
healthy (a fake clock decides that), nothing at all outside a notify service; and a real
``gridmesh agent`` process tells the socket it is ready, connected or not."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from broker.identity import Identity
from broker.launcher import BrokerHandle, free_port
from edge.sd_notify import LoopHealth, Notifier, notify_systemd

BOSS = Identity.derived("coordinator", 1)
H001 = Identity.derived("h001", 1)


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket where systemd's would be, and its path."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(20)
        yield sock, path


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_a_stuck_or_late_slot_cycle_is_unhealthy() -> None:
    health = LoopHealth(limit_s=30, slot_s=900)
    assert health.healthy(1_000_050)  # started mid-slot: nothing due yet
    health.cycle_started(1_000_800)  # 1_000_800 is a slot start
    assert health.healthy(1_000_829)
    assert not health.healthy(1_000_831)  # stuck in the cycle (a device call that hangs)
    health.cycle_finished(1_000_832)
    assert health.healthy(1_000_900)
    assert health.healthy(1_001_729)  # the next slot start's cycle may still come...
    assert not health.healthy(1_001_731)  # ...but it is late: the loop stopped cycling
    health.cycle_started(1_001_740)
    health.cycle_finished(1_001_741)
    assert health.healthy(1_001_800)
    ticks = LoopHealth(limit_s=30)  # the bus clock: cycles come on ticks, only stuck counts
    ticks.cycle_started(5)
    assert ticks.healthy(35) and not ticks.healthy(36)


def test_the_notifier_speaks_the_protocol_on_a_path_and_an_abstract_socket(
        systemd: tuple[socket.socket, str]) -> None:
    sock, path = systemd
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    assert notifier.enabled and notifier.watchdog_s == 4.0
    notifier.ready("2 agent(s) running")
    notifier.ready()  # once only
    notifier.watchdog()
    assert [received(sock), received(sock)] == ["READY=1\nSTATUS=2 agent(s) running", "WATCHDOG=1"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract:
        name = f"gridmesh-test-{os.getpid()}"
        abstract.bind("\0" + name)
        abstract.settimeout(5)
        Notifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert received(abstract) == "WATCHDOG=1"


def test_without_systemd_nothing_is_sent_and_a_watchdog_for_another_process_is_ignored() -> None:
    quiet = Notifier({})
    quiet.ready()
    quiet.watchdog()
    assert not quiet.enabled and quiet.sent == []
    other = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000",
                      "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_s is None
    other.ready()  # systemd gone: no error, nothing recorded
    assert other.sent == []


class StubAgent:
    """What the supervisor watches, with health set by the test."""

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.ok = True

    def healthy(self) -> bool:
        return self.ok


def test_pings_come_only_while_every_agent_is_healthy(systemd: tuple[socket.socket, str]) -> None:
    sock, path = systemd
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    agents = [StubAgent(), StubAgent()]
    intervals: list[float] = []

    async def half_interval(seconds: float) -> None:  # one step of the supervisor's loop
        intervals.append(seconds)
        agents[1].ok = len(intervals) != 1  # unhealthy for the second round only
        if len(intervals) == 3:
            raise asyncio.CancelledError

    async def main() -> None:
        task = asyncio.create_task(notify_systemd(agents, notifier, half_interval))
        agents[0].running.set()
        await asyncio.sleep(0)
        assert notifier.sent == []  # not ready while one agent does not run yet
        agents[1].running.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert intervals == [1.0, 1.0, 1.0]
    assert notifier.sent == ["READY=1\nSTATUS=2 agent(s) running", "WATCHDOG=1", "WATCHDOG=1"]
    assert [received(sock) for _ in range(3)] == notifier.sent


def agent_config(tmp_path: Path, broker: str) -> Path:
    (tmp_path / "h001.key").write_text(H001.private_hex() + "\n")
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "agent": {"device": "h001", "key_file": "h001.key", "broker": broker, "clock": "wall",
                  "forecaster": "seasonal-naive", "modbus": {"host": "127.0.0.1", "port": free_port()}},
        "community": {"id": "demo", "coordinator_key": BOSS.public_key_hex,
                      "members": [{"id": "h001", "public_key": H001.public_key_hex}]},
    }))
    return path


def ready_and_alive(address: str, systemd: tuple[socket.socket, str], tmp_path: Path) -> None:
    """A ``gridmesh agent`` process under a notify socket says READY=1, then pings."""
    sock, path = systemd
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    process = subprocess.Popen([sys.executable, "-m", "gridmesh", "agent", "--config",
                                str(agent_config(tmp_path, address))], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert received(sock) == "READY=1\nSTATUS=1 agent(s) running"
        assert received(sock) == "WATCHDOG=1"
    finally:
        process.terminate()
        process.wait(10)
    assert (tmp_path / "state" / "h001.outbox.db").exists()  # the default state_dir, beside the file


@pytest.mark.broker
def test_a_connected_agent_process_tells_systemd_it_is_ready_and_alive(
        broker: BrokerHandle, systemd: tuple[socket.socket, str], tmp_path: Path) -> None:
    ready_and_alive(broker.url, systemd, tmp_path)


def test_an_agent_process_without_its_broker_is_ready_too_in_island_mode(
        systemd: tuple[socket.socket, str], tmp_path: Path) -> None:
    """Else systemd would kill it at its start timeout and island mode would never run."""
    ready_and_alive(f"127.0.0.1:{free_port()}", systemd, tmp_path)
