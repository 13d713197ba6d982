"""A small community registry with keys, as an operator keeps them, for the deploy tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from broker.community import Community, Member
from broker.identity import Identity
from broker.schema import to_dict

SEED = 7


def write_registry(folder: Path, members: tuple[str, ...] = ("h001", "h002", "h003"),
                   community_id: str = "demo") -> tuple[Path, Path]:
    """``folder/community.yaml`` with ``members`` and the coordinator's key, and
    ``folder/keys/<id>.key`` for each member; returns (registry, keys folder)."""
    keys = folder / "keys"
    keys.mkdir(parents=True)
    identities = {name: Identity.derived(name, SEED) for name in members}
    for name, identity in identities.items():
        (keys / f"{name}.key").write_text(identity.private_hex() + "\n")
    community = Community(
        id=community_id, coordinator_key=Identity.derived("coordinator", SEED).public_key_hex,
        members=tuple(Member(name, identity.public_key_hex) for name, identity in identities.items()),
    )
    registry = folder / "community.yaml"
    registry.write_text(yaml.safe_dump(to_dict(community), sort_keys=False))
    return registry, keys
