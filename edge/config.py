"""An edge agent's configuration file.

    agent:
      device: h001
      key_file: keys/h001.key        # hex Ed25519 private key; relative to this file
      broker: 127.0.0.1:1883
      broker_auth:                   # optional, for a locked-down broker (paths relative to this
        ca_file: broker/ca.crt       # file): cert_file and key_file, or username and password_file
        cert_file: broker/client.crt
        key_file: broker/client.key
      clock: bus                     # bus: follow the virtual clock; wall: the system clock
      state_dir: state               # the outbox, <state_dir>/<device>.outbox.db; relative to this file
      planner: horizon               # plan the battery over the forecast horizon (or: slot)
      metrics: {port: 9465}          # optional: a Prometheus endpoint (host default 127.0.0.1)
      home_assistant: {discovery_prefix: homeassistant, currency: EUR}  # optional: MQTT discovery
      modbus:
        host: 192.168.1.50
        port: 502
        frame_gap_ms: 0              # pause between frames (RS485 gateways: ~20)
        setpoint_revert_s: 1800      # the battery self-consumes after this long without a command
        meter:    {template: eastron-sdm630, unit_id: 1}
        inverter: {template: sunspec-inverter, unit_id: 126, host: 192.168.1.60}  # optional;
        battery:  {template: sunspec-battery, unit_id: 1, host: 192.168.1.61}     # host/port
                                                                  # default to the ones above
    community: { ... }               # the community's rules (see broker/community.py),
                                     # or the name of a file holding them: ../community.yaml
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from broker.community import Community
from broker.credentials import BrokerAuth, Credentials, load_credentials
from broker.identity import Identity
from broker.messages import ID
from broker.schema import bounded
from gridmesh.config import ConfigError, build_with_section, load_identity
from gridmesh.metrics import MetricsSection


@dataclass(frozen=True)
class DeviceConfig:
    template: str = bounded(max_len=200)
    unit_id: int = bounded(min=0, max=247)
    host: str | None = bounded(None, max_len=253)  # default: the household's modbus.host
    port: int | None = bounded(None, min=1, max=65535)  # default: modbus.port


@dataclass(frozen=True)
class ModbusConfig:
    host: str = bounded(max_len=253)
    port: int = bounded(502, min=1, max=65535)
    timeout_ms: int = bounded(1000, min=10, max=60_000)
    meter: DeviceConfig = field(default_factory=lambda: DeviceConfig("gridmesh-meter", 1))
    inverter: DeviceConfig | None = None
    battery: DeviceConfig | None = None
    frame_gap_ms: int = bounded(0, min=0, max=1000)  # pause between frames (RS485 gateways)
    # A battery whose template can revert returns to its own self-consumption when no
    # command has come for this long (a lost link, a dead agent); 0: never.
    setpoint_revert_s: int = bounded(1800, min=0, max=86_400)


@dataclass(frozen=True)
class HomeAssistantSection:
    """Home Assistant MQTT discovery (edge/home_assistant.py): off without the section."""

    discovery_prefix: str = bounded("homeassistant", pattern=ID)  # Home Assistant's, as set there
    name: str = bounded("", max_len=100)  # the household's device name there; default "gridmesh <device>"
    currency: str = bounded("EUR", pattern=r"[A-Z]{3}")  # ISO 4217: the unit of prices and bills


@dataclass(frozen=True)
class AgentSection:
    device: str = bounded(pattern=ID)
    key_file: str = bounded(max_len=4096)
    broker: str = bounded("127.0.0.1:1883", max_len=300)
    broker_auth: BrokerAuth | None = None  # credentials for a locked-down broker
    clock: str = bounded("wall", choices=("bus", "wall"))
    modbus: ModbusConfig = field(default_factory=lambda: ModbusConfig("127.0.0.1"))
    last_order_slot: int | None = None
    forecaster: str = bounded("onnx", choices=("onnx", "seasonal-naive", "perfect"))  # onnx: edge/models
    truth_file: str = bounded("", max_len=4096)  # perfect (studies only): slot,load_wh,pv_wh
    # horizon: with prices that change, plan the battery over the forecast horizon; slot: one slot ahead
    planner: str = bounded("horizon", choices=("horizon", "slot"))
    battery_efficiency_pct: int = bounded(90, min=1, max=100)  # round trip, for the horizon plan
    # the outbox (docs/reliability.md), relative to this file: <state_dir>/<device>.outbox.db
    state_dir: str = bounded("state", max_len=4096)
    outbox_max_age_s: int = bounded(7 * 86_400, min=3600, max=365 * 86_400)  # older messages are dropped
    outbox_max_messages: int = bounded(10_000, min=100, max=1_000_000)  # and the oldest beyond this many
    metrics: MetricsSection | None = None  # a Prometheus endpoint (docs/integrations.md); off without it
    home_assistant: HomeAssistantSection | None = None  # MQTT discovery (docs/integrations.md)


@dataclass(frozen=True)
class AgentFile:
    agent: AgentSection
    community: Community = field(default_factory=Community)


@dataclass(frozen=True)
class AgentConfig:
    """A loaded agent configuration with its key."""

    section: AgentSection
    community: Community
    identity: Identity
    source: str
    credentials: Credentials | None = None  # for the broker, from agent.broker_auth


def load_agent_config(path: Path) -> AgentConfig:
    source = str(path)
    parsed, shared = build_with_section(AgentFile, path, "community", Community)
    community = shared or parsed.community
    section = parsed.agent
    identity = load_identity(path, section.key_file, section.device, "agent.key_file")
    if not community.coordinator_key:
        raise ConfigError(source, "community.coordinator_key",
                          "missing: the agent must know the coordinator's public key")
    credentials = None
    if section.broker_auth is not None:
        credentials = load_credentials(path, section.broker_auth, "agent.broker_auth",
                                       section.device)
    return AgentConfig(section, community, identity, source, credentials)
