"""A real mosquitto started from ``gridmesh deploy broker-config``'s files: members cannot
act in another's name or read another's answers, clients without the community's
credentials are refused, and credentials never show in text.

Ordering on one connection makes the negative checks exact without waiting for time
to pass: a member publishes what it must not, then what it may; the reader's first
message is the allowed one, so the refused one was never forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import socket
import ssl
import sys
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from broker.bus import BusConnection, BusError, Endpoint, Received, connect
from broker.community import Community, Member
from broker.credentials import Credentials
from broker.identity import Identity
from broker.launcher import BrokerError, find_mosquitto, start_broker
from broker.messages import Status, decode, encode
from broker.topics import Topics
from deploy.locked_broker import LockedBroker, start_locked_broker
from deploy.pki import Authority
from gridmesh.cli import main

pytestmark = pytest.mark.broker
TOPICS = Topics("demo")
WAIT_S = 20.0
T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, WAIT_S)
    return asyncio.run(bounded())


@pytest.fixture(scope="module", params=["tls", "password"])
def locked(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockedBroker]:
    if find_mosquitto() is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed but CI is set: .ci/run installs it")
        pytest.skip("mosquitto is not installed")
    folder = tmp_path_factory.mktemp(f"locked-{request.param}")
    members = tuple(Member(i, Identity.derived(i, 1).public_key_hex) for i in ("h001", "h002"))
    community = Community(id="demo", members=members)
    broker = start_locked_broker(community, request.param, folder / "auth", folder / "broker", bench="clock",
                                 observers=("ops",), home_assistant=("ha",))
    yield broker
    broker.stop()


def message(name: str) -> Status:
    return Status(name, "online", 1)


async def first(bus: BusConnection) -> Received:
    async for received in bus.messages():
        return received
    raise AssertionError("the connection ended without a message")


async def publish_refused(endpoint: Endpoint, client_id: str, topic: str) -> None:
    """Publish where the ACL forbids it: the broker acknowledges and drops the message
    (mosquitto 2.0 then closes the connection)."""
    with contextlib.suppress(BusError):
        async with connect(endpoint, client_id, persistent=False) as bus:
            await bus.publish(topic, message("forged"))


def test_a_member_cannot_publish_in_another_members_name(locked: LockedBroker) -> None:
    async def scenario() -> Received:
        async with connect(locked.endpoint("coordinator"), "demo-coordinator", persistent=False) as coord:
            await coord.subscribe([TOPICS.all_devices("order")])
            await publish_refused(locked.endpoint("h001"), "demo-h001", TOPICS.device("h002", "order"))
            async with connect(locked.endpoint("h001"), "demo-h001", persistent=False) as h001:
                await h001.publish(TOPICS.device("h001", "order"), message("h001"))  # its own
            return await first(coord)

    received = run(scenario())
    assert received.topic == TOPICS.device("h001", "order")


def test_a_member_cannot_read_another_members_awards(locked: LockedBroker) -> None:
    async def scenario() -> Received:
        async with connect(locked.endpoint("h001"), "demo-h001", persistent=False) as h001:
            await h001.subscribe([TOPICS.device("h002", "award"), TOPICS.device("h001", "award")])
            async with connect(locked.endpoint("coordinator"), "demo-coordinator", persistent=False) as coord:
                await coord.publish(TOPICS.device("h002", "award"), message("h002"))
                await coord.publish(TOPICS.device("h001", "award"), message("h001"))
            return await first(h001)

    assert run(scenario()).topic == TOPICS.device("h001", "award")


@pytest.mark.parametrize("forged", [TOPICS.block, TOPICS.clearing, TOPICS.device("h002", "award"),
                                    TOPICS.tick])
def test_only_the_coordinator_publishes_market_data_and_answers(locked: LockedBroker, forged: str) -> None:
    async def scenario() -> Received:
        async with connect(locked.endpoint("h002"), "demo-h002", persistent=False) as h002:
            await h002.subscribe([forged, TOPICS.clearing])
            await publish_refused(locked.endpoint("h001"), "demo-h001", forged)
            async with connect(locked.endpoint("coordinator"), "demo-coordinator", persistent=False) as coord:
                await coord.publish(TOPICS.clearing, message("coordinator"))
            return await first(h002)

    received = run(scenario())
    assert (received.topic, received.payload) == (TOPICS.clearing, encode(message("coordinator")))


# An MQTT 3.1.1 CONNECT (clean session, keepalive 30 s, client id demo-h01): what a client
# says first. The broker answers a client it admits with CONNACK 0.
CONNECT = b"\x10\x14\x00\x04MQTT\x04\x02\x00\x1e\x00\x08demo-h01"
ACCEPTED = b"\x20\x02\x00\x00"


def first_reply(locked: LockedBroker, credentials: Credentials | None) -> bytes | str:
    """The broker's first bytes to a CONNECT over TCP (TLS with ``credentials``), or how
    the connection ended: without a CONNACK, a client is refused."""
    host, port = locked.handle.host, locked.handle.port
    try:
        with socket.create_connection((host, port), timeout=WAIT_S) as raw:
            context = credentials.tls_context() if credentials else None
            sock = context.wrap_socket(raw, server_hostname=host) if context else raw
            with sock:
                sock.sendall(CONNECT)
                return sock.recv(4) or "closed"
    except (ssl.SSLError, ConnectionError) as exc:
        return f"{type(exc).__name__}: {exc}"


def test_a_client_without_credentials_is_refused(locked: LockedBroker) -> None:
    if locked.plan.auth == "tls":
        assert first_reply(locked, locked.credentials("h001")) == ACCEPTED  # the probe works
    assert first_reply(locked, None) in ("closed", "ConnectionResetError: [Errno 104] Connection reset "
                                         "by peer")  # no TLS
    ca_only = Credentials(ca_file=locked.folder / "ca.crt")  # TLS, but who is it?
    reply = first_reply(locked, ca_only)
    assert reply != ACCEPTED
    if locked.plan.auth == "tls":
        assert "CERTIFICATE_REQUIRED" in str(reply)
    else:
        assert reply == b"\x20\x02\x00\x05"  # CONNACK: not authorized


def test_a_certificate_from_another_ca_is_refused(locked: LockedBroker, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    stranger = Authority.create("demo", now, 1).issue_client("h001", now, 1)
    (tmp_path / "client.crt").write_bytes(stranger.cert_pem)
    (tmp_path / "client.key").write_bytes(stranger.key_pem)
    forged = Credentials(ca_file=locked.folder / "ca.crt", cert_file=tmp_path / "client.crt",
                         key_file=tmp_path / "client.key")
    reply = first_reply(locked, forged)
    if locked.plan.auth == "tls":
        assert "UNKNOWN_CA" in str(reply)
    else:  # the broker asks for no certificate, and a certificate is no password
        assert reply == b"\x20\x02\x00\x05"


async def refused(endpoint: Endpoint) -> str:
    """The error the project's client gets from the broker at ``endpoint``."""
    try:
        async with connect(endpoint, "demo-h001", persistent=False):
            pass
    except BusError as exc:
        return str(exc)
    raise AssertionError("the broker let the client in")


@pytest.mark.parametrize("locked", ["password"], indirect=True)
def test_a_wrong_password_is_refused_and_never_shown(locked: LockedBroker) -> None:
    right = locked.credentials("h001")
    assert right.password and right.password not in repr(right)
    wrong = Credentials("h001", "not-" + right.password, right.ca_file)
    endpoint = Endpoint(locked.handle.host, locked.handle.port, wrong)
    error = run(refused(endpoint))
    assert wrong.password not in error and wrong.password not in repr(endpoint)
    assert str(endpoint) == f"{locked.handle.host}:{locked.handle.port}"
    stolen = Credentials("h002", right.password, right.ca_file)  # h001's password under h002's name
    run(refused(Endpoint(locked.handle.host, locked.handle.port, stolen)))


def test_the_embedded_broker_cannot_be_locked_down(tmp_path: Path) -> None:
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("allow_anonymous false\n")
    with pytest.raises(BrokerError, match="needs mosquitto: the embedded broker has no TLS"):
        start_broker("embedded", workdir=tmp_path / "b", config=conf)


@pytest.mark.parametrize("locked", ["password"], indirect=True)
def test_mosquitto_pub_logs_in_with_a_generated_password(locked: LockedBroker) -> None:
    """Another client than ours logs in with a password the file was generated for."""
    if shutil.which("mosquitto_pub") is None:
        pytest.skip("mosquitto_pub is not installed (mosquitto-clients)")

    async def scenario() -> Received:
        async with connect(locked.endpoint("h001"), "demo-h001", persistent=False) as h001:
            await h001.subscribe([TOPICS.tick])
            credentials = locked.credentials("clock")
            assert credentials.password is not None and credentials.ca_file is not None
            process = await asyncio.create_subprocess_exec(
                "mosquitto_pub", "-h", locked.handle.host, "-p", str(locked.handle.port),
                "--cafile", str(credentials.ca_file), "-u", "clock", "-P", credentials.password,
                "-q", "1", "-t", TOPICS.tick, "-m", "tick")
            assert await process.wait() == 0
            return await first(h001)

    assert run(scenario()).payload == b"tick"


def test_fault_commands_come_from_the_bench_alone(locked: LockedBroker,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def fault(principal: str, household: str) -> int:
        return main(["fault", "--broker", locked.handle.url, "--community", "demo", "--broker-auth",
                     str(locked.auth_file(principal)), household, "meter", "timeout"])

    async def scenario() -> Received:
        async with connect(locked.endpoint("clock"), "demo-faults", persistent=False) as bench:
            await bench.subscribe([TOPICS.sim_fault])
            await asyncio.to_thread(fault, "h001", "h002")  # a member may not command faults
            assert await asyncio.to_thread(fault, "clock", "h001") == 0
            return await first(bench)

    assert decode(run(scenario()).payload).household == "h001"  # type: ignore[attr-defined]
    assert "h001 meter -> timeout" in capsys.readouterr().out


def test_an_observer_monitors_with_its_credentials(locked: LockedBroker) -> None:
    async def scenario() -> str:
        async with connect(locked.endpoint("coordinator"), "demo-coordinator", persistent=False) as coord:
            await coord.publish(TOPICS.block, message("coordinator"), retain=True)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gridmesh", "monitor", "--broker", locked.handle.url, "--topic",
            TOPICS.block, "--count", "1", "--broker-auth", str(locked.auth_file("ops")),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await process.communicate()
        assert process.returncode == 0, out
        return out.decode()

    assert TOPICS.block in run(scenario())


def test_members_publish_their_own_home_assistant_discovery_and_home_assistant_reads_it(
        locked: LockedBroker) -> None:
    own, other = "homeassistant/sensor/h001/grid_power/config", "homeassistant/sensor/h002/grid_power/config"

    async def scenario() -> list[Received]:
        async with connect(locked.endpoint("ha"), "demo-ha", persistent=False) as ha:
            await ha.subscribe(["homeassistant/#", TOPICS.all_devices("status")])
            await publish_refused(locked.endpoint("h001"), "demo-h001", other)  # another's sensor
            await publish_refused(locked.endpoint("h001"), "demo-h001", "homeassistant/switch/h001/x/config")
            await publish_refused(locked.endpoint("ha"), "demo-ha-writes", TOPICS.device("h001", "order"))
            async with connect(locked.endpoint("h001"), "demo-h001", persistent=False) as h001:
                await h001.publish(own, b"{}")
                await h001.publish(TOPICS.device("h001", "status"), message("h001"))
            got = []
            async for received in ha.messages():
                got.append(received)
                if len(got) == 2:
                    return got
        raise AssertionError("the connection ended")

    assert [r.topic for r in run(scenario())] == [own, TOPICS.device("h001", "status")]
