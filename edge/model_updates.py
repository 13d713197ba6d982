"""The agent's part in federated forecasting (docs/forecasting.md): share statistics of
its own history at each round's start, and take the models the coordinator releases.

**Share.** At a slot start that begins a round, a household whose forecaster is ONNX
and whose history holds at least the community's ``min_windows`` training windows of
consecutive slots computes ``X^T X`` and ``X^T Y`` over them (:mod:`edge.forecast_stats`)
for load and, with PV, for PV, and sends them signed. Its metered slots never leave it.

**Take.** A release is used only after it passes, in order: the coordinator's
signature; a version newer than the one running (or staged); its bytes' SHA-256; the model checks
every model passes (:class:`edge.onnx_forecaster.OnnxModel`: ONNX, the kind, the
shapes, the weights' recorded SHA-256 where the ``onnx`` package is installed); its
version in the model's own metadata; and one forecast from this household's latest
window that is finite. Then it is staged, and the forecaster switches to it at the
first slot start from the release's ``effective_slot``. Anything else keeps the model
running, counts ``model_refused`` and logs one line with the reason.

A restarted agent starts from the bundled models and gets each kind's latest release
again at once (it is retained on the bus), so it switches back at its first slot.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from broker.community import Community
from broker.identity import Identity, Verifier
from broker.messages import encode
from broker.model_messages import (
    ForecastShare,
    ModelRelease,
    PackingError,
    model_bytes,
    pack_matrix,
)
from edge.forecast import History
from edge.forecast_features import FEATURES, HORIZON, LAGS, features
from edge.forecast_stats import local_statistics
from edge.onnx_forecaster import ModelError, OnnxForecaster, OnnxModel, window_series

log = logging.getLogger("gridmesh.edge")


@dataclass(frozen=True)
class Staged:
    release: ModelRelease
    model: OnnxModel


def version_number(text: str) -> int:
    return int(text) if text.isdigit() else 0


class ModelUpdates:
    def __init__(self, device: str, community: Community, identity: Identity, forecaster: OnnxForecaster,
                 counts: Counter[str]) -> None:
        self.device = device
        self.community = community
        self.identity = identity
        self.forecaster = forecaster
        self.counts = counts
        self.verifier = Verifier()
        self.staged: dict[str, Staged] = {}
        self.switched: dict[str, tuple[int, int]] = {}  # kind -> (version, the slot it ran from)

    @classmethod
    def for_member(cls, device: str, community: Community, identity: Identity, forecaster: object,
                   counts: Counter[str]) -> ModelUpdates | None:
        """The member's model updates, or None: rounds off, not a household, or not ONNX."""
        member = community.member(device)
        if (not community.forecasting.enabled or member is None or member.role == "storage"
                or not isinstance(forecaster, OnnxForecaster)):
            return None
        return cls(device, community, identity, forecaster, counts)

    # -- sharing ------------------------------------------------------------------

    def shares(self, slot: int, history: History, t_s: int) -> list[ForecastShare]:
        """The signed shares to send at the start of ``slot`` (none unless a round starts)."""
        round_ = self.community.forecasting.round_of(slot)
        latest = history.latest()
        if round_ is None or latest is None:
            return []
        end = start = latest.slot + 1
        while history.get(start - 1) is not None:
            start -= 1
        windows = end - start - LAGS - HORIZON + 1
        if windows < self.community.forecasting.min_windows:
            self.counts["share_skipped"] += 1
            log.info("%s: round %d: %d consecutive slot(s) of history give %d window(s), fewer than "
                     "min_windows %d: nothing shared", self.device, round_, end - start, max(windows, 0),
                     self.community.forecasting.min_windows)
            return []
        out = []
        for kind in ("load", "pv"):
            model = self.forecaster.models.get(kind)
            peak = self.forecaster.peak_wh if kind == "pv" else None
            if model is None or (kind == "pv" and peak is None):
                continue  # no model of that kind runs here, or no PV to learn from
            series = np.asarray([getattr(history.get(s), f"{kind}_wh") for s in range(start, end)],
                                dtype=np.float64)
            stats = local_statistics(kind, series, start, peak)
            share = self.identity.sign(ForecastShare(
                self.device, round_, kind, stats.windows, version_number(model.version),
                FEATURES[kind] + 1, HORIZON, pack_matrix(stats.xtx, upper=True), pack_matrix(stats.xty),
                t_s))
            if len(encode(share)) > ForecastShare.MAX_BYTES:
                self.counts["share_too_large"] += 1
                log.warning("%s: round %d: the %s share is %d bytes, more than %d: not sent", self.device,
                            round_, kind, len(encode(share)), ForecastShare.MAX_BYTES)
                continue
            self.counts["shares_sent"] += 1
            out.append(share)
        return out

    # -- releases -----------------------------------------------------------------

    def on_release(self, release: ModelRelease, history: History) -> None:
        """Check a release and stage it, or refuse it with the reason."""
        running = self.forecaster.models.get(release.kind)
        staged = self.staged.get(release.kind)
        if release.sha256 in {running.sha256 if running else "", staged.release.sha256 if staged else ""}:
            return  # the retained copy of what this agent already has
        newest = max(version_number(running.version) if running else 0,
                     staged.release.version if staged else 0)
        checked = self._checked(release, newest, history)
        if isinstance(checked, str):
            self.counts["model_refused"] += 1
            log.warning("%s: refused the %s model version %d of round %d: %s; keeping version %s",
                        self.device, release.kind, release.version, release.round, checked,
                        running.version if running else "none (seasonal-naive)")
            return
        self.staged[release.kind] = Staged(release, checked)
        self.counts["model_staged"] += 1
        log.info("%s: %s model version %d of round %d checked; switching at slot %d", self.device,
                 release.kind, release.version, release.round, release.effective_slot)

    def _checked(self, release: ModelRelease, newest: int, history: History) -> OnnxModel | str:
        """The release's model, loaded and tried, or why it cannot be used."""
        if not self.verifier.verify(release, self.community.coordinator_key):
            return "bad signature: not signed by the coordinator"
        if release.version <= newest:
            return f"version {release.version} is not newer than version {newest}, running or staged"
        try:
            data = model_bytes(release)
        except PackingError as exc:
            return str(exc)
        if hashlib.sha256(data).hexdigest() != release.sha256:
            return "the model's bytes do not match the release's SHA-256"
        try:
            model = OnnxModel(data, release.kind, f"release {release.kind} v{release.version}")
        except ModelError as exc:
            return str(exc)
        if version_number(model.version) != release.version:
            return f"the model says it is version {model.version}, the release {release.version}"
        output = model.run(self._trial_input(release.kind, history))
        if output.shape != (HORIZON,) or not np.all(np.isfinite(output)):
            return "its forecast from this household's history is not finite"
        return model

    def _trial_input(self, kind: str, history: History) -> np.ndarray:
        """The model input from the latest full window of the history (zeros without one)."""
        latest = history.latest()
        series = window_series(history, latest.slot + 1) if latest is not None else None
        if latest is None or series is None:
            return np.zeros(FEATURES[kind], dtype=np.float32)
        peak = self.forecaster.peak_wh if kind == "pv" else None
        x, _ = features(kind, series[kind], latest.slot + 1, peak)
        return x

    def switch(self, slot: int) -> None:
        """At the start of ``slot``: run every staged model whose time has come."""
        for kind, staged in sorted(self.staged.items()):
            if slot < staged.release.effective_slot:
                continue
            self.forecaster.models[kind] = staged.model
            del self.staged[kind]
            self.switched[kind] = (staged.release.version, slot)
            self.counts["model_switched"] += 1
            log.info("%s: slot %d: forecasting %s with version %d of round %d", self.device, slot, kind,
                     staged.release.version, staged.release.round)

    def stats(self) -> dict[str, int]:
        """Each released model running: its version and the slot it has run from."""
        out = {}
        for kind, (version, slot) in sorted(self.switched.items()):
            out[f"model_{kind}_version"], out[f"model_{kind}_since_slot"] = version, slot
        return out
