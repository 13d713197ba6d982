"""A device that keeps failing becomes defective and is retried after growing pauses."""

from __future__ import annotations

from edge.device_health import BACKOFF_S, DEFECTIVE_AFTER, DeviceHealth


def test_a_device_turns_defective_after_failures_in_a_row_and_recovers() -> None:
    health = DeviceHealth()
    assert [health.failed(0.0) for _ in range(DEFECTIVE_AFTER)] == [False, False, True]
    assert health.defective and not health.may_try(BACKOFF_S[0] - 0.1)
    assert health.may_try(BACKOFF_S[0])
    assert not health.failed(BACKOFF_S[0])  # still defective: not news
    assert health.retry_at == BACKOFF_S[0] + BACKOFF_S[1]  # a longer pause
    assert health.succeeded() and not health.defective and health.failures_in_row == 0


def test_a_success_between_failures_starts_the_count_again() -> None:
    health = DeviceHealth()
    health.failed(0.0)
    health.failed(0.0)
    assert not health.succeeded()  # it was never defective
    assert not health.failed(1.0) and not health.defective
