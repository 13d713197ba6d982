"""The network-cut proxy on real sockets: an echo server behind it, a client in front."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from simulators.net_cut import NetCut


class Echo:
    """An upstream that echoes every line and remembers what reached it."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                self.received += line
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, line: bytes) -> None:
        self.writer.write(line)
        await self.writer.drain()

    async def answer(self) -> bytes:
        """The next line; b"" once the connection has ended (closed or reset)."""
        try:
            return await self.reader.readline()
        except ConnectionError:
            return b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def talk(port: int, line: bytes) -> bytes:
    client = await Client.connect(port)
    await client.send(line)
    answer = await client.answer()
    await client.close()
    return answer


Scenario = Callable[[Echo, NetCut], Awaitable[None]]


def through_proxy(scenario: Scenario) -> None:
    """Run ``scenario`` with an echo server and a proxy in front of it, both closed after."""
    async def run() -> None:
        echo = Echo()
        await echo.start()
        proxy = NetCut("127.0.0.1", echo.port)
        await proxy.start()
        try:
            await scenario(echo, proxy)
        finally:
            await proxy.close()
            await echo.stop()

    asyncio.run(run())


def test_bytes_pass_both_ways_until_the_cut_and_again_after_restore() -> None:
    async def scenario(echo: Echo, proxy: NetCut) -> None:
        assert await talk(proxy.port, b"one\n") == b"one\n"
        client = await Client.connect(proxy.port)
        await client.send(b"two\n")
        assert await client.answer() == b"two\n"
        proxy.cut()
        assert await client.answer() == b""  # the open connection ended
        await client.close()
        with pytest.raises(ConnectionRefusedError):  # nobody listens meanwhile
            await Client.connect(proxy.port)
        await proxy.restore()
        assert await talk(proxy.port, b"three\n") == b"three\n"
        assert bytes(echo.received) == b"one\ntwo\nthree\n"
        assert (proxy.stats.connections, proxy.stats.cuts) == (3, 1)

    through_proxy(scenario)


def test_an_armed_cut_loses_what_the_client_sends_next() -> None:
    async def scenario(echo: Echo, proxy: NetCut) -> None:
        client = await Client.connect(proxy.port)
        await client.send(b"before\n")
        assert await client.answer() == b"before\n"
        proxy.cut_on_next_send()
        assert not proxy.down
        await client.send(b"lost on the way\n")
        await proxy.wait_cut()
        assert await client.answer() == b""
        await client.close()
        assert proxy.down and proxy.stats.lost_bytes == len(b"lost on the way\n")
        assert bytes(echo.received) == b"before\n"  # the upstream never saw it
        await proxy.restore()
        assert await talk(proxy.port, b"after\n") == b"after\n"

    through_proxy(scenario)


def test_an_upstream_that_is_gone_closes_the_client() -> None:
    async def scenario(echo: Echo, proxy: NetCut) -> None:
        await echo.stop()
        assert await talk(proxy.port, b"anyone?\n") == b""
        assert proxy.stats.connections == 0

    through_proxy(scenario)
