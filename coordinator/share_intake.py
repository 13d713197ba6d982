"""Forecast-share intake: validate each member's statistics for a federated round and
keep what was accepted until the round is pooled. Pure bookkeeping over data (numpy).

A share is accepted when it comes signed from a household member on its own topic,
for the round that is open (from the gate closure before the round's first slot to
the slot boundary after it), in the shape of the model's statistics, over at least
the community's ``min_windows`` windows, and when its matrices are what statistics
can be: finite, ``X^T X`` a Gram matrix (non-negative diagonal, no entry beyond the
geometric mean of its diagonal pair) whose bias entry counts the windows claimed, and
non-negative target sums. One share per member, round and kind: a resubmission is
answered with the first verdict; a forged one is refused without being remembered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from broker.community import Community
from broker.identity import Verifier
from broker.model_messages import ForecastShare, PackingError, unpack_matrix
from coordinator.federated import Floats
from coordinator.intake import Verdict, sender_problem

RELATIVE_SLACK = 1e-9  # rounding in a member's sums


@dataclass(frozen=True)
class ModelShape:
    """The statistics a model's share must hold: ``rows`` (inputs and bias) by ``horizon``."""

    rows: int
    horizon: int


class StoredShare(NamedTuple):
    """A share as answered, read back after a restart."""

    ref: str
    round: int
    accepted: bool
    reason: str
    share: ForecastShare | None  # kept while its round is open, if it was accepted


@dataclass(frozen=True)
class SharedStatistics:
    """An accepted share, decoded (satisfies :class:`coordinator.federated.Statistics`)."""

    device: str
    kind: str
    windows: int
    base_version: int
    xtx: Floats
    xty: Floats


@dataclass
class ShareIntake:
    community: Community
    shapes: Mapping[str, ModelShape]  # per model kind
    verifier: Verifier = field(default_factory=Verifier)
    accepted: dict[int, dict[str, dict[str, SharedStatistics]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict)))  # round -> kind -> device
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    pooled_through: int = -1  # the highest round already pooled

    @property
    def round_slots(self) -> int:
        return self.community.forecasting.round_slots

    def opens_s(self, round_: int) -> int:
        return self.community.market.times.gate_s(round_ * self.round_slots)

    def pool_s(self, round_: int) -> int:
        """The slot boundary after the round's first slot: when it is pooled."""
        return self.community.market.times.start_s(round_ * self.round_slots + 1)

    def submit(self, share: ForecastShare, topic_device: str, now_s: int) -> Verdict:
        ref = share.share_id
        slot = share.round * self.round_slots
        forged = sender_problem(self.community, self.verifier, share, topic_device)
        if forged:
            return Verdict(ref, slot, False, forged, first_time=False, authentic=False)
        first = self.verdicts.get(ref)
        if first is not None:
            return Verdict(ref, first.slot, first.accepted, first.reason, first_time=False)
        reason = self._round_problem(share, now_s) or self._shape_problem(share)
        if not reason:
            decoded = self.statistics_of(share)
            if isinstance(decoded, str):
                reason = decoded
            else:
                self.accepted[share.round][share.kind][share.device] = decoded
        verdict = Verdict(ref, slot, not reason, reason)
        self.verdicts[ref] = verdict
        return verdict

    def _round_problem(self, share: ForecastShare, now_s: int) -> str:
        member = self.community.member(share.device)
        if member is not None and member.role == "storage":
            return "a storage member has no household forecasters to share"
        if share.round <= self.pooled_through or now_s >= self.pool_s(share.round):
            return f"round {share.round} is closed (pooled at {self.pool_s(share.round)})"
        if now_s < self.opens_s(share.round):
            return f"round {share.round} is not open yet (opens at {self.opens_s(share.round)})"
        return ""

    def _shape_problem(self, share: ForecastShare) -> str:
        shape = self.shapes.get(share.kind)
        if shape is None:
            return f"no {share.kind} model to share for"
        if (share.rows, share.horizon) != (shape.rows, shape.horizon):
            return (f"a {share.kind} share is {shape.rows} x {shape.horizon} (the model's inputs and "
                    f"bias by its outputs), got {share.rows} x {share.horizon}")
        minimum = self.community.forecasting.min_windows
        if share.windows < minimum:
            return f"{share.windows} window(s) are fewer than the community's min_windows {minimum}"
        return ""

    def statistics_of(self, share: ForecastShare) -> SharedStatistics | str:
        """The share's statistics, or the reason they are not statistics."""
        try:
            xtx = unpack_matrix(share.xtx, share.rows, share.rows, upper=True)
        except PackingError as exc:
            return f"xtx: {exc}"
        try:
            xty = unpack_matrix(share.xty, share.rows, share.horizon)
        except PackingError as exc:
            return f"xty: {exc}"
        problem = statistics_problem(xtx, xty, share.windows)
        if problem:
            return problem
        return SharedStatistics(share.device, share.kind, share.windows, share.base_version, xtx, xty)

    def take(self, round_: int) -> dict[str, list[SharedStatistics]]:
        """The round's accepted shares per kind, in member order; marks it pooled."""
        self.pooled_through = max(self.pooled_through, round_)
        kinds = self.accepted.pop(round_, {})
        for old in [r for r in self.accepted if r < round_]:
            del self.accepted[old]
        for ref in [r for r, v in self.verdicts.items() if v.slot < round_ * self.round_slots]:
            del self.verdicts[ref]
        return {kind: [shares[d] for d in sorted(shares)] for kind, shares in sorted(kinds.items())}

    def open_rounds(self) -> list[int]:
        """Rounds holding accepted shares, not yet pooled."""
        return sorted(r for r, kinds in self.accepted.items() if r > self.pooled_through and kinds)


def statistics_problem(xtx: Floats, xty: Floats, windows: int) -> str:
    """Why ``xtx`` and ``xty`` cannot be the statistics of ``windows`` windows ("" if they can)."""
    if not np.all(np.isfinite(xtx)):
        return "xtx: holds a value that is not finite"
    if not np.all(np.isfinite(xty)):
        return "xty: holds a value that is not finite"
    diagonal = np.diag(xtx)
    if (diagonal < 0).any():
        return "xtx: a negative diagonal entry (a sum of squares)"
    if abs(xtx[-1, -1] - windows) > RELATIVE_SLACK * windows:
        return f"xtx: its bias entry is {xtx[-1, -1]:g}, not the {windows} window(s) claimed"
    bound = np.sqrt(np.outer(diagonal, diagonal)) * (1 + RELATIVE_SLACK) + RELATIVE_SLACK
    if (np.abs(xtx) > bound).any():
        return "xtx: not a Gram matrix (an entry exceeds the geometric mean of its diagonal pair)"
    if (xty[-1] < -RELATIVE_SLACK * windows).any():
        return "xty: a negative sum of targets (energy is never negative)"
    return ""
