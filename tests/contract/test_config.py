"""Strict configuration: unknown keys and bad values name the file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.community import Community
from broker.identity import Identity
from broker.schema import SchemaError, from_dict
from edge.config import load_agent_config
from gridmesh.config import ConfigError, load
from simulators import testbed_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "community.yaml"
    path.write_text(text)
    return path


def test_defaults_load(tmp_path: Path) -> None:
    community = load(Community, write(tmp_path, "id: demo\n"))
    assert community.market.slot_s == 900
    assert community.tariff.import_u_per_kwh > community.tariff.feedin_u_per_kwh


@pytest.mark.parametrize(
    ("text", "path", "problem"),
    [
        ("tarif: {}\n", "tarif", "unknown key"),
        ("tariff: {import_u_per_kwh: -1}\n", "tariff.import_u_per_kwh", "must be >= 0"),
        ("tariff: {import_u_per_kwh: 0.3}\n", "tariff.import_u_per_kwh", "must be an integer"),
        ("market: {slot_s: 900, gate_closure_s: 900}\n", "market", "gate_closure_s"),
        ("tariff: {import_u_per_kwh: 10, feedin_u_per_kwh: 20}\n", "tariff", "must not exceed"),
        ("members: [{id: a, public_key: zz}]\n", "members[0].public_key", "does not match"),
        ("forecasting: {round_slot: 96}\n", "forecasting.round_slot", "unknown key"),
        ("forecasting: {prior_weight: 0.5}\n", "forecasting.prior_weight", "must be an integer"),
        ("forecasting: {min_members: 1}\n", "forecasting.min_members", "must be >= 2"),
        ("forecasting: {round_slots: 1}\n", "forecasting", "round_slots: must be 0 (off) or at least 2"),
    ],
)
def test_bad_values_name_file_and_key_path(
    tmp_path: Path, text: str, path: str, problem: str
) -> None:
    source = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(Community, source)
    assert info.value.path == path
    assert problem in info.value.problem
    assert str(source) in str(info.value)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate key 'id'"):
        load(Community, write(tmp_path, "id: a\nid: b\n"))


def test_yaml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 2"):
        load(Community, write(tmp_path, "id: a\n  bad: [\n"))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(Community, tmp_path / "missing.yaml")


def write_agent(tmp_path: Path, community: str) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "h001.key").write_text(Identity.derived("h001", 1).private_hex() + "\n")
    agent = tmp_path / "agents" / "h001.yaml"
    agent.parent.mkdir(exist_ok=True)
    agent.write_text(f"agent:\n  device: h001\n  key_file: ../keys/h001.key\ncommunity: {community}\n")
    return agent


def test_an_agent_reads_its_community_from_a_shared_file(tmp_path: Path) -> None:
    boss = Identity.derived("coordinator", 1).public_key_hex
    (tmp_path / "community.yaml").write_text(f"id: street9\ncoordinator_key: {boss}\n")
    config = load_agent_config(write_agent(tmp_path, "../community.yaml"))
    assert (config.community.id, config.community.coordinator_key) == ("street9", boss)


def test_an_error_in_the_shared_community_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "community.yaml").write_text("id: street9\ntarif: {}\n")
    with pytest.raises(ConfigError, match=r"community\.yaml: tarif: unknown key"):
        load_agent_config(write_agent(tmp_path, "../community.yaml"))
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load_agent_config(write_agent(tmp_path, "../missing.yaml"))


@pytest.mark.parametrize(("start", "expected_s"), [
    ("2016-06-06", 1_465_171_200), ("2016-06-06T10:00", 1_465_207_200)])
def test_a_testbed_starts_on_a_date_or_at_a_time(start: str, expected_s: int) -> None:
    assert testbed_config.TestbedSection(start=start).start_s == expected_s


def test_a_testbed_start_that_is_no_date_is_refused() -> None:
    with pytest.raises(SchemaError, match="start"):
        from_dict(testbed_config.TestbedSection, {"start": "2016-13-06"})


def test_a_testbed_sets_federated_rounds_from_its_option_and_checks_it() -> None:
    config = testbed_config.load_testbed_config(None, {"federated_round_slots": 96})
    assert config.testbed.federated_round_slots == 96
    with pytest.raises(ConfigError) as info:
        testbed_config.load_testbed_config(None, {"federated_round_slots": 1})
    assert (info.value.source, info.value.path) == ("command line", "--federated-round-slots")
    assert "must be 0 (off) or at least 2" in info.value.problem
