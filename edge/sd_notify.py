"""systemd's notify protocol, and when the agent deserves a watchdog ping.

Under ``Type=notify`` systemd hands the service a datagram socket in ``NOTIFY_SOCKET``
(a path, or an abstract name starting with ``@``) and, with ``WatchdogSec=``, the
interval in ``WATCHDOG_USEC``. :class:`Notifier` sends ``READY=1`` once and
``WATCHDOG=1`` on request; without ``NOTIFY_SOCKET`` it does nothing.

:class:`LoopHealth` is the pure half: the agent tells it when each slot cycle starts and
finishes (devices read, actions applied, messages handed on) and it says whether a ping
is deserved. The loop is healthy while no cycle has run longer than the limit and, with
the wall clock, the cycle of the latest slot start began and finished within the limit
of that start. A broker outage does not make it unhealthy (the agent islands); a loop
stuck in a device call, or one that stopped cycling, does, and systemd restarts it.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass
class LoopHealth:
    limit_s: int  # how long a cycle may take, and how late it may finish after its slot start
    slot_s: int | None = None  # the wall clock's slot length; None: cycles come on ticks
    started_s: int | None = None  # the running cycle's start, None when none runs
    finished_s: int | None = None  # when the last cycle finished
    born_s: int | None = None  # the first time health was asked, before any cycle

    def cycle_started(self, now_s: int) -> None:
        self.started_s = now_s

    def cycle_finished(self, now_s: int) -> None:
        self.started_s = None
        self.finished_s = now_s

    def healthy(self, now_s: int) -> bool:
        if self.born_s is None:
            self.born_s = now_s
        if self.started_s is not None and now_s - self.started_s > self.limit_s:
            return False  # stuck inside a cycle
        if self.slot_s is None:
            return True
        due_s = now_s - now_s % self.slot_s  # the latest slot start: its cycle should be done
        if now_s - due_s <= self.limit_s or due_s < self.born_s:
            return True  # still inside its grace, or before this agent started
        return self.finished_s is not None and self.finished_s >= due_s


def _address(name: str) -> str:
    return "\0" + name[1:] if name.startswith("@") else name


class Notifier:
    """Sends notifications to systemd; a no-op outside a ``Type=notify`` service."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.socket_name = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or (pid.isdigit() and int(pid) == os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else None
        self.sent: list[str] = []  # what went out, for the agent's statistics and tests
        self._ready = False

    @property
    def enabled(self) -> bool:
        return self.socket_name is not None

    def ready(self, status: str = "") -> None:
        """``READY=1``, once."""
        if not self._ready:
            self._ready = True
            self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        self._send(f"STATUS={text}")

    def _send(self, message: str) -> None:
        if self.socket_name is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(message.encode(), _address(self.socket_name))
            except OSError:
                return  # systemd went away: nothing the agent can do about it
        self.sent.append(message)


class Supervised(Protocol):
    """What :func:`notify_systemd` watches: an agent."""

    running: asyncio.Event

    def healthy(self) -> bool: ...


async def notify_systemd(agents: Sequence[Supervised], notifier: Notifier,
                         sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """``READY=1`` once every agent runs (connected, or islanded after a failed first
    connection), then ``WATCHDOG=1`` every half watchdog interval while all are healthy."""
    await asyncio.gather(*(agent.running.wait() for agent in agents))
    notifier.ready(f"{len(agents)} agent(s) running")
    if notifier.watchdog_s is None:
        return
    while True:
        if all(agent.healthy() for agent in agents):
            notifier.watchdog()
        await sleep(notifier.watchdog_s / 2)
