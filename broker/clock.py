"""Time: the injected clock and the market's slot arithmetic.

All times are integer seconds since the Unix epoch (UTC). A slot of length ``slot_s``
has id ``start_s // slot_s``; the market for a slot closes ``gate_closure_s`` seconds
before it starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time in integer epoch seconds."""

    def now_s(self) -> int: ...


class WallClock:
    """The machine's clock (UTC)."""

    def now_s(self) -> int:
        return int(time.time())


class ManualClock:
    """A clock that moves only when told to: the virtual clock, and the clock in tests."""

    def __init__(self, start_s: int) -> None:
        self._now_s = start_s

    def now_s(self) -> int:
        return self._now_s

    def set(self, t_s: int) -> None:
        if t_s < self._now_s:
            raise ValueError(f"time cannot go back: {t_s} < {self._now_s}")
        self._now_s = t_s


@dataclass(frozen=True)
class SlotTimes:
    """Slot arithmetic for one market: slot length and gate closure lead."""

    slot_s: int = 900
    gate_closure_s: int = 300

    def __post_init__(self) -> None:
        if self.slot_s <= 0:
            raise ValueError(f"slot_s must be positive, got {self.slot_s}")
        if not 0 < self.gate_closure_s < self.slot_s:
            raise ValueError(
                f"gate_closure_s must lie between 0 and slot_s ({self.slot_s}), "
                f"got {self.gate_closure_s}"
            )

    def slot_of(self, t_s: int) -> int:
        return t_s // self.slot_s

    def start_s(self, slot: int) -> int:
        return slot * self.slot_s

    def end_s(self, slot: int) -> int:
        return (slot + 1) * self.slot_s

    def gate_s(self, slot: int) -> int:
        """The time at which the market for ``slot`` closes."""
        return slot * self.slot_s - self.gate_closure_s

    def is_open(self, slot: int, t_s: int) -> bool:
        """Whether an order for ``slot`` arriving at ``t_s`` is before gate closure."""
        return t_s < self.gate_s(slot)
