"""A federated round through a real coordinator process on each broker: the members'
shares (up to ~160 KB each) travel at QoS 1 and are answered, the slot boundary's tick
brings the pooled models, and a member that connects afterwards gets them retained and
verifies them."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from test_coordinator_process import BOSS, next_of, write_config
from test_model_rounds import COMMUNITY, MEMBERS, ROUND_SLOT, shares_of

from broker.bus import Endpoint, connect
from broker.identity import Verifier
from broker.launcher import BrokerHandle
from broker.messages import ClockAck, ClockTick, Result, Status, encode
from broker.model_messages import ModelRelease, model_bytes
from broker.schema import to_dict
from broker.topics import Topics
from edge.forecast import History
from edge.onnx_forecaster import OnnxModel

pytestmark = pytest.mark.broker
TOPICS = Topics("demo")


def test_shares_are_answered_and_the_releases_stay_retained_for_late_members(
        broker: BrokerHandle, tmp_path: Path, federated_histories: dict[str, History]) -> None:
    shares = [share for name, history in federated_histories.items() for share in shares_of(name, history)]
    config = write_config(tmp_path, broker, to_dict(COMMUNITY))
    process = subprocess.Popen([sys.executable, "-m", "gridmesh", "coordinator", "--config", str(config)])
    endpoint = Endpoint(broker.host, broker.port)

    async def scenario() -> tuple[list[Result], list[ModelRelease]]:
        async with connect(endpoint, "members-test", persistent=False) as bus:
            await bus.subscribe([*(TOPICS.device(n, "result") for n in MEMBERS), TOPICS.ack("coordinator"),
                                 TOPICS.device("coordinator", "status")])
            await next_of(bus, Status)
            await bus.publish(TOPICS.tick, ClockTick(0, ROUND_SLOT * 900))
            await next_of(bus, ClockAck)
            for share in shares:
                await bus.publish(TOPICS.device(share.device, "share"), share)
            results = [await next_of(bus, Result) for _ in shares]
            await bus.publish(TOPICS.tick, ClockTick(1, (ROUND_SLOT + 1) * 900))
            await next_of(bus, ClockAck)  # the coordinator published the releases before this
        async with connect(endpoint, "late-member", persistent=False) as late:
            await late.subscribe([TOPICS.models])
            releases = [await next_of(late, ModelRelease) for _ in range(2)]
        return results, releases

    try:
        results, releases = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        process.terminate()
        process.wait(10)
    assert len(shares) == 6 and max(len(encode(s)) for s in shares) < 200_000
    assert sorted(r.ref for r in results) == sorted(s.share_id for s in shares)
    assert {r.status for r in results} == {"accepted"}
    assert sorted(r.kind for r in releases) == ["load", "pv"]
    for release in releases:
        assert Verifier().verify(release, BOSS.public_key_hex)
        data = model_bytes(release)
        assert hashlib.sha256(data).hexdigest() == release.sha256
        assert OnnxModel(data, release.kind, "retained").version == "2"
        assert release.effective_slot == ROUND_SLOT + 2
