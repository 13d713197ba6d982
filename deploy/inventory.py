"""A fleet's Ansible inventory, from the community registry and a table of hosts.

``hosts.csv`` says where each member's device is (header first; ``user``, ``port`` and
``modbus`` may be left out or empty)::

    device,address,arch,user,port,modbus
    h001,192.168.1.21,aarch64,pi,22,192.168.1.50
    h002,192.168.1.22,aarch64,pi,,192.168.1.51:502

Every member of the registry must have a row and every row must name a member. The
inventory puts one host per member in the group ``gridmesh_agents`` with its device
id, role, architecture and address, and the ``gridmesh deploy bundle`` arguments that
build its bundle (``gridmesh_bundle_args``), which ``deploy/ansible/flash.yml`` runs.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from broker.community import Community
from broker.messages import ID
from deploy.agent_config import parse_host_port
from deploy.wheels import ARCHES

GROUP = "gridmesh_agents"
REQUIRED = ("device", "address", "arch")
OPTIONAL = ("user", "port", "modbus")


class InventoryError(ValueError):
    """A problem in hosts.csv; the message names the line and the column."""


@dataclass(frozen=True)
class HostRow:
    device: str
    address: str
    arch: str
    user: str = ""
    port: int = 22
    modbus: str = ""


def parse_hosts(text: str, source: str) -> list[HostRow]:
    """The rows of ``hosts.csv``; InventoryError names ``source``, line and column."""
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or ()]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InventoryError(f"{source}: line 1: missing column(s) {', '.join(missing)} "
                             f"(columns: {', '.join(REQUIRED + OPTIONAL)})")
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise InventoryError(f"{source}: line 1: unknown column {unknown[0]!r} "
                             f"(columns: {', '.join(REQUIRED + OPTIONAL)})")
    rows, seen = [], set()
    for number, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{source}: line {number}"
        if not re.fullmatch(ID, row["device"]):
            raise InventoryError(f"{where}: device: {row['device']!r} is not a device id")
        if row["device"] in seen:
            raise InventoryError(f"{where}: device: {row['device']} has a row already")
        if not row["address"]:
            raise InventoryError(f"{where}: address: missing")
        if row["arch"] not in ARCHES:
            raise InventoryError(f"{where}: arch: {row['arch']!r} is not one of {', '.join(ARCHES)}")
        port = row.get("port") or "22"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InventoryError(f"{where}: port: {port!r} is not a TCP port")
        if row.get("modbus"):
            try:
                parse_host_port(row["modbus"], 502)
            except ValueError as exc:
                raise InventoryError(f"{where}: modbus: {exc}") from None
        seen.add(row["device"])
        rows.append(HostRow(row["device"], row["address"], row["arch"], row.get("user", ""), int(port),
                            row.get("modbus", "")))
    return rows


def build_inventory(
    community: Community, rows: Sequence[HostRow], source: str, *, registry: str, keys: str,
    broker: str, device_configs: Mapping[str, str], broker_auth: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The inventory as data (YAML inventory format). ``device_configs`` maps device ids
    to their ``--device-config`` files, where there is one, and ``broker_auth`` to their
    ``--broker-auth`` files (a locked-down broker's credentials)."""
    members = {m.id: m for m in community.members}
    strangers = [r.device for r in rows if r.device not in members]
    if strangers:
        raise InventoryError(f"{source}: {', '.join(strangers)} not a member of community "
                             f"{community.id} ({registry})")
    by_device = {r.device: r for r in rows}
    missing = [m for m in members if m not in by_device]
    if missing:
        raise InventoryError(f"{source}: no row for member(s) {', '.join(missing)}")
    hosts: dict[str, Any] = {}
    for member_id, member in members.items():
        row = by_device[member_id]
        args = ["--device", member_id, "--arch", row.arch, "--registry", registry, "--keys", keys,
                "--broker", broker]
        if member_id in device_configs:
            args += ["--device-config", device_configs[member_id]]
        if row.modbus:
            args += ["--modbus", row.modbus]
        if broker_auth is not None:
            args += ["--broker-auth", broker_auth[member_id]]
        host: dict[str, Any] = {"ansible_host": row.address, "ansible_port": row.port}
        if row.user:
            host["ansible_user"] = row.user
        host.update({"gridmesh_device": member_id, "gridmesh_role": member.role,
                     "gridmesh_arch": row.arch, "gridmesh_bundle_args": args})
        hosts[member_id] = host
    return {"all": {"children": {GROUP: {
        "vars": {"gridmesh_community": community.id, "ansible_python_interpreter": "/usr/bin/python3"},
        "hosts": hosts,
    }}}}
