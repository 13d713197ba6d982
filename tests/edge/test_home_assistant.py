"""Home Assistant discovery, pure: the configs a household publishes (golden), which
sensors it gets, the state those configs read, and the configuration section's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from broker.codec import canonical_json
from broker.identity import Identity
from broker.messages import Award, Settlement
from edge.config import load_agent_config
from edge.home_assistant import Discovery, HouseholdFeed, HouseholdState
from gridmesh.config import ConfigError
from tests.edge.test_agent_core import readings

GOLDEN = Path(__file__).parent / "golden" / "home_assistant_h001.json"


def test_the_discovery_configs_are_the_golden_ones() -> None:
    discovery = Discovery("h001", "demo", role="prosumer", has_pv=True, has_battery=True, name="Garage",
                          currency="CHF", version="0.1.0")
    configs = {topic: json.loads(payload) for topic, payload in discovery.configs()}
    assert configs == json.loads(GOLDEN.read_text())
    for topic, payload in discovery.configs():  # compact, sorted: the same bytes every time
        assert payload == canonical_json(json.loads(payload))
        assert topic.startswith("homeassistant/sensor/h001/") and topic.endswith("/config")
    unique = [c["unique_id"] for c in configs.values()]
    assert len(set(unique)) == len(unique) == 9


def test_a_consumer_gets_no_pv_or_battery_sensors_and_its_own_prefix() -> None:
    discovery = Discovery("h002", "demo", role="consumer", prefix="ha")
    topics = [topic for topic, _ in discovery.configs()]
    assert topics == [f"ha/sensor/h002/{name}/config" for name in (
        "grid_power", "grid_import", "grid_export", "award_energy", "award_price", "bill")]
    assert discovery.state_topic == "ha/sensor/h002/state"


def test_the_state_carries_readings_and_the_latest_answers() -> None:
    boss = Identity.derived("coordinator", 1)
    state = HouseholdState().with_readings(readings(9000, 1500, 200, 800, 0, 0))
    award = boss.sign(Award("h001", 11, "o11", "sell", "filled", 300, 300, 120_000, -36_000, "", 9600))
    state = state.with_award(award)
    older = boss.sign(Award("h001", 10, "o10", "buy", "filled", 100, 100, 250_000, 25_000, "", 8700))
    assert state.with_award(older) == state  # an old award sent again changes nothing
    state = state.with_settlement(boss.sign(Settlement("h001", 9, 0, 5, 5, 0, 1500, 1500, 1500)))
    values = json.loads(state.payload())
    assert values == {
        "t_s": 9000, "grid_power_w": 4000, "grid_import_wh": 1500, "grid_export_wh": 200,
        "pv_power_w": 1200, "battery_soc_pct": 50, "battery_power_w": 0,
        "award_slot": 11, "award_energy_wh": -300, "award_price_u_per_kwh": 120_000,
        "bill_slot": 9, "bill_u": 1500,
    }
    dead = json.loads(state.with_readings(readings(9900, 0, 0, 0, 0, 0, meter_ok=False)).payload())
    assert dead["grid_power_w"] is None and dead["bill_u"] == 1500  # unknown in Home Assistant


def test_the_feed_gives_the_state_topic_after_each_reading_and_answer() -> None:
    feed = HouseholdFeed(Discovery("h001", "demo", has_pv=True, has_battery=True))
    assert feed.configs() == feed.discovery.configs()
    topic, payload = feed.on_readings(readings(9000, 1500, 200, 800, 0, 0))
    assert topic == "homeassistant/sensor/h001/state" and json.loads(payload)["grid_import_wh"] == 1500
    settlement = Identity.derived("coordinator", 1).sign(Settlement("h001", 9, 0, 5, 5, 0, 1500, 1500, 1500))
    topic, payload = feed.on_answer(settlement)
    state = json.loads(payload)
    assert topic == "homeassistant/sensor/h001/state"
    assert (state["bill_slot"], state["bill_u"], state["grid_import_wh"]) == (9, 1500, 1500)  # reading kept


def test_every_config_reads_a_key_the_state_has() -> None:
    keys = json.loads(HouseholdState().payload()).keys()
    for _, payload in Discovery("h001", "demo", has_pv=True, has_battery=True).configs():
        template = json.loads(payload)["value_template"]
        assert template.split("value_json.")[1].split()[0] in keys


def agent_file(tmp_path: Path, section: object) -> Path:
    me = Identity.derived("h001", 1)
    (tmp_path / "h001.key").write_text(me.private_hex())
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "agent": {"device": "h001", "key_file": "h001.key", "home_assistant": section},
        "community": {"coordinator_key": Identity.derived("coordinator", 1).public_key_hex},
    }))
    return path


def test_the_section_is_read_strictly(tmp_path: Path) -> None:
    section = load_agent_config(agent_file(tmp_path, {"currency": "CHF"})).section.home_assistant
    assert section is not None and (section.discovery_prefix, section.currency) == ("homeassistant", "CHF")
    with pytest.raises(ConfigError, match=r"agent\.yaml: agent\.home_assistant\.prefix: unknown key"):
        load_agent_config(agent_file(tmp_path, {"prefix": "ha"}))
    with pytest.raises(ConfigError, match=r"agent\.home_assistant\.discovery_prefix"):
        load_agent_config(agent_file(tmp_path, {"discovery_prefix": "home/assistant"}))
    with pytest.raises(ConfigError, match=r"agent\.home_assistant\.currency"):
        load_agent_config(agent_file(tmp_path, {"currency": "euro"}))
