"""Units and signs, written once for the whole project.

- Energy is integer Wh, power integer W, time integer seconds since the Unix epoch (UTC).
- Money is integer micro-units of the community's currency (1e-6), prices are
  micro-units per kWh.
- Grid meter power is positive when the household imports from the grid.
- Battery power is positive when the battery discharges.

Money is rounded here and nowhere else: :func:`money_u`.
"""

from __future__ import annotations

WH_PER_KWH = 1000
U_PER_UNIT = 1_000_000  # micro-units in one unit of the currency
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86_400


def money_u(energy_wh: int, price_u_per_kwh: int) -> int:
    """Money for ``energy_wh`` at ``price_u_per_kwh``, rounded half away from zero.

    >>> money_u(1500, 300_000)   # 1.5 kWh at 0.30 per kWh
    450000
    >>> money_u(-1, 500)         # -0.5 micro-units rounds to -1
    -1
    """
    product = energy_wh * price_u_per_kwh
    quotient, remainder = divmod(abs(product), WH_PER_KWH)
    if 2 * remainder >= WH_PER_KWH:
        quotient += 1
    return quotient if product >= 0 else -quotient


def energy_wh_for(power_w: int, duration_s: int) -> int:
    """Energy of a constant ``power_w`` over ``duration_s``, rounded half away from zero."""
    product = power_w * duration_s
    quotient, remainder = divmod(abs(product), SECONDS_PER_HOUR)
    if 2 * remainder >= SECONDS_PER_HOUR:
        quotient += 1
    return quotient if product >= 0 else -quotient


def split_evenly(total: int, weights: tuple[int, ...]) -> tuple[int, ...]:
    """Split the integer ``total`` in proportion to ``weights`` so the parts sum exactly.

    Largest-remainder rounding; ties go to the earlier weight, so the split is
    deterministic. Weights must be non-negative with a positive sum.

    >>> split_evenly(10, (600, 300))
    (7, 3)
    """
    weight_sum = sum(weights)
    if weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    floors = [magnitude * w // weight_sum for w in weights]
    remainders = [magnitude * w % weight_sum for w in weights]
    short = magnitude - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:short]:
        floors[i] += 1
    return tuple(sign * f for f in floors)
