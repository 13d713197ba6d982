"""The embedded broker: amqtt, configured so persistent sessions keep queued messages.

amqtt's anonymous plugin marks sessions anonymous and then queues nothing for them
while they are offline. :class:`MemberAuthPlugin` admits every client that has a
client id (testbed mode) without that mark, so QoS 1 messages wait for their
subscriber. Run: ``python -m broker.embedded --host 127.0.0.1 --port 1884``.

amqtt speaks MQTT 3.1.1 only. It refuses other protocol levels with CONNACK 1, but
reads an MQTT 5 CONNECT's properties as the client id's length and then waits for bytes
that never come; :func:`refuse_other_protocols` makes it read the whole packet first, so
an MQTT 5 client is refused at once and falls back to 3.1.1 (:func:`broker.bus.connect`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.codecs_amqtt import read_or_raise
from amqtt.mqtt.connect import ConnectPayload, ConnectVariableHeader
from amqtt.mqtt.packet import MQTTFixedHeader
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from gridmesh.logs import configure_logging


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


MQTT311_LEVEL = 4


def refuse_other_protocols() -> None:
    """Have amqtt skip the rest of a CONNECT of another protocol level (whose layout it
    does not know) and answer it, as MQTT 3.1.1 requires, with "unacceptable protocol
    version" [MQTT-3.1.2-2]."""
    read_payload = ConnectPayload.from_stream

    async def from_stream(reader: Any, fixed: MQTTFixedHeader | None,
                          variable: ConnectVariableHeader | None) -> ConnectPayload:
        if fixed is None or variable is None or variable.proto_level == MQTT311_LEVEL:
            return await read_payload(reader, fixed, variable)
        rest = fixed.remaining_length - len(variable.to_bytes())
        if rest > 0:
            await read_or_raise(reader, rest)
        variable.flags &= ConnectVariableHeader.CLEAN_SESSION_FLAG  # no will, no credentials read
        return ConnectPayload(client_id=f"refused-protocol-{variable.proto_level}")

    ConnectPayload.from_stream = from_stream


async def serve(host: str, port: int) -> None:
    refuse_other_protocols()
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
    configure_logging("WARNING")  # in the format of the process that started it (GRIDMESH_LOG_FORMAT)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
