"""Federated forecasting on the wire: statistics as packed float64 bytes that round-trip
exactly, refuse anything that is not the shape they claim (without inflating more than
it), and a real member's share that the codec takes although it is larger than other
messages may be."""

from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest

from broker.codec import MAX_PAYLOAD_BYTES, PayloadError
from broker.identity import Identity
from broker.messages import Order, Step, decode, encode
from broker.model_messages import (
    ForecastShare,
    PackingError,
    model_bytes,
    pack_matrix,
    unpack_matrix,
)
from broker.topics import TopicError, Topics, parse_topic
from edge.forecast_features import FEATURES, HORIZON
from edge.forecast_stats import local_statistics
from simulators.profiles import ProfileSet

JUNE_WEEK = 1_465_084_800  # 2016-06-05 00:00 UTC: the longest days, the least compressible PV


def test_matrices_round_trip_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(40, 7))
    gram = rows.T @ rows
    assert np.array_equal(unpack_matrix(pack_matrix(gram, upper=True), 7, 7, upper=True), gram)
    full = rng.normal(size=(7, 5)) * 1e6
    assert np.array_equal(unpack_matrix(pack_matrix(full), 7, 5), full)


@pytest.mark.parametrize(("text", "reason"), [
    ("not base64!", "not base64"),
    (base64.b64encode(b"plain bytes").decode(), "not deflate data"),
    (pack_matrix(np.ones((3, 3))), "does not hold the 6 float64 values of a 3 x 3, upper triangle matrix"),
    (base64.b64encode(zlib.compress(bytes(10**8))).decode(), "does not hold the 6 float64 values"),
])
def test_text_that_is_not_the_claimed_matrix_is_refused(text: str, reason: str) -> None:
    with pytest.raises(PackingError, match=reason):
        unpack_matrix(text, 3, 3, upper=True)


def test_a_model_field_that_is_not_base64_is_refused() -> None:
    from broker.model_messages import ModelRelease

    release = ModelRelease("load", 2, 1, 2, 1, 10, ("h001",), 1, "0" * 64, "%%%", 0)
    with pytest.raises(PackingError, match="model: not base64"):
        model_bytes(release)


@pytest.fixture(scope="module")
def june_pv_share() -> ForecastShare:
    profiles = ProfileSet.load_bundled()
    segment = next(s for s in profiles.profile("PV1").segments if s.start_s == JUNE_WEEK)
    series = np.asarray(segment.values, dtype=np.float64)[:672]  # the agent's whole history: a week
    stats = local_statistics("pv", series, JUNE_WEEK // 900, float(series.max()))
    return Identity.derived("h001", 1).sign(ForecastShare(
        "h001", 16_958, "pv", stats.windows, 1, FEATURES["pv"] + 1, HORIZON,
        pack_matrix(stats.xtx, upper=True), pack_matrix(stats.xty), JUNE_WEEK))


def test_a_week_of_june_pv_fits_in_a_share_and_decodes_exactly(june_pv_share: ForecastShare) -> None:
    wire = encode(june_pv_share)
    assert len(wire) < 200_000  # 156 KB: deflate takes the 407 KB of base64 float64s to 38 %
    decoded = decode(wire, ForecastShare)
    assert decoded == june_pv_share
    xtx = unpack_matrix(june_pv_share.xtx, 196, 196, upper=True)
    assert xtx[-1, -1] == june_pv_share.windows == 481 and np.array_equal(xtx, xtx.T)


def test_a_share_may_be_larger_than_other_messages_and_no_larger() -> None:
    member = Identity.derived("h001", 1)
    big = "A" * (MAX_PAYLOAD_BYTES + 1000)
    share = member.sign(ForecastShare("h001", 1, "load", 1, 1, 2, 1, big, "", 0))
    assert isinstance(decode(encode(share), ForecastShare), ForecastShare)
    order = member.sign(Order("h001", 1, 0, "buy", (Step(1, 1),), 0))
    padded = encode(order)[:-1] + b" " * MAX_PAYLOAD_BYTES + b"}"  # valid JSON, an order's fields
    with pytest.raises(PayloadError, match=r"payload too large: \d+ bytes > 262144"):
        decode(padded, Order)
    with pytest.raises(PayloadError, match=r"payload too large: \d+ bytes > 262144 for order messages"):
        decode(padded)  # the type read from the payload
    huge = member.sign(ForecastShare("h001", 1, "load", 1, 1, 2, 1, "A" * ForecastShare.MAX_BYTES, "", 0))
    with pytest.raises(PayloadError, match="payload too large"):
        decode(encode(huge), ForecastShare)


def test_share_and_model_topics() -> None:
    topics = Topics("demo")
    assert parse_topic(topics.device("h001", "share")).kind == "share"
    parsed = parse_topic(topics.model("pv"))
    assert (parsed.kind, parsed.name) == ("model", "pv") and topics.models == "gm/v1/demo/model/+"
    with pytest.raises(TopicError):
        topics.model("wind")
    with pytest.raises(TopicError):
        parse_topic("gm/v1/demo/model/wind")


def test_the_monitor_prints_shares_and_releases_in_one_short_line() -> None:
    from broker.asyncapi import examples
    from broker.monitor import format_payload

    topics = Topics("demo")
    share = format_payload(topics.device("h001", "share"), encode(examples()["share"]), 0)
    assert share.endswith("dev/h001/share share h001:16958:share-load load windows 2 on version 1")
    release = format_payload(topics.model("load"), encode(examples()["release"]), 0)
    assert "model/load release load version 2 round 16958 from slot 1627971 members 3 windows 1443" in release
    assert len(release) < 200  # never the model's bytes
