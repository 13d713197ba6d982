"""The testbed's supervisor: it starts the participants' processes, watches them and, in a
drill, starts one that died again, as systemd does for a service with ``Restart=``.

Without a restart delay a participant that dies with an error fails the run, its log's
last lines saying why. With ``restart_delay_s`` set, a process that exits with anything
but 0 (0 is the clean exit after the run's last tick) is started again with the same
command after that delay (systemd's ``RestartSec=``), at most ``max_restarts`` times
each (``StartLimitBurst=``), its output appended to the same log. Each death and restart
is kept as a :class:`Restart`. A drill finds a process by name or by its command and
kills it (:meth:`Supervisor.kill`).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from simulators.testbed_errors import TestbedError, tail

if TYPE_CHECKING:
    from simulators.device_farm import DeviceFarm
    from simulators.testbed_broker import TestbedBroker

Participant = tuple[str, asyncio.subprocess.Process, Path]  # name, process, log file


@dataclass(frozen=True)
class Restart:
    name: str
    old_pid: int
    exit_code: int  # negative: killed by that signal
    new_pid: int
    delay_s: float
    at_s: float  # when it died, seconds since the supervisor was made


class Supervisor:
    def __init__(self, restart_delay_s: float | None = None, max_restarts: int = 5,
                 program: tuple[str, ...] = (sys.executable, "-m", "gridmesh")) -> None:
        self.restart_delay_s = restart_delay_s
        self.max_restarts = max_restarts
        self.program = program  # what every command runs
        self.restarts: list[Restart] = []
        self._restarted = asyncio.Condition()
        self._commands: dict[int, tuple[list[str], Path]] = {}  # pid -> command and log
        self._participants: list[Participant] = []
        self._started = time.monotonic()

    async def spawn(self, args: list[str], log_path: Path) -> asyncio.subprocess.Process:
        """Start ``gridmesh ARGS`` (or ``program ARGS``) with its output appended to ``log_path``."""
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *self.program, *args, stdout=log, stderr=asyncio.subprocess.STDOUT)
        self._commands[process.pid] = (list(args), log_path)
        return process

    def watch(self, participants: list[Participant]) -> Coroutine[Any, Any, None]:
        """Watch ``participants`` (known from this call on; an entry is replaced by its
        restarted process) until one fails for good: TestbedError. The coroutine never
        returns: when all have exited cleanly the clock finishes on its own."""
        self._participants = participants
        return self._watch_all()

    async def _watch_all(self) -> None:
        await asyncio.gather(*(self._keep(index) for index in range(len(self._participants))))
        await asyncio.Event().wait()

    async def _keep(self, index: int) -> None:
        restarts = 0
        while True:
            name, process, log_path = self._participants[index]
            code = await process.wait()
            if code == 0:
                return
            if self.restart_delay_s is None or restarts >= self.max_restarts:
                limit = "" if self.restart_delay_s is None else f", after {restarts} restart(s)"
                raise TestbedError(f"{name} stopped during the run (exit code {code}{limit}):\n"
                                   f"{tail(log_path)}")
            died_s = time.monotonic() - self._started
            await asyncio.sleep(self.restart_delay_s)
            args, _ = self._commands[process.pid]
            with log_path.open("ab") as log:
                log.write(f"--- supervisor: exit code {code}; started again after "
                          f"{self.restart_delay_s:.1f} s\n".encode())
            new = await self.spawn(args, log_path)
            restarts += 1
            self.restarts.append(Restart(name, process.pid, code, new.pid, self.restart_delay_s, died_s))
            self._participants[index] = (name, new, log_path)
            async with self._restarted:
                self._restarted.notify_all()

    async def wait_restarts(self, count: int) -> None:
        """Return once ``count`` restarts have happened in all."""
        async with self._restarted:
            await self._restarted.wait_for(lambda: len(self.restarts) >= count)

    def names(self) -> list[str]:
        return [name for name, _, _ in self._participants]

    def find(self, matches: Callable[[list[str]], bool]) -> str:
        """The name of the participant whose command ``matches``; KeyError if none."""
        for name, process, _ in self._participants:
            if matches(self._commands[process.pid][0]):
                return name
        raise KeyError("no participant runs such a command")

    def pid(self, name: str) -> int:
        for known, process, _ in self._participants:
            if known == name:
                return process.pid
        raise KeyError(f"no participant named {name!r} (known: {', '.join(self.names())})")

    async def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to ``name``'s process and wait until it is gone; its pid."""
        for known, process, _ in self._participants:
            if known == name:
                process.send_signal(sig)
                await process.wait()
                return process.pid
        raise KeyError(f"no participant named {name!r} (known: {', '.join(self.names())})")


class RunControl(Protocol):
    """What drives a testbed run from outside (a drill): its supervisor, and a look at the
    run's broker, devices and agent configuration files before any participant starts."""

    supervisor: Supervisor

    async def prepare(self, broker: TestbedBroker, farm: DeviceFarm, agent_files: list[Path]) -> None: ...
