"""``gridmesh ledger follow``: an independent replica of a community's ledger.

It takes every whole block the coordinator publishes on ``gm/v1/{c}/ledger/data``,
verifies it against its own copy (:class:`ledger.replica.Replica`) and stores it, or
refuses it with the reason. Its MQTT session is persistent under a stable client id, so
blocks published while it is offline wait in the broker and it catches up when it is
back. It announces itself on ``dev/{id}/status`` once it listens.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from broker.bus import BusConnection, Endpoint, connect, keep_connected
from broker.clock import WallClock
from broker.codec import PayloadError
from broker.messages import BlockData, Status, decode
from broker.topics import Topics
from ledger.blocks import from_block_data
from ledger.errors import TransactionError
from ledger.replica import Replica

log = logging.getLogger("gridmesh.ledger.follow")


async def follow(replica: Replica, endpoint: Endpoint, community: str, name: str,
                 until_height: int | None = None) -> None:
    """Follow the community's blocks until ``until_height`` is stored, or until stopped."""
    topics = Topics(community)
    done = asyncio.Event()
    if until_height is not None and replica.height >= until_height:
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)

    async def session() -> None:
        status = topics.device(name, "status")
        will = (status, Status(name, "offline", 0))
        async with connect(endpoint, f"{community}-{name}", will=will) as bus:
            await bus.subscribe([topics.block_data], qos=1)
            await bus.publish(status, Status(name, "online", WallClock().now_s()), retain=True)
            print(f"{name}: following {topics.block_data} at {endpoint}; holding height "
                  f"{replica.height}", flush=True)
            reader = asyncio.create_task(_read(bus, replica, name, until_height, done))
            stopper = asyncio.create_task(done.wait())
            try:
                await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                reader.cancel()
                stopper.cancel()
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]
            await bus.publish(status, Status(name, "offline", WallClock().now_s()), retain=True)

    await keep_connected(session, done, lambda exc, delay: print(
        f"{name}: broker {endpoint} unreachable ({exc}); retrying in {delay:.0f} s", flush=True))


async def _read(bus: BusConnection, replica: Replica, name: str, until_height: int | None,
                done: asyncio.Event) -> None:
    async for received in bus.messages():
        try:
            data = decode(received.payload, BlockData)
            assert isinstance(data, BlockData)
            block = from_block_data(data)
        except (PayloadError, TransactionError, ValueError) as exc:
            replica.counts["bad_payload"] += 1
            print(f"{name}: refused a payload that is not a block: {exc}", flush=True)
            continue
        before = replica.height
        for problem in replica.receive(block):
            print(f"{name}: REFUSED {problem}", flush=True)
        if replica.height > before:
            head = replica.store.head()
            assert head is not None
            print(f"{name}: stored up to height {head.height} (slot {head.slot})", flush=True)
        if until_height is not None and replica.height >= until_height:
            done.set()
            return
