"""Federated training of the edge forecasters: the members' sufficient statistics
(``X^T X`` and ``X^T Y`` over their own windows, see :mod:`edge.forecast_stats`) pooled
into one ridge fit. Pure (numpy).

``W = (sum X^T X + ridge I)^-1 sum X^T Y`` is exactly what a central trainer would fit
on all the members' windows together (the bias is not penalised), so the federated
model's skill is the centrally trained model's, to rounding. :func:`prior_fit` pulls
the fit toward the current model instead of toward zero: a round with few or unusual
windows moves the community's model only as far as its data carries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


class Statistics(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def xtx(self) -> Floats: ...  # (F + 1) x (F + 1), the bias column last

    @property
    def xty(self) -> Floats: ...  # (F + 1) x HORIZON


def pooled(shares: Sequence[Statistics]) -> tuple[Floats, Floats]:
    """The sums of the members' ``X^T X`` and ``X^T Y``; ValueError if they are for
    different models."""
    if not shares:
        raise ValueError("no statistics to pool")
    kinds = {s.kind for s in shares}
    if len(kinds) != 1:
        raise ValueError(f"statistics of different models: {sorted(kinds)}")
    xtx: Floats = np.sum([s.xtx for s in shares], axis=0)
    xty: Floats = np.sum([s.xty for s in shares], axis=0)
    return xtx, xty


def prior_fit(xtx: Floats, xty: Floats, prior_weights: Floats, prior_bias: Floats,
              weight: float) -> tuple[Floats, Floats]:
    """(W, b) solving ``(X^T X + weight P) [W; b] = X^T Y + weight P [W0; b0]``, where P is
    the identity without the bias: ridge pulled toward the current model (W0, b0)."""
    penalty = weight * np.eye(xtx.shape[0])
    penalty[-1, -1] = 0.0
    prior = np.vstack([prior_weights, prior_bias[None, :]])
    solution: Floats = np.linalg.solve(xtx + penalty, xty + penalty @ prior).astype(np.float64)
    return solution[:-1], solution[-1]


def pooled_fit(shares: Sequence[Statistics], ridge: float = 1.0) -> tuple[Floats, Floats]:
    """(W, b) from the members' statistics, ridge toward zero: the central trainer's fit."""
    xtx, xty = pooled(shares)
    zeros = np.zeros((xtx.shape[0] - 1, xty.shape[1]))
    return prior_fit(xtx, xty, zeros, np.zeros(xty.shape[1]), ridge)
