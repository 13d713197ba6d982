"""The embedded broker: amqtt, configured so persistent sessions keep queued messages.

amqtt's anonymous plugin marks sessions anonymous and then queues nothing for them
while they are offline. :class:`MemberAuthPlugin` admits every client that has a
client id (testbed mode) without that mark, so QoS 1 messages wait for their
subscriber. Run: ``python -m broker.embedded --host 127.0.0.1 --port 1884``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import dataclass

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session


class MemberAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Admit clients that name themselves; never mark a session anonymous."""

    async def authenticate(self, *, session: Session) -> bool:
        return bool(session.client_id)

    @dataclass
    class Config:
        pass


def broker_config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {f"{MemberAuthPlugin.__module__}.MemberAuthPlugin": {}},
    }


async def serve(host: str, port: int) -> None:
    broker = Broker(broker_config(host, port))
    await broker.start()
    print(f"embedded amqtt broker ready on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the embedded MQTT broker.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
