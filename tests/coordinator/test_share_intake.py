"""Forecast-share intake: every share gets one verdict with its reason; only statistics
that can be what they claim, from a household member, in the open round, are kept."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from broker.community import Community, Forecasting, Member
from broker.identity import Identity
from broker.model_messages import ForecastShare, pack_matrix
from coordinator.share_intake import ModelShape, ShareIntake

ALICE = Identity.derived("alice", 1)
BOB = Identity.derived("bob", 1)
CAROL = Identity.derived("carol", 1)
STORE = Identity.derived("s001", 1)
MALLORY = Identity.derived("mallory", 1)
COMMUNITY = Community(
    members=(Member("alice", ALICE.public_key_hex), Member("bob", BOB.public_key_hex, "consumer"),
             Member("carol", CAROL.public_key_hex, "pv"), Member("s001", STORE.public_key_hex, "storage")),
    forecasting=Forecasting(round_slots=4, min_members=2, min_windows=5))
SHAPES = {"load": ModelShape(3, 2)}  # two inputs and the bias, two outputs
ROUND = 25  # starts at slot 100 (90,000 s): open from its gate closure (89,700) to slot 101 (90,900)
NOW = 90_000


def statistics(windows: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.hstack([rng.uniform(0, 2, size=(windows, 2)), np.ones((windows, 1))])
    y = rng.uniform(0, 3, size=(windows, 2))
    return x.T @ x, x.T @ y


def share(who: Identity = ALICE, round_: int = ROUND, windows: int = 8, xtx: np.ndarray | None = None,
          xty: np.ndarray | None = None, rows: int = 3, seed: int = 1, xtx_text: str = "",
          xty_text: str = "") -> ForecastShare:
    gram, cross = statistics(windows, seed)
    gram = gram if xtx is None else xtx
    cross = cross if xty is None else xty
    return who.sign(ForecastShare(who.name, round_, "load", windows, 1, rows, 2,
                                  xtx_text or pack_matrix(gram, upper=True),
                                  xty_text or pack_matrix(cross), NOW))


def intake() -> ShareIntake:
    return ShareIntake(COMMUNITY, SHAPES)


def test_a_valid_share_is_kept_decoded_until_its_round_is_pooled() -> None:
    books = intake()
    verdict = books.submit(share(), "alice", NOW)
    assert verdict.accepted and verdict.ref == "alice:25:share-load" and verdict.slot == 100
    assert books.submit(share(BOB, seed=2), "bob", 89_700).accepted  # from the gate closure on
    assert books.open_rounds() == [ROUND] and books.pool_s(ROUND) == 90_900
    pooled = books.take(ROUND)
    assert [s.device for s in pooled["load"]] == ["alice", "bob"]
    assert np.allclose(pooled["load"][0].xtx, statistics()[0])
    again = books.submit(share(BOB, seed=3), "bob", NOW)  # answered as before, changes nothing
    assert again.accepted and not again.first_time and books.open_rounds() == []
    late = books.submit(share(CAROL), "carol", NOW)  # the coordinator's clock may lag: pooled is closed
    assert not late.accepted and late.reason == "round 25 is closed (pooled at 90900)"


def test_one_share_per_member_round_and_kind_the_first_verdict_answers_again() -> None:
    books = intake()
    assert books.submit(share(), "alice", NOW).accepted
    again = books.submit(share(seed=9), "alice", NOW)  # other statistics, same member/round/kind
    assert again.accepted and not again.first_time
    assert np.allclose(books.take(ROUND)["load"][0].xtx, statistics()[0])  # the first one counts


def test_a_forged_share_is_refused_and_does_not_block_the_real_one() -> None:
    books = intake()
    forged = dataclasses.replace(share(), windows=9)  # signature no longer covers it
    verdict = books.submit(forged, "alice", NOW)
    assert not verdict.accepted and not verdict.authentic and verdict.reason == "bad signature"
    assert books.submit(share(), "alice", NOW).accepted


GRAM, CROSS = statistics()
NOT_GRAM = GRAM.copy()
NOT_GRAM[0, 1] = NOT_GRAM[1, 0] = 10 * np.sqrt(GRAM[0, 0] * GRAM[1, 1])
NEGATIVE_DIAGONAL = GRAM.copy()
NEGATIVE_DIAGONAL[0, 0] = -1.0
WITH_NAN = GRAM.copy()
WITH_NAN[1, 1] = np.nan
NEGATIVE_TARGETS = CROSS.copy()
NEGATIVE_TARGETS[-1, 0] = -5.0


@pytest.mark.parametrize(("submission", "topic_device", "now", "reason"), [
    (share(), "bob", NOW, "device 'alice' does not match the topic's device 'bob'"),
    (share(MALLORY), "mallory", NOW, "unknown device 'mallory': not a member of demo"),
    (share(STORE), "s001", NOW, "a storage member has no household forecasters to share"),
    (share(), "alice", 89_699, "round 25 is not open yet (opens at 89700)"),
    (share(), "alice", 90_900, "round 25 is closed (pooled at 90900)"),
    (share(round_=24), "alice", NOW, "round 24 is closed"),
    (share(rows=4), "alice", NOW, "a load share is 3 x 2 (the model's inputs and bias by its outputs), "
                                  "got 4 x 2"),
    (share(windows=4), "alice", NOW, "4 window(s) are fewer than the community's min_windows 5"),
    (share(xtx_text="%%%"), "alice", NOW, "xtx: not base64"),
    (share(xty_text=pack_matrix(np.ones((3, 3)))), "alice", NOW, "xty: does not hold the 6 float64 values"),
    (share(xtx=WITH_NAN), "alice", NOW, "xtx: holds a value that is not finite"),
    (share(xtx=NEGATIVE_DIAGONAL), "alice", NOW, "xtx: a negative diagonal entry"),
    (share(windows=9, xtx=GRAM, xty=CROSS), "alice", NOW,
     "xtx: its bias entry is 8, not the 9 window(s) claimed"),
    (share(xtx=NOT_GRAM), "alice", NOW, "xtx: not a Gram matrix"),
    (share(xty=NEGATIVE_TARGETS), "alice", NOW, "xty: a negative sum of targets"),
], ids=lambda value: value if isinstance(value, str) and " " in value else "")
def test_a_share_that_is_not_what_it_claims_is_rejected_with_the_reason(
        submission: ForecastShare, topic_device: str, now: int, reason: str) -> None:
    books = intake()
    verdict = books.submit(submission, topic_device, now)
    assert not verdict.accepted and verdict.reason.startswith(reason), verdict.reason
    assert books.open_rounds() == []
