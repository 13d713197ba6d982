"""Federated rounds on the coordinator: members' shares in, signed model releases out.

Pure over data (numpy and the ``onnx`` package, which builds bytes in memory). A round
``r`` starts at slot ``r * round_slots``: households share then, and at the next slot
boundary each forecaster that at least ``min_members`` shared is refitted on the pooled
statistics, pulled toward the current model (:func:`coordinator.federated.prior_fit`),
exported by the exporter training uses (:mod:`gridmesh.onnx_linear`) and released,
signed, with the slot boundary after that as the moment agents switch. The released
model becomes the current one, toward which the next round is pulled.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from broker.codec import MAX_PAYLOAD_BYTES
from broker.community import Community
from broker.identity import Identity
from broker.messages import encode
from broker.model_messages import ForecastShare, ModelRelease, model_bytes, model_text
from coordinator.federated import pooled, prior_fit
from coordinator.intake import Verdict
from coordinator.share_intake import ModelShape, SharedStatistics, ShareIntake, StoredShare
from gridmesh.onnx_linear import LinearModel, ModelFormatError, build_model, read_model

log = logging.getLogger("gridmesh.coordinator")


@dataclass(frozen=True)
class CurrentModel:
    version: int
    data: bytes
    model: LinearModel


def current_model(kind: str, data: bytes) -> CurrentModel:
    """A model as the coordinator's current one; ModelFormatError if it is not a ``kind`` model."""
    model = read_model(data)
    if model.kind != kind:
        raise ModelFormatError(f"a {model.kind or 'non-gridmesh'!r} model where {kind!r} was expected")
    return CurrentModel(model.version, data, model)


class ModelRounds:
    def __init__(self, community: Community, identity: Identity, models: Mapping[str, bytes]) -> None:
        self.community = community
        self.identity = identity
        self.current = {kind: current_model(kind, data) for kind, data in sorted(models.items())}
        shapes = {kind: ModelShape(c.model.weights.shape[0] + 1, c.model.weights.shape[1])
                  for kind, c in self.current.items()}
        self.intake = ShareIntake(community, shapes)
        self.counts: Counter[str] = Counter()

    def restore(self, releases: Iterable[ModelRelease], pooled_through: int,
                shares: Iterable[StoredShare]) -> None:
        """After a restart: the latest release of each kind is current again, and the
        open round's verdicts and accepted shares are back."""
        for release in releases:  # in version order: the last one wins
            self.current[release.kind] = current_model(release.kind, model_bytes(release))
        self.intake.pooled_through = pooled_through
        for ref, round_, accepted, reason, share in shares:
            self.intake.verdicts[ref] = Verdict(ref, round_ * self.intake.round_slots, accepted, reason)
            if share is not None and accepted:
                decoded = self.intake.statistics_of(share)
                if isinstance(decoded, SharedStatistics):
                    self.intake.accepted[share.round][share.kind][share.device] = decoded

    def submit(self, share: ForecastShare, topic_device: str, now_s: int) -> Verdict:
        return self.intake.submit(share, topic_device, now_s)

    def next_pool_s(self) -> int | None:
        """When the next round holding shares is to be pooled, if any is."""
        rounds = self.intake.open_rounds()
        return self.intake.pool_s(rounds[0]) if rounds else None

    def pool_due(self, now_s: int) -> list[tuple[int, list[ModelRelease]]]:
        """Pool every round whose boundary has come: (round, its releases), oldest first."""
        pooled_rounds = []
        for round_ in self.intake.open_rounds():
            t_s = self.intake.pool_s(round_)
            if t_s > now_s:
                break
            releases = []
            for kind, shares in self.intake.take(round_).items():
                release = self._release(round_, kind, shares, t_s)
                if release is not None:
                    releases.append(release)
            pooled_rounds.append((round_, releases))
        return pooled_rounds

    def _release(self, round_: int, kind: str, shares: list[SharedStatistics],
                 t_s: int) -> ModelRelease | None:
        rules = self.community.forecasting
        if len(shares) < rules.min_members:
            self.counts["rounds_short"] += 1
            log.info("round %d: %d %s share(s), fewer than min_members %d: no release", round_,
                     len(shares), kind, rules.min_members)
            return None
        current = self.current[kind]
        xtx, xty = pooled(shares)
        try:
            weights, bias = prior_fit(xtx, xty, current.model.weights, current.model.bias, rules.prior_weight)
        except np.linalg.LinAlgError as exc:
            weights = bias = np.full(1, np.nan)
            log.warning("round %d: the %s fit failed: %s", round_, kind, exc)
        if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(bias))):
            self.counts["fits_failed"] += 1
            log.warning("round %d: the pooled %s fit is not finite: no release", round_, kind)
            return None
        version = current.version + 1
        windows = sum(s.windows for s in shares)
        meta = {**current.model.meta, "gridmesh.version": str(version),
                "gridmesh.training": f"federated round {round_}: {len(shares)} members, {windows} windows, "
                                     f"ridge {rules.prior_weight} toward version {current.version}"}
        data = build_model(kind, weights, bias, meta)
        slot = self.community.market.times.slot_of(t_s)
        release = self.identity.sign(ModelRelease(
            kind, version, round_, slot + 1, current.version, rules.prior_weight,
            tuple(s.device for s in shares), windows, hashlib.sha256(data).hexdigest(), model_text(data),
            t_s))
        size = len(encode(release))
        if size > MAX_PAYLOAD_BYTES:
            self.counts["releases_too_large"] += 1
            log.warning("round %d: the %s release is %d bytes, more than the bus takes (%d): no release",
                        round_, kind, size, MAX_PAYLOAD_BYTES)
            return None
        self.current[kind] = current_model(kind, data)
        self.counts["releases"] += 1
        log.info("round %d: released %s version %d from %d members (%d windows), effective from slot %d",
                 round_, kind, version, len(shares), windows, slot + 1)
        return release
