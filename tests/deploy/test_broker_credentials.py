"""The agent's and coordinator's ``broker_auth`` section: strict, relative to its file,
checked before anything starts, and never echoing a secret."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.bus import Endpoint
from broker.credentials import client_arguments
from broker.identity import Identity
from coordinator.config import load_coordinator_config
from deploy.pki import Authority
from edge.config import load_agent_config
from gridmesh.cli import main
from gridmesh.config import ConfigError

NOW = dt.datetime.now(dt.UTC)
SECRET = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority.create("demo", NOW, 2)


def write_agent(tmp_path: Path, authority: Authority, auth: dict[str, Any], device: str = "h001") -> Path:
    """An agent configuration in tmp_path/config naming ``auth``; credentials for h001 and
    h002 (certificate, key, password) in tmp_path/broker."""
    creds = tmp_path / "broker"
    creds.mkdir(exist_ok=True)
    (creds / "ca.crt").write_bytes(authority.cert_pem)
    for name in ("h001", "h002"):
        issued = authority.issue_client(name, NOW, 1)
        (creds / f"{name}.crt").write_bytes(issued.cert_pem)
        (creds / f"{name}.key").write_bytes(issued.key_pem)
    (creds / "password").write_text(SECRET + "\n")
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "h001.key").write_text(Identity.derived("h001", 1).private_hex() + "\n")
    boss = Identity.derived("coordinator", 1).public_key_hex
    path = config / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "agent": {"device": device, "key_file": "h001.key", "broker": "broker.lan:8883",
                  "broker_auth": auth},
        "community": {"id": "demo", "coordinator_key": boss},
    }))
    return path


TLS = {"ca_file": "../broker/ca.crt", "cert_file": "../broker/h001.crt", "key_file": "../broker/h001.key"}
PASSWORD = {"username": "h001", "password_file": "../broker/password", "ca_file": "../broker/ca.crt"}


def test_a_certificate_section_loads_relative_to_its_file(tmp_path: Path, authority: Authority) -> None:
    config = load_agent_config(write_agent(tmp_path, authority, TLS))
    credentials = config.credentials
    assert credentials is not None
    assert credentials.cert_file == tmp_path / "config" / "../broker/h001.crt"
    arguments = client_arguments(credentials)
    assert set(arguments) == {"tls_context"}  # mosquitto takes the user name from the CN


def test_a_password_section_loads_and_never_shows_its_password(tmp_path: Path, authority: Authority) -> None:
    config = load_agent_config(write_agent(tmp_path, authority, PASSWORD))
    credentials = config.credentials
    assert credentials is not None and credentials.password == SECRET
    endpoint = Endpoint("broker.lan", 8883, credentials)
    assert str(endpoint) == "broker.lan:8883"
    for text in (repr(endpoint), repr(credentials), repr(config), f"{endpoint}"):
        assert SECRET not in text
    arguments = client_arguments(credentials)
    assert (arguments["username"], arguments["password"]) == ("h001", SECRET)
    assert "tls_context" in arguments


@pytest.mark.parametrize(("auth", "key", "problem"), [
    ({**TLS, "pasword_file": "x"}, "agent.broker_auth.pasword_file", "unknown key"),
    ({"ca_file": TLS["ca_file"], "cert_file": TLS["cert_file"]}, "agent.broker_auth.key_file", "missing"),
    ({"cert_file": TLS["cert_file"], "key_file": TLS["key_file"]}, "agent.broker_auth.ca_file", "missing"),
    ({"username": "h001"}, "agent.broker_auth.password_file", "missing"),
    ({"ca_file": TLS["ca_file"]}, "agent.broker_auth", "give username and password_file"),
    ({**TLS, "ca_file": "../broker/nothing.crt"}, "agent.broker_auth.ca_file", "is not a file"),
    ({**TLS, "ca_file": "../broker/password"}, "agent.broker_auth.ca_file", "is not a PEM certificate"),
    ({**TLS, "key_file": "../broker/h002.key"}, "agent.broker_auth.cert_file",
     "not a certificate and its key"),
    ({**TLS, "cert_file": "../broker/h002.crt", "key_file": "../broker/h002.key"},
     "agent.broker_auth.cert_file", "is issued to h002, not 'h001'"),
    ({**PASSWORD, "username": "h002"}, "agent.broker_auth.username", "'h002' is not 'h001'"),
    ({**PASSWORD, "username": "h/1"}, "agent.broker_auth.username", "does not match"),
])
def test_bad_sections_name_the_file_and_key(tmp_path: Path, authority: Authority, auth: dict[str, Any],
                                            key: str, problem: str) -> None:
    path = write_agent(tmp_path, authority, auth)
    with pytest.raises(ConfigError) as info:
        load_agent_config(path)
    assert (info.value.source, info.value.path) == (str(path), key)
    assert problem in info.value.problem


def test_a_bad_password_file_is_named_not_shown(tmp_path: Path, authority: Authority,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = write_agent(tmp_path, authority, PASSWORD)
    (tmp_path / "broker" / "password").write_text(f"{SECRET}\n{SECRET}\n")
    assert main(["agent", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: agent.broker_auth.password_file: " in err and "one password on one line" in err
    assert SECRET not in err and err.count("\n") == 1


def test_the_coordinator_takes_the_same_section(tmp_path: Path, authority: Authority) -> None:
    agent = write_agent(tmp_path, authority, TLS)
    issued = authority.issue_client("coordinator", NOW, 1)
    (tmp_path / "broker" / "coordinator.crt").write_bytes(issued.cert_pem)
    (tmp_path / "broker" / "coordinator.key").write_bytes(issued.key_pem)
    (agent.parent / "coordinator.key").write_text(Identity.derived("coordinator", 1).private_hex() + "\n")
    path = agent.parent / "coordinator.yaml"
    section = {"key_file": "coordinator.key", "broker": "broker.lan:8883", "broker_auth": {
        **TLS, "cert_file": "../broker/coordinator.crt", "key_file": "../broker/coordinator.key"}}
    path.write_text(yaml.safe_dump({"coordinator": section, "community": {"id": "demo"}}))
    config = load_coordinator_config(path)
    assert config.credentials is not None and config.credentials.key_file is not None
    section["broker_auth"] = TLS  # h001's certificate
    path.write_text(yaml.safe_dump({"coordinator": section, "community": {"id": "demo"}}))
    with pytest.raises(ConfigError, match=r"coordinator\.broker_auth\.cert_file: .* not 'coordinator'"):
        load_coordinator_config(path)
