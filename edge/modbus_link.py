"""One Modbus TCP connection (a device, or a gateway in front of several on RS485):
one request at a time, with a configurable gap between frames."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus.client import AsyncModbusTcpClient


class ModbusLink:
    def __init__(
        self, host: str, port: int, timeout_ms: int, frame_gap_ms: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.where = f"{host}:{port}"
        self.client = AsyncModbusTcpClient(host, port=port, timeout=timeout_ms / 1000, retries=0,
                                           reconnect_delay=0)
        self._lock = asyncio.Lock()
        self._gap_s = frame_gap_ms / 1000
        self._last_frame = -math.inf
        self._clock, self._sleep = clock, sleep

    async def ensure_connected(self) -> bool | None:
        """True if connected already, None if it has just (re)connected, False if it cannot."""
        if self.client.connected:
            return True
        return None if await self.client.connect() else False

    async def request(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """One frame: after the previous one has finished, and the configured gap."""
        async with self._lock:
            wait = self._last_frame + self._gap_s - self._clock()
            if wait > 0:
                await self._sleep(wait)
            try:
                return await call()
            finally:
                self._last_frame = self._clock()

    def close(self) -> None:
        self.client.close()
