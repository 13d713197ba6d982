"""The coordinator's configuration file.

    coordinator:
      key_file: keys/coordinator.key   # hex Ed25519 private key; relative to this file
      broker: 127.0.0.1:1883
      broker_auth: {ca_file: ..., cert_file: ..., key_file: ...}  # optional: a locked-down broker
      clock: wall                      # or bus: follow the virtual clock
      data_dir: data                   # coordinator.db and ledger.db; relative to this file
      metrics: {port: 9464, host: 127.0.0.1}  # optional: a Prometheus endpoint (docs/integrations.md)
    community: { ... }                 # see broker/community.py, or a file: community.yaml
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from broker.community import Community
from broker.credentials import BrokerAuth, Credentials, load_credentials
from broker.identity import Identity
from broker.schema import bounded
from gridmesh.config import ConfigError, build_with_section, load_identity, relative_to
from gridmesh.metrics import MetricsSection


@dataclass(frozen=True)
class CoordinatorSection:
    key_file: str = bounded(max_len=4096)
    broker: str = bounded("127.0.0.1:1883", max_len=300)
    broker_auth: BrokerAuth | None = None  # credentials for a locked-down broker
    clock: str = bounded("wall", choices=("bus", "wall"))
    data_dir: str = bounded("data", max_len=4096)
    metrics: MetricsSection | None = None  # a Prometheus endpoint; off without it


@dataclass(frozen=True)
class CoordinatorFile:
    coordinator: CoordinatorSection
    community: Community = field(default_factory=Community)


@dataclass(frozen=True)
class CoordinatorConfig:
    section: CoordinatorSection
    community: Community
    identity: Identity
    data_dir: Path
    credentials: Credentials | None = None  # for the broker, from coordinator.broker_auth


def load_coordinator_config(path: Path) -> CoordinatorConfig:
    source = str(path)
    parsed, shared = build_with_section(CoordinatorFile, path, "community", Community)
    section, community = parsed.coordinator, shared or parsed.community
    identity = load_identity(path, section.key_file, community.coordinator_id,
                             "coordinator.key_file")
    if not community.coordinator_key:
        community = dataclasses.replace(community, coordinator_key=identity.public_key_hex)
    elif community.coordinator_key != identity.public_key_hex:
        raise ConfigError(source, "community.coordinator_key",
                          "does not match the public key of coordinator.key_file")
    credentials = None
    if section.broker_auth is not None:
        credentials = load_credentials(path, section.broker_auth, "coordinator.broker_auth",
                                       community.coordinator_id)
    return CoordinatorConfig(section, community, identity, relative_to(path, section.data_dir),
                             credentials)
