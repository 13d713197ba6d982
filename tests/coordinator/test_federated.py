"""Federated forecasters: pooling the members' sufficient statistics gives the very model
a central trainer fits on all their data, so the skill matches."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.federated import pooled_fit
from edge.forecast_stats import local_statistics
from simulators.forecast_train import HOLD_OUT_FROM, evaluate, fit, samples
from simulators.profiles import ProfileSet


def test_pooled_statistics_give_the_central_model_and_its_skill() -> None:
    profiles = ProfileSet.load_bundled()
    shares = []
    for name in profiles.names("load"):  # one member per load profile, each with its own weeks
        for segment in profiles.profile(name).segments:
            if segment.start_s < HOLD_OUT_FROM:
                series = np.asarray(segment.values, dtype=np.float64)
                shares.append(local_statistics("load", series, segment.start_s // 900))
    federated_w, federated_b = pooled_fit(shares)
    central_w, central_b = fit(samples(profiles, "load", held_out=False, stride=1))
    assert np.allclose(federated_w, central_w, atol=1e-6)
    assert np.allclose(federated_b, central_b, atol=1e-6)
    held_out = samples(profiles, "load", held_out=True)
    federated = evaluate(federated_w, federated_b, held_out)
    central = evaluate(central_w, central_b, held_out)
    skill = central["skill_vs_seasonal_naive"]
    assert federated["skill_vs_seasonal_naive"] == pytest.approx(skill, abs=0.001)


def test_statistics_of_different_models_are_not_pooled() -> None:
    series = np.arange(300, dtype=np.float64)
    with pytest.raises(ValueError, match="statistics of different models"):
        pooled_fit([local_statistics("load", series, 1000), local_statistics("pv", series, 1000, 500.0)])
    with pytest.raises(ValueError, match="no statistics"):
        pooled_fit([])
