"""The integrations on a small real market, once per broker kind: a coordinator and an
agent process (two households) on the virtual clock, with Prometheus endpoints, JSON logs
and Home Assistant discovery on.

Before the last tick every earlier one is acknowledged, so what the processes have
counted is settled: the endpoints are scraped then, parsed with prometheus_client's
parser, and compared with the coordinator's database and the ledger. After the run a new
subscriber on ``homeassistant/#`` gets the household's discovery configs and its state:
retained, since their publisher is gone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sqlite3
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from broker.bus import Endpoint, connect
from broker.community import Community, Member
from broker.identity import Identity
from broker.launcher import free_port, start_broker
from broker.topics import Topics
from edge.home_assistant import Discovery
from ledger.store import LedgerStore
from simulators.clock_master import ClockMaster, tick_times
from simulators.device_farm import DeviceFarm
from simulators.fleet import make_households
from simulators.profiles import ProfileSet
from simulators.testbed import write_configs
from tests.conftest import BROKER_KINDS, require_broker

pytestmark = [pytest.mark.broker, pytest.mark.slow]
START = int(dt.datetime(2016, 6, 6, 10, tzinfo=dt.UTC).timestamp())
SLOTS = 2
TOPICS = Topics("demo")
WAIT_S = 60.0
DISCOVERY = Discovery("h002", "demo", has_pv=True, has_battery=True)  # on for h002 alone
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Run:
    folder: Path
    coordinator: Samples  # scraped before the last tick
    agents: Samples
    retained: dict[str, bytes]  # homeassistant/# and the household's status, after the run
    gate_ticks: int
    slot_ticks: int
    codes: tuple[int, int]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped[name, tuple(sorted(labels.items()))]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


async def retained(endpoint: Endpoint, filters: list[str], count: int) -> dict[str, bytes]:
    got: dict[str, bytes] = {}
    async with connect(endpoint, "ha-stand-in", persistent=False) as bus:
        await bus.subscribe(filters)
        async for received in bus.messages():
            got[received.topic] = received.payload
            if len(got) == count:
                break
    return got


async def mini_market(kind: str, folder: Path) -> Run:
    households = make_households(2, 1, prosumer_pct=50)  # h001 consumes, h002 has PV and a battery
    boss = Identity.derived("coordinator", 1)
    identities = {h.id: Identity.derived(h.id, 1) for h in households}
    community = Community(id="demo", coordinator_key=boss.public_key_hex,
                          members=tuple(Member(h.id, identities[h.id].public_key_hex) for h in households))
    first = START // 900
    times = tick_times(first, SLOTS, 900, 300)
    ports = {"coordinator": free_port(), "agents": free_port()}
    with start_broker(kind, workdir=folder / "broker") as broker:
        endpoint = Endpoint(broker.host, broker.port)
        async with DeviceFarm(households, ProfileSet.load_bundled(), times[0]) as farm:
            coordinator_file, agent_files = write_configs(folder, community, boss, identities, households,
                                                           farm, endpoint, first + SLOTS - 1, "perfect")
            config = yaml.safe_load(coordinator_file.read_text())
            config["coordinator"]["metrics"] = {"port": ports["coordinator"]}
            coordinator_file.write_text(yaml.safe_dump(config))
            config = yaml.safe_load(agent_files[1].read_text())
            config["agent"]["home_assistant"] = {"currency": "EUR"}
            agent_files[1].write_text(yaml.safe_dump(config))
            logs = {name: (folder / f"{name}.log").open("wb") for name in ports}
            processes = [
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gridmesh", "coordinator", "--config", str(coordinator_file),
                    "--log-format", "json", "--log-level", "INFO", stderr=logs["coordinator"]),
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gridmesh", "agent", "--config", *map(str, agent_files),
                    "--metrics-port", str(ports["agents"]), stderr=logs["agents"],
                    env={**os.environ, "GRIDMESH_LOG_FORMAT": "json"}),
            ]
            scraped: dict[str, str] = {}
            master = ClockMaster(endpoint, "demo-clock", TOPICS, ["coordinator", *identities], "coordinator")
            listener = asyncio.create_task(master.listen())
            try:
                await master.wait_online(WAIT_S)

                async def before(t_s: int) -> None:
                    farm.advance_to(t_s)
                    if t_s == times[-1]:
                        for name, port in ports.items():
                            scraped[name] = await asyncio.to_thread(scrape, port)

                async def after(_index: int, _t_s: int) -> None:
                    return None

                await master.run(times, before, after, 900)
            finally:
                master.stop()
                listener.cancel()
            codes = tuple([await asyncio.wait_for(p.wait(), WAIT_S) for p in processes])
            for log in logs.values():
                log.close()
        expected = len(DISCOVERY.configs()) + 2  # the configs, the state, the status
        got = await asyncio.wait_for(retained(endpoint, ["homeassistant/#", TOPICS.device("h002", "status")],
                                              expected), WAIT_S)
    gates = sum(1 for t in times[:-1] if t % 900)
    return Run(folder, samples(scraped["coordinator"]), samples(scraped["agents"]), got, gates,
               len(times) - 1 - gates, (codes[0], codes[1]))


@pytest.fixture(scope="module", params=BROKER_KINDS)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_broker(request.param)
    folder = tmp_path_factory.mktemp(f"integrations-{request.param}")
    yield asyncio.run(asyncio.wait_for(mini_market(request.param, folder), 120))


def test_the_processes_finish_cleanly(run: Run) -> None:
    assert run.codes == (0, 0), (run.folder / "coordinator.log").read_text()[-2000:]


def test_coordinator_metrics_match_its_database_and_ledger(run: Run) -> None:
    with sqlite3.connect(run.folder / "coordinator.db") as db:
        accepted = dict(db.execute("SELECT kind, COUNT(*) FROM verdicts WHERE accepted GROUP BY kind"))
        rejected = db.execute("SELECT COUNT(*) FROM verdicts WHERE NOT accepted").fetchone()[0]
    with LedgerStore.open_readonly(run.folder / "ledger.db") as ledger:
        head = ledger.head()
    scraped = run.coordinator
    assert accepted["order"] > 0 and accepted["report"] > 0
    assert value(scraped, "gridmesh_coordinator_submissions_total", kind="order", outcome="accepted") \
        == accepted["order"]
    assert value(scraped, "gridmesh_coordinator_submissions_total", kind="report", outcome="accepted") \
        == accepted["report"]
    assert value(scraped, "gridmesh_coordinator_submissions_total", kind="order", outcome="rejected") \
        == rejected == 0
    assert value(scraped, "gridmesh_coordinator_slots_cleared_total") == run.gate_ticks
    assert value(scraped, "gridmesh_coordinator_clearing_latency_seconds_count") == run.gate_ticks
    assert value(scraped, "gridmesh_coordinator_clearing_latency_seconds_sum") > 0
    assert head is not None and value(scraped, "gridmesh_coordinator_ledger_height") <= head.height
    assert value(scraped, "gridmesh_coordinator_ledger_height") >= 1  # sealed blocks after the genesis
    assert value(scraped, "gridmesh_coordinator_connected") == 1
    assert value(scraped, "gridmesh_coordinator_reconnects_total") == 0


def test_agent_metrics_count_what_each_household_did(run: Run) -> None:
    with sqlite3.connect(run.folder / "coordinator.db") as db:
        orders = dict(db.execute("SELECT device, COUNT(*) FROM verdicts WHERE kind = 'order' "
                                 "GROUP BY device"))
    scraped = run.agents
    assert orders.get("h001", 0) > 0  # the consumer buys
    for device in ("h001", "h002"):
        sent = value(scraped, "gridmesh_agent_orders_sent_total", device=device)
        assert sent == orders.get(device, 0)
        assert value(scraped, "gridmesh_agent_results_total", device=device, kind="order",
                     status="accepted") == sent
        awards = sum(v for (name, labels), v in scraped.items()
                     if name == "gridmesh_agent_awards_total" and ("device", device) in labels)
        assert awards == sent  # every order awarded (filled, partial or unfilled)
        assert value(scraped, "gridmesh_agent_control_cycle_seconds_count", device=device) == run.slot_ticks
        assert value(scraped, "gridmesh_agent_modbus_read_seconds_count", device=device) == run.slot_ticks
        assert value(scraped, "gridmesh_agent_modbus_errors_total", device=device) == 0
        assert value(scraped, "gridmesh_agent_connected", device=device) == 1
        assert value(scraped, "gridmesh_agent_island", device=device) == 0
        # before the last tick one report waits for its settlement, which comes a slot later
        assert value(scraped, "gridmesh_agent_outbox_messages", device=device) == 1


def test_processes_write_json_log_lines_with_their_context(run: Run) -> None:
    lines = (run.folder / "coordinator.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    cleared = [e for e in entries if e["message"].startswith("slot ")]
    assert len(cleared) == run.gate_ticks + 1  # and the last tick's gate
    for entry in cleared:
        assert {"ts", "level", "logger", "message"} <= entry.keys()
        assert entry["community"] == "demo" and entry["logger"] == "gridmesh.coordinator"
        assert entry["message"].startswith(f"slot {entry['slot']} cleared")
    for line in (run.folder / "agents.log").read_text().splitlines():  # from the environment
        assert json.loads(line)["community"] == "demo"


def test_home_assistant_finds_the_household_retained(run: Run) -> None:
    configs = {topic: json.loads(run.retained[topic]) for topic, _ in DISCOVERY.configs()}
    assert not any(topic.startswith("homeassistant/sensor/h001/") for topic in run.retained)  # off there
    state = json.loads(run.retained["homeassistant/sensor/h002/state"])
    status = json.loads(run.retained[TOPICS.device("h002", "status")])
    for config in configs.values():
        assert config["state_topic"] == "homeassistant/sensor/h002/state"
        assert config["device"]["identifiers"] == ["gridmesh_demo_h002"]
        assert config["availability"][0]["topic"] == TOPICS.device("h002", "status")
        key = config["value_template"].split("value_json.")[1].split()[0]
        assert key in state
    assert status["state"] == "offline"  # the agent said so as it finished
    # The state carries the household's values and what the market did for it.
    for key in ("grid_power_w", "grid_import_wh", "pv_power_w", "battery_soc_pct", "bill_u"):
        assert isinstance(state[key], int), (key, state)
    assert state["bill_slot"] >= START // 900  # settled
