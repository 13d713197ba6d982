"""Federated rounds in the coordinator, with a real SQLite store and ledger: the members'
shares in (made by the agents' own code from a week of profile data), at the slot
boundary a signed, retained release out that a verifier and the edge's model checks
accept; too few members release nothing; a restart neither loses shares nor pools twice."""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from broker.community import Community, Forecasting, Member
from broker.identity import Identity, Verifier
from broker.messages import Result, encode
from broker.model_messages import ForecastShare, ModelRelease, model_bytes
from broker.schema import to_dict
from coordinator.cli import build_coordinator, bundled_models
from coordinator.service import Coordinator, Outgoing
from coordinator.store import CoordinatorStore
from edge.forecast import History
from edge.model_updates import ModelUpdates
from edge.onnx_forecaster import OnnxForecaster, OnnxModel
from gridmesh.cli import UsageError
from gridmesh.onnx_linear import OnnxUnavailable, read_model
from ledger.store import LedgerStore
from ledger.writer import LedgerWriter

BOSS = Identity.derived("coordinator", 1)
MEMBERS = {name: Identity.derived(name, 1) for name in ("h001", "h002", "h003")}
COMMUNITY = Community(
    coordinator_key=BOSS.public_key_hex,
    members=tuple(Member(name, who.public_key_hex) for name, who in MEMBERS.items()),
    forecasting=Forecasting(round_slots=96, min_members=3))
ROUND_SLOT = 1_628_544  # where the federated_histories fixture's week ends: a round's first slot
NOW = ROUND_SLOT * 900
POOL_S = NOW + 900


def shares_of(name: str, history: History, community: Community = COMMUNITY,
              slot: int = ROUND_SLOT) -> list[ForecastShare]:
    forecaster = OnnxForecaster(pv_peak_w=1000)
    updates = ModelUpdates(name, community, MEMBERS[name], forecaster, Counter())
    return updates.shares(slot, history, slot * 900)


def coordinator(tmp_path: Path, community: Community = COMMUNITY) -> Coordinator:
    ledger = LedgerWriter(LedgerStore(tmp_path / "ledger.db"), BOSS, community.ledger)
    return Coordinator(community, BOSS, CoordinatorStore(tmp_path / "coordinator.db"), ledger,
                       bundled_models())


def submit(coord: Coordinator, shares: list[ForecastShare], now_s: int = NOW) -> list[Result]:
    results = []
    for share in shares:
        [out] = coord.handle("share", share.device, encode(share), now_s)
        assert out.topic == f"gm/v1/demo/dev/{share.device}/result" and isinstance(out.message, Result)
        results.append(out.message)
    return results


def releases(out: list[Outgoing]) -> dict[str, ModelRelease]:
    found = {o.message.kind: o for o in out if isinstance(o.message, ModelRelease)}
    assert all(o.retain and o.topic == f"gm/v1/demo/model/{kind}" for kind, o in found.items())
    return {kind: o.message for kind, o in found.items() if isinstance(o.message, ModelRelease)}


@pytest.fixture(scope="module")
def all_shares(federated_histories: dict[str, History]) -> list[ForecastShare]:
    return [share for name, history in federated_histories.items() for share in shares_of(name, history)]


def test_shares_in_signed_releases_out_at_the_slot_boundary(tmp_path: Path,
                                                            all_shares: list[ForecastShare]) -> None:
    coord = coordinator(tmp_path)
    results = submit(coord, all_shares)
    assert [r.status for r in results] == ["accepted"] * 6 and {r.kind for r in results} == {"share"}
    assert all(Verifier().verify(r, BOSS.public_key_hex) for r in results)
    assert releases(coord.advance(POOL_S - 1)) == {}  # not before the boundary
    out = releases(coord.advance(POOL_S))
    assert set(out) == {"load", "pv"}
    for kind, release in out.items():
        assert Verifier().verify(release, BOSS.public_key_hex)
        data = model_bytes(release)
        assert hashlib.sha256(data).hexdigest() == release.sha256
        model = OnnxModel(data, kind, "release")  # the edge's own checks: kind, shapes, weights
        assert model.version == "2" and release.version == 2 and release.base_version == 1
        assert release.effective_slot == ROUND_SLOT + 2 and release.round == ROUND_SLOT // 96
        assert release.members == ("h001", "h002", "h003") and release.windows == 3 * 481
        assert release.prior_weight == 3000
        assert len(encode(release)) < 110_000  # load ~52 KB, PV ~102 KB: well inside a payload
        bundled = read_model(bundled_models()[kind])
        assert (read_model(data).weights != bundled.weights).any()  # the round moved the model
    assert [(r.kind, r.version) for r in coord.store.releases()] == [("load", 2), ("pv", 2)]
    assert releases(coord.advance(POOL_S + 900)) == {}  # a round is pooled once


def test_fewer_members_than_the_minimum_release_nothing(tmp_path: Path,
                                                        all_shares: list[ForecastShare]) -> None:
    coord = coordinator(tmp_path)
    submit(coord, [s for s in all_shares if s.device != "h003"])
    assert releases(coord.advance(POOL_S)) == {}
    assert coord.rounds is not None and coord.rounds.counts["rounds_short"] == 2
    assert coord.store.releases() == []


def test_a_restart_keeps_the_round_and_pools_it_once_then_pulls_toward_the_release(
        tmp_path: Path, all_shares: list[ForecastShare], federated_histories: dict[str, History]) -> None:
    submit(coordinator(tmp_path), all_shares)
    restarted = coordinator(tmp_path)  # the shares come back from the database
    again = submit(restarted, all_shares[:1])
    assert again[0].status == "accepted" and restarted.counts["share_duplicate"] == 1
    first = releases(restarted.advance(POOL_S))
    assert first["load"].members == ("h001", "h002", "h003")
    after = coordinator(tmp_path)  # pooled: nothing to pool again, and version 2 is current
    assert releases(after.advance(POOL_S + 900)) == first  # republished once, retained: in case
    assert releases(after.advance(POOL_S + 1800)) == {}    # the restart cut its publishing short
    assert after.rounds is not None and after.rounds.current["load"].version == 2
    next_round = ROUND_SLOT + 96
    more = [s for name, h in federated_histories.items() for s in shares_of(name, h, slot=next_round)]
    assert {r.status for r in submit(after, more, now_s=next_round * 900)} == {"accepted"}
    later = releases(after.advance((next_round + 1) * 900))
    assert (later["load"].version, later["load"].base_version) == (3, 2)


def test_with_rounds_off_a_share_is_refused_with_the_reason(tmp_path: Path,
                                                            all_shares: list[ForecastShare]) -> None:
    off = dataclasses.replace(COMMUNITY, forecasting=Forecasting())
    [result] = submit(coordinator(tmp_path, off), all_shares[:1])
    assert result.status == "rejected" and "forecasting is off" in result.reason


def test_a_coordinator_without_onnx_says_how_to_get_it(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails, as where it is missing
    with pytest.raises(OnnxUnavailable, match=r"pip install 'gridmesh\[federated\]'"):
        coordinator(tmp_path)
    (tmp_path / "coordinator.key").write_text(BOSS.private_hex() + "\n")
    config = tmp_path / "coordinator.yaml"
    config.write_text(yaml.safe_dump({"coordinator": {"key_file": "coordinator.key", "data_dir": "data"},
                                      "community": to_dict(COMMUNITY)}))
    with pytest.raises(UsageError, match=r"coordinator\.yaml: community\.forecasting: writing or reading "
                                         r"forecaster models needs the onnx package"):
        build_coordinator(config)  # what `gridmesh coordinator` prints, on one line, before it starts
