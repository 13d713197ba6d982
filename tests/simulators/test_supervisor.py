"""The testbed's supervisor with real processes: a small Python program stands in for a
participant (it prints its pid, then exits with the code it is given, or waits)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from simulators import testbed_errors
from simulators.supervisor import Participant, Supervisor

RunFailed = testbed_errors.TestbedError  # imported by its own name, pytest would collect it
# A participant that exits with its code, or with a negative one runs until a signal ends it.
PROGRAM = (sys.executable, "-c",
           "import os, signal, sys; print('pid', os.getpid(), flush=True); code = int(sys.argv[1]);\n"
           "signal.pause() if code < 0 else sys.exit(code)")


async def start(supervisor: Supervisor, tmp_path: Path, *codes: int) -> list[Participant]:
    participants = []
    for index, code in enumerate(codes):
        log = tmp_path / f"p{index}.log"
        participants.append((f"p{index}", await supervisor.spawn([str(code)], log), log))
    return participants


async def stop(participants: list[Participant]) -> None:
    for _, process, _ in participants:
        if process.returncode is None:
            process.kill()
        await process.wait()


def test_without_restarts_a_participant_that_fails_fails_the_run_with_its_log(tmp_path: Path) -> None:
    async def scenario() -> None:
        supervisor = Supervisor(program=PROGRAM)
        participants = await start(supervisor, tmp_path, 0, 3)
        with pytest.raises(RunFailed, match=r"p1 stopped during the run \(exit code 3\):\n.*pid"):
            await supervisor.watch(participants)
        assert supervisor.restarts == []
        await stop(participants)

    asyncio.run(scenario())


def test_a_killed_participant_is_started_again_with_its_command_after_the_delay(tmp_path: Path) -> None:
    async def scenario() -> None:
        supervisor = Supervisor(restart_delay_s=0.05, program=PROGRAM)
        participants = await start(supervisor, tmp_path, -1, 0)
        watch = asyncio.create_task(supervisor.watch(participants))
        old = await supervisor.kill("p0")
        await supervisor.wait_restarts(1)
        (restart,) = supervisor.restarts
        assert (restart.name, restart.old_pid, restart.exit_code) == ("p0", old, -signal.SIGKILL)
        name, process, log = participants[0]  # the entry now holds the new process
        assert name == "p0" and process.pid == restart.new_pid != old
        assert supervisor.pid("p0") == restart.new_pid and process.returncode is None
        assert supervisor.find(lambda args: args == ["-1"]) == "p0"
        watch.cancel()
        await stop(participants)
        assert "supervisor: exit code -9; started again after 0.1 s" in log.read_text()  # appended

    asyncio.run(scenario())


def test_a_participant_that_keeps_failing_is_given_up_after_its_restarts(tmp_path: Path) -> None:
    async def scenario() -> None:
        supervisor = Supervisor(restart_delay_s=0.01, max_restarts=2, program=PROGRAM)
        participants = await start(supervisor, tmp_path, 1)
        with pytest.raises(RunFailed, match=r"p0 stopped during the run \(exit code 1, after 2 restart"):
            await supervisor.watch(participants)
        assert [r.exit_code for r in supervisor.restarts] == [1, 1]
        await stop(participants)

    asyncio.run(scenario())


def test_an_unknown_participant_is_named_with_the_known_ones(tmp_path: Path) -> None:
    async def scenario() -> None:
        supervisor = Supervisor(restart_delay_s=0.01, program=PROGRAM)
        participants = await start(supervisor, tmp_path, -1)
        watch = asyncio.create_task(supervisor.watch(participants))
        with pytest.raises(KeyError, match="known: p0"):
            await supervisor.kill("coordinator")
        watch.cancel()
        await stop(participants)

    asyncio.run(scenario())
