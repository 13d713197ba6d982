"""The agent configuration a bundle carries, from a device file and the command line.

A device file is an agent configuration (docs/configuration.md) with the parts that
belong to the device: its Modbus devices, clock, forecaster, planner. The bundle sets
what it owns itself: the key (``keys/<device>.key``), the community (the registry,
``community.yaml``), the broker when ``--broker`` is given, and the state folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from broker.credentials import BrokerAuth
from edge.config import AgentSection
from gridmesh.config import ConfigError, build

DEVICE_FILE_KEYS = ("agent", "community")  # community: replaced by the registry
# where a bundle keeps the broker credentials a broker_auth section names (config/broker/)
AUTH_FILES = {"ca_file": "broker/ca.crt", "cert_file": "broker/client.crt",
              "key_file": "broker/client.key", "password_file": "broker/password"}
SECRET_FILES = ("broker/client.key", "broker/password")


def parse_host_port(text: str, default_port: int | None) -> tuple[str, int]:
    """``HOST:PORT`` (or ``HOST`` alone where there is a default port); ValueError says
    what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep and default_port is not None:
        host, port = text, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        form = "HOST:PORT" if default_port is None else "HOST or HOST:PORT"
        raise ValueError(f"must be {form}, got {text!r}")
    return host, int(port)


AuthSource = tuple[Mapping[str, Any], Path, str, str]  # section, its files' folder, file, key path


def bundle_broker_auth(auth: AuthSource) -> tuple[dict[str, Any], dict[str, Path]]:
    """A ``broker_auth`` section (files relative to a folder) as the bundle holds it, and
    which file goes where in the bundle's ``config/``."""
    section, base, source, key_path = auth
    try:
        build(BrokerAuth, dict(section), source)
    except ConfigError as exc:
        raise ConfigError(source, f"{key_path}.{exc.path}" if exc.path else key_path, exc.problem) from None
    bundled, copies = dict(section), {}
    for key, name in AUTH_FILES.items():
        if section.get(key):
            path = Path(str(section[key]))
            copies[name] = path if path.is_absolute() else base / path
            bundled[key] = name
    return bundled, copies


def bundle_agent_config(
    device: str, device_file: Mapping[str, Any], source: str, *, broker: str | None,
    modbus: str | None, state_dir: str, broker_auth: AuthSource | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """The bundle's ``agent.yaml`` as data and the broker credentials it copies (from
    ``broker_auth``, else from the device file's own ``agent.broker_auth``); ConfigError
    names the file or option at fault."""
    unknown = sorted(set(device_file) - set(DEVICE_FILE_KEYS))
    if unknown:
        raise ConfigError(source, unknown[0], f"unknown key (known keys: {', '.join(DEVICE_FILE_KEYS)})")
    if not isinstance(device_file.get("agent") or {}, dict):
        raise ConfigError(source, "agent", "must be a mapping")
    agent = dict(device_file.get("agent") or {})
    if agent.get("device", device) != device:
        raise ConfigError(source, "agent.device", f"is {agent['device']!r}, but the bundle is for {device!r}")
    if agent.get("forecaster") == "perfect":
        raise ConfigError(source, "agent.forecaster", "perfect reads a testbed's truth file; "
                          "a device forecasts with onnx or seasonal-naive")
    agent["device"] = device
    agent["key_file"] = f"keys/{device}.key"
    if broker is not None:
        agent["broker"] = broker
    elif "broker" not in agent:
        raise ConfigError("command line", "--broker", "missing: give the broker's HOST:PORT "
                          "(or agent.broker in --device-config)")
    try:
        parse_host_port(str(agent["broker"]), None)
    except ValueError as exc:
        raise ConfigError(*(("command line", "--broker") if broker is not None else (source, "agent.broker")),
                          str(exc)) from None
    if modbus is not None:
        try:
            host, port = parse_host_port(modbus, 502)
        except ValueError as exc:
            raise ConfigError("command line", "--modbus", str(exc)) from None
        agent["modbus"] = {**(agent.get("modbus") or {}), "host": host, "port": port}
    agent["state_dir"] = state_dir
    copies: dict[str, Path] = {}
    if broker_auth is None and agent.get("broker_auth") is not None:
        if not isinstance(agent["broker_auth"], dict):
            raise ConfigError(source, "agent.broker_auth", "must be a mapping")
        broker_auth = (agent["broker_auth"], Path(source).parent, source, "agent.broker_auth")
    if broker_auth is not None:
        agent["broker_auth"], copies = bundle_broker_auth(broker_auth)
    try:
        build(AgentSection, agent, source)  # strict: every key and value checked here
    except ConfigError as exc:
        raise ConfigError(source, f"agent.{exc.path}" if exc.path else "agent", exc.problem) from None
    return {"agent": agent, "community": "community.yaml"}, copies
