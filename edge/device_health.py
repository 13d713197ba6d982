"""Is a device worth asking? After repeated failures a device is defective: the driver
stops sending it requests (each would wait for a timeout) and tries again after a
growing pause. Pure: the caller passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFECTIVE_AFTER = 3  # failures in a row
BACKOFF_S = (5.0, 15.0, 60.0, 300.0)


@dataclass
class DeviceHealth:
    failures_in_row: int = 0
    retry_at: float | None = None  # while defective: when to try again
    _pauses: int = 0

    @property
    def defective(self) -> bool:
        return self.retry_at is not None

    def may_try(self, now: float) -> bool:
        return self.retry_at is None or now >= self.retry_at

    def failed(self, now: float) -> bool:
        """Count a failure; True when the device has just become defective."""
        self.failures_in_row += 1
        if self.failures_in_row < DEFECTIVE_AFTER:
            return False
        was_defective = self.defective
        self.retry_at = now + BACKOFF_S[min(self._pauses, len(BACKOFF_S) - 1)]
        self._pauses += 1
        return not was_defective

    def succeeded(self) -> bool:
        """Count a success; True when a defective device has just recovered."""
        recovered = self.defective
        self.failures_in_row, self.retry_at, self._pauses = 0, None, 0
        return recovered
