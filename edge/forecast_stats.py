"""What a member shares to improve the community's forecasters: sufficient statistics,
never its meter data. Pure (numpy).

For the linear models of :mod:`edge.forecast_features`, the ridge fit needs only
``X^T X`` and ``X^T Y`` over the training windows (with a bias column). Each member
computes them over its own history; the coordinator adds them up and solves
(:mod:`coordinator.federated`), which gives exactly the model a central trainer would
fit on everyone's data pooled, without anyone's slots leaving their device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.forecast_features import FEATURES, HORIZON, LAGS, features

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LocalStatistics:
    kind: str
    xtx: Floats  # (F + 1) x (F + 1)
    xty: Floats  # (F + 1) x HORIZON
    windows: int


def local_statistics(kind: str, series: Floats, first_slot: int, peak_wh_per_slot: float | None = None,
                     stride: int = 1) -> LocalStatistics:
    """The statistics of every ``stride``-th window of ``series`` (consecutive slots from
    ``first_slot``), in the model's scaled units."""
    size = FEATURES[kind] + 1
    xtx = np.zeros((size, size))
    xty = np.zeros((size, HORIZON))
    windows = 0
    for start in range(LAGS, len(series) - HORIZON + 1, stride):
        x, scale = features(kind, series[start - LAGS:start].astype(np.float32), first_slot + start,
                            peak_wh_per_slot)
        row = np.append(x.astype(np.float64), 1.0)
        xtx += np.outer(row, row)
        xty += np.outer(row, series[start:start + HORIZON] / scale)
        windows += 1
    return LocalStatistics(kind, xtx, xty, windows)
