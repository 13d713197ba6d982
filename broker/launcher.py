"""Start an MQTT broker as a child process: mosquitto when installed, else embedded amqtt.

Both are configured so that no queued QoS 1 message is lost for an offline persistent
session: mosquitto's default ``max_queued_messages 1000`` silently drops the rest,
so the generated configuration lifts the limit; amqtt queues nothing for anonymous
sessions, so the embedded broker admits clients through our own plugin
(:mod:`broker.embedded`).

A broker is ready when it says so in its own output (``broker.out`` in its working
directory), not when something accepts connections on the port: that could be
another program that took the port after the check.

mosquitto keeps its sessions and queued messages across its own restart (``persistence``
in its working directory, saved on shutdown and every ``AUTOSAVE_S``); the embedded
broker keeps them in memory only. :meth:`BrokerHandle.halt` and
:meth:`BrokerHandle.start_again` stop a broker and start it again on the same port and
working directory, as an operator's restart would.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

READY_TIMEOUT_S = 10.0
AUTOSAVE_S = 10  # mosquitto writes its persistence file this often (and when it stops)
READY_LINE = {
    "mosquitto": re.compile(r"mosquitto version \S+ running"),
    "embedded": re.compile(r"embedded amqtt broker ready on "),
}


class BrokerError(RuntimeError):
    """A broker could not be started; the message says why."""


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int, host: str = "127.0.0.1", first: int = 20_000, last: int = 32_000) -> int:
    """The first of ``count`` consecutive free ports, below the kernel's ephemeral range
    (so no client socket takes one of them before a server binds it)."""
    for base in range(first, last - count, count):
        if not any(_port_in_use(host, port) for port in range(base, base + count)):
            return base
    raise BrokerError(f"no {count} consecutive free ports in {first}..{last}")


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class BrokerHandle:
    kind: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    _tempdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    command: tuple[str, ...] = ()
    ready_line: re.Pattern[str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        self.halt()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def halt(self) -> None:
        """Stop the broker process (SIGTERM: mosquitto saves its sessions); its port and
        working directory stay reserved for :meth:`start_again`."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def start_again(self) -> None:
        """Start the halted broker again, same port, configuration and working directory."""
        if self.process.poll() is None:
            raise BrokerError(f"{self.kind} on {self.url} is still running")
        if not self.command or self.ready_line is None:
            raise BrokerError(f"{self.kind} on {self.url} was not started by start_broker")
        if _port_in_use(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is already in use")
        already = (self.workdir / "broker.out").stat().st_size
        self.process = _launch(list(self.command), self.workdir)
        _wait_ready(self, already)

    def __enter__(self) -> BrokerHandle:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()


def mosquitto_version(executable: str) -> str:
    out = subprocess.run([executable, "-h"], capture_output=True, text=True, check=False).stdout
    first = out.splitlines()[0] if out else ""
    return first.replace("mosquitto version ", "").strip() or "?"


def mosquitto_config(host: str, port: int, workdir: Path) -> str:
    lines = [
        f"listener {port} {host}",
        "allow_anonymous true",
        "max_queued_messages 0",  # 0: unlimited; the default 1000 drops QoS 1 messages
        "max_queued_bytes 0",
        "persistence true",  # sessions and queued messages survive a restart
        f"persistence_location {workdir}/",
        f"autosave_interval {AUTOSAVE_S}",
        "set_tcp_nodelay true",
        "log_dest stderr",  # into broker.out unbuffered: the launcher looks for the ready line
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Started as root, mosquitto would switch to the user mosquitto, who cannot
        # write its database into a working directory that root created.
        lines.append("user root")
    return "\n".join([*lines, ""])


def start_broker(kind: str = "auto", port: int | None = None, host: str = "127.0.0.1",
                 workdir: Path | None = None, config: Path | None = None) -> BrokerHandle:
    """Start a broker; ``kind`` is auto, mosquitto or embedded. ``config``: mosquitto with
    this configuration file instead of its own (``gridmesh deploy broker-config``'s, which
    listens on ``host:port`` and logs to stderr)."""
    mosquitto = find_mosquitto()
    if kind == "auto":
        kind = "mosquitto" if mosquitto or config else "embedded"
    if kind not in ("mosquitto", "embedded"):
        raise BrokerError(f"unknown broker kind {kind!r}")
    if config is not None and kind != "mosquitto":
        raise BrokerError("a locked-down broker needs mosquitto: the embedded broker has no TLS, "
                          "passwords or ACL")
    if port is None:
        port = free_port(host)
    elif _port_in_use(host, port):
        raise BrokerError(f"port {port} on {host} is already in use")
    tempdir = None
    if workdir is None:
        tempdir = tempfile.TemporaryDirectory(prefix="gridmesh-broker-")
        workdir = Path(tempdir.name)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "broker.out").write_bytes(b"")
    if kind == "mosquitto":
        if mosquitto is None:
            raise BrokerError("mosquitto is not installed (apt install mosquitto)")
        conf = config or workdir / "mosquitto.conf"
        if config is None:
            conf.write_text(mosquitto_config(host, port, workdir))
        cmd = [mosquitto, "-c", str(conf)]
        label = f"mosquitto {mosquitto_version(mosquitto)}"
    else:
        cmd = [sys.executable, "-m", "broker.embedded", "--host", host, "--port", str(port)]
        label = "embedded amqtt"
    handle = BrokerHandle(label, host, port, _launch(cmd, workdir), workdir, tempdir, tuple(cmd),
                          READY_LINE[kind])
    _wait_ready(handle, 0)
    return handle


def _launch(cmd: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    """Start the broker, its output appended to ``broker.out`` (a restart adds to it)."""
    with (workdir / "broker.out").open("ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(handle: BrokerHandle, already: int) -> None:
    """Return once the broker's output after its first ``already`` bytes says it is
    ready; stop it and raise BrokerError if it exits first or stays silent."""
    assert handle.ready_line is not None
    output = handle.workdir / "broker.out"
    process, host, port, label = handle.process, handle.host, handle.port, handle.kind
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        exited = process.poll() is not None
        with output.open("rb") as log:
            log.seek(already)
            text = log.read().decode(errors="replace")
        if not exited and handle.ready_line.search(text):
            return
        if exited:
            handle.stop()
            if "in use" in text or _port_in_use(host, port):
                raise BrokerError(f"port {port} on {host} is already in use")
            last = text.strip().splitlines()[-1:] or ["no output"]
            raise BrokerError(f"{label} exited with code {process.returncode} at start: {last[0]}")
        time.sleep(0.05)
    handle.stop()
    raise BrokerError(f"{label} did not report ready on {host}:{port} within "
                      f"{READY_TIMEOUT_S:.0f} s")
