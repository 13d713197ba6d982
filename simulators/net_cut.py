"""A TCP proxy whose link can be cut and restored: one agent's network, for a drill.

The agent is configured to reach its broker through the proxy, which pipes bytes both
ways over real sockets. :meth:`NetCut.cut` ends every connection through it at once (the
sockets are reset: whatever was still buffered is lost) and stops listening, so a new
connection is refused, until :meth:`NetCut.restore` listens again on the same port; to
the agent and to the broker it is a link that went down.
:meth:`NetCut.cut_on_next_send` arms the cut for the moment the agent next sends: those
bytes are lost with the link, as when a cable is pulled while a message is on its way.

    proxy = NetCut("127.0.0.1", broker_port)
    port = await proxy.start()           # the agent's broker is 127.0.0.1:port
    proxy.cut_on_next_send()
    await proxy.wait_cut()
    await proxy.restore()
    await proxy.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

CHUNK = 65_536


@dataclass
class CutStats:
    connections: int = 0  # accepted and piped through to the broker
    cuts: int = 0
    lost_bytes: int = 0  # sent by the client into a cut armed by cut_on_next_send


class NetCut:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self.stats = CutStats()
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._down = False
        self._armed = False
        self._cut = asyncio.Event()

    async def start(self) -> int:
        """Listen on a free port of ``host``; the port."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @property
    def down(self) -> bool:
        return self._down

    def cut(self) -> None:
        """Abort every connection and refuse new ones until :meth:`restore`."""
        self._down, self._armed = True, False
        self.stats.cuts += 1
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()
        self._cut.set()

    def cut_on_next_send(self) -> None:
        """Cut the link when the client next sends; what it sends is lost."""
        self._armed = True

    async def wait_cut(self) -> None:
        await self._cut.wait()

    async def restore(self) -> None:
        """Listen again, on the same port."""
        self._down = False
        self._cut.clear()
        await self.start()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._links):
            writer.transport.abort()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:  # accepted just before the cut
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.stats.connections += 1
        self._links.update((writer, up_writer))
        pumps = (self._pump(reader, up_writer, upstream=True), self._pump(up_reader, writer, upstream=False))
        for pump in pumps:
            task = asyncio.create_task(pump)
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool) -> None:
        """Copy bytes until either side closes; then close the other."""
        try:
            while data := await reader.read(CHUNK):
                if upstream and self._armed:
                    self.stats.lost_bytes += len(data)
                    self.cut()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._links.discard(writer)
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()
