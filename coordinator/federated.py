"""Federated training of the edge forecasters: the members' sufficient statistics
(:mod:`edge.forecast_stats`) pooled into one ridge fit. Pure (numpy).

``W = (sum X^T X + ridge I)^-1 sum X^T Y`` is exactly what a central trainer would fit
on all the members' windows together (the bias is not penalised), so the federated
model's skill is the centrally trained model's, to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.forecast_stats import Floats, LocalStatistics


def pooled_fit(shares: Sequence[LocalStatistics], ridge: float = 1.0) -> tuple[Floats, Floats]:
    """(W, b) from the members' statistics; ValueError if they are for different models."""
    if not shares:
        raise ValueError("no statistics to pool")
    kinds = {s.kind for s in shares}
    if len(kinds) != 1:
        raise ValueError(f"statistics of different models: {sorted(kinds)}")
    xtx: Floats = np.sum([s.xtx for s in shares], axis=0)
    xty: Floats = np.sum([s.xty for s in shares], axis=0)
    penalty = ridge * np.eye(xtx.shape[0])
    penalty[-1, -1] = 0.0
    solution: Floats = np.linalg.solve(xtx + penalty, xty).astype(np.float64)
    return solution[:-1], solution[-1]
