"""``gridmesh simulate`` serves virtual households on fixed ports until stopped, for
agents on real devices; a tool on another machine reads them like real devices."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from broker.launcher import free_port_block
from gridmesh.cli import main


def gridmesh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridmesh", *args], capture_output=True, text=True,
                          timeout=30, check=False)


def test_simulate_serves_households_on_fixed_ports_until_interrupted() -> None:
    base = free_port_block(2)
    process = subprocess.Popen(
        [sys.executable, "-m", "gridmesh", "simulate", "--households", "2", "--port-base", str(base),
         "--meter", "eastron-sdm630", "--speed", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(3)]
        assert lines[0], process.stderr.read() if process.stderr else ""
        assert lines[0].startswith("h001 ") and lines[0].endswith(f"127.0.0.1:{base}")
        assert lines[1].endswith(f"127.0.0.1:{base + 1}")
        assert lines[2].startswith("serving 2 household(s)")
        read = gridmesh("device", "read", f"127.0.0.1:{base + 1}", "--template", "eastron-sdm630")
        assert read.returncode == 0, read.stderr
        values = dict(line.split() for line in read.stdout.splitlines()[1:])
        assert int(values["voltage_l1_mv"]) == 230_000 and int(values["frequency_mhz"]) == 50_000
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
    finally:
        process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_a_port_in_use_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["simulate", "--households", "1", "--port-base", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_bad_arguments_exit_2() -> None:
    assert main(["simulate", "--households", "0", "--port-base", "5020"]) == 2
    assert main(["simulate", "--port-base", "65535", "--households", "2"]) == 2
    assert main(["simulate", "--port-base", "5020", "--start", "2016-13-01"]) == 2
