"""The live dashboard on a real broker (mosquitto and the embedded one, the same tests):
signed market traffic published on the bus reaches the view through its real feed, the
view pauses while messages keep being applied, and ``--print`` writes the frame of what
the broker holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from dashboard_traffic import SLOT, before_gate, community, everything, gate, presence
from paho.mqtt.enums import CallbackAPIVersion
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from broker.dashboard.app import LiveDashboard
from broker.dashboard.feed import LiveFeed
from broker.dashboard.panels import DEVICE_COLUMNS
from broker.dashboard.state import for_community
from broker.launcher import BrokerHandle
from broker.messages import Message, encode
from broker.schema import to_dict
from gridmesh.cli import main

pytestmark = pytest.mark.broker
WAIT_S = 10.0


@pytest.fixture
def publisher(broker: BrokerHandle) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def publish(client: mqtt.Client, traffic: list[tuple[str, Message]], retain: bool = False) -> None:
    for topic, msg in traffic:
        client.publish(topic, encode(msg), qos=1, retain=retain).wait_for_publish(WAIT_S)


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until ``condition`` holds; fail naming ``what`` after WAIT_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        assert loop.time() < deadline, f"no {what} within {WAIT_S} s"
        await pilot.pause(0.02)


def test_the_live_view_follows_the_bus_and_pauses(broker: BrokerHandle, publisher: mqtt.Client) -> None:
    feed = LiveFeed(broker.host, broker.port, "gm/v1/demo/#")
    feed.connect()
    app = LiveDashboard(feed, for_community(community()))

    def text(widget: str) -> str:
        return str(app.query_one(widget, Static).content)

    async def scenario() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await until(pilot, feed.subscribed.is_set, "subscription")
            await until(pilot, lambda: "(connected)" in text("#header"), "connected header")
            assert len(app.query_one("#devices", DataTable).columns) == len(DEVICE_COLUMNS)
            publish(publisher, [*presence(), *before_gate()])
            book = f"order book   slot {SLOT + 1} (open): bids 1 (300 Wh, best 0.300/kWh)"
            await until(pilot, lambda: book in text("#market"), "open book on screen")
            assert "rejections   1 in all" in text("#rejections")

            await pilot.press("p")
            assert "PAUSED" in text("#header")
            publish(publisher, gate())
            await until(pilot, lambda: app.state.ledger_height == 41, "gate's messages applied")
            await pilot.pause()
            assert "clearing     none seen yet" in text("#market")  # the view stays frozen

            await pilot.press("p")
            assert "PAUSED" not in text("#header")
            assert f"clearing     slot {SLOT} (uniform): price 0.190/kWh" in text("#market")
            assert "curtailment  slot 1888000: 100 Wh of PV held back (h001 100 Wh)" in text("#market")
            assert "ledger height 41" in text("#header")
            await pilot.press("q")

    asyncio.run(scenario())
    assert app.return_code == 0


def test_print_writes_the_frame_of_what_the_broker_holds(broker: BrokerHandle, publisher: mqtt.Client,
                                                         tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "community.yaml"
    registry.write_text(yaml.safe_dump(to_dict(community())))
    retained = {topic: msg for topic, msg in everything()}  # a broker keeps the last on each topic
    publish(publisher, list(retained.items()), retain=True)
    code = main(["monitor", "--broker", broker.url, "--registry", str(registry), "--dashboard", "--print",
                 "--count", str(len(retained)), "--seconds", str(WAIT_S)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == f"community demo · broker {broker.url}"
    assert out[1] == f"slot {SLOT} (2023-11-05 16:00 UTC) · ledger height 41 · {len(retained)} messages"
    assert "h003         consumer     offline" in "\n".join(out)
    assert f"clearing     slot {SLOT} (uniform): price 0.190/kWh · p2p 300 Wh · 2 orders, 2 trades" in out
    assert "feeder       limits import 4.0 kW (1000 Wh a slot) · export 2.0 kW (500 Wh a slot)" in out
    assert any(line.endswith("exceeds the connection import limit of 5000 Wh per slot") for line in out)
