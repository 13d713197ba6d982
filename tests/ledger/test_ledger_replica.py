"""Replicas: every block verified before it is stored, gaps waited out, forgeries refused,
and over a real broker a replica that was offline catches up from its persistent session."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from ledger_chain import COORDINATOR, MEMBERS, write_chain

from broker.bus import Endpoint, connect
from broker.launcher import BrokerHandle
from broker.messages import Status, decode
from broker.topics import Topics
from ledger.blocks import Block, block_data, from_block_data
from ledger.follow import follow
from ledger.replica import Replica
from ledger.store import LedgerStore

NOW = 2_000_000_000


def chain(tmp_path: Path) -> list[Block]:
    return write_chain(tmp_path / "source.db")


def test_blocks_in_order_are_verified_and_stored(tmp_path: Path) -> None:
    blocks = chain(tmp_path)
    with LedgerStore(tmp_path / "r.db") as store:
        replica = Replica(store, COORDINATOR.public_key_hex)
        for block in blocks:
            assert replica.receive(block, NOW) == []
        assert replica.height == len(blocks) - 1 and store.head() == blocks[-1].header


def test_an_early_block_waits_for_the_gap_and_a_repeat_is_ignored(tmp_path: Path) -> None:
    blocks = chain(tmp_path)
    with LedgerStore(tmp_path / "r.db") as store:
        replica = Replica(store)
        assert replica.receive(blocks[0], NOW) == [] and replica.receive(blocks[2], NOW) == []
        assert replica.height == 0 and 2 in replica.waiting
        assert replica.receive(blocks[1], NOW) == [] and replica.height == 2  # the gap closed
        assert replica.receive(blocks[1], NOW) == [] and replica.counts["duplicates"] == 1


def test_a_forged_block_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    blocks = chain(tmp_path)
    with LedgerStore(tmp_path / "r.db") as store:
        replica = Replica(store)
        replica.receive(blocks[0], NOW)
        forged = Block(MEMBERS["h001"].sign(dataclasses.replace(blocks[1].header, sig="")),
                       blocks[1].transactions)
        [problem] = replica.receive(forged, NOW)
        assert problem == "block 1: header signature does not verify with the coordinator key"
        assert replica.height == 0 and replica.counts["refused"] == 1


def test_a_genesis_of_another_coordinator_is_refused(tmp_path: Path) -> None:
    blocks = chain(tmp_path)
    with LedgerStore(tmp_path / "r.db") as store:
        replica = Replica(store, coordinator_key=MEMBERS["h002"].public_key_hex)
        [problem] = replica.receive(blocks[0], NOW)
        assert problem.startswith("block 0: the genesis names coordinator key") and replica.height == -1


def test_a_replica_offline_while_blocks_are_published_catches_up(
    tmp_path: Path, broker: BrokerHandle
) -> None:
    blocks = chain(tmp_path)
    endpoint = Endpoint(broker.host, broker.port)
    topics = Topics("demo")

    async def publish(*chosen: Block) -> None:
        async with connect(endpoint, "demo-coordinator", persistent=False) as bus:
            for block in chosen:
                await bus.publish(topics.block_data, block_data(block), qos=1)

    async def main() -> None:
        with LedgerStore(tmp_path / "r.db") as store:
            replica = Replica(store, COORDINATOR.public_key_hex)
            # First session: the replica announces itself, takes the genesis block and stops.
            async with connect(endpoint, "watcher", persistent=False) as watcher:
                await watcher.subscribe([topics.device("r1", "status")])
                first = asyncio.create_task(follow(replica, endpoint, "demo", "r1", until_height=0))
                async for received in watcher.messages():
                    status = decode(received.payload, Status)
                    assert isinstance(status, Status)
                    if status.state == "online":
                        break
                await publish(blocks[0])
                await asyncio.wait_for(first, 20)
            assert replica.height == 0
            # Offline: the coordinator goes on publishing; the broker keeps the session's queue.
            await publish(*blocks[1:])
            catch_up = follow(replica, endpoint, "demo", "r1", until_height=len(blocks) - 1)
            await asyncio.wait_for(catch_up, 20)
            assert store.head() == blocks[-1].header and replica.refusals == []

    asyncio.run(main())
    assert from_block_data(block_data(blocks[1])) == blocks[1]
