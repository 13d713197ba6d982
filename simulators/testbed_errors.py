"""How a testbed run fails: one error type, and the end of a process's log to show with it."""

from __future__ import annotations

from pathlib import Path


class TestbedError(RuntimeError):
    """The run could not be started or did not finish; the message says why."""


def tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
