"""Strict configuration: unknown keys and bad values name the file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.community import Community
from gridmesh.config import ConfigError, load


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
