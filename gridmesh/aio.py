"""Running a coroutine on the fastest event loop available.

uvloop (libuv) runs asyncio's loop several times faster than the standard one, which
matters where one process serves many MQTT sessions and Modbus connections. Without
it the standard loop runs the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
