"""``gridmesh deploy bundle``, ``check-wheels``, ``flash`` and ``inventory``: agents onto devices."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from broker.community import Community
from deploy.bundle import build_bundle
from deploy.bundle_options import add_bundle_options, bundle_request, target_of
from deploy.flash_cli import add_flash_command
from deploy.inventory import InventoryError, build_inventory, parse_hosts
from deploy.pip_tools import build_gridmesh_wheel, resolve, wheel_metadata
from deploy.wheels import ARCHES, WheelError, runtime_requirements
from gridmesh.cli import UsageError
from gridmesh.config import load

BUNDLE_EXAMPLE = """examples:
  gridmesh deploy bundle --device h001 --arch aarch64 --registry community.yaml --keys keys \\
      --broker 192.168.1.10:1883 --modbus 192.168.1.50 --out bundles/h001
  gridmesh deploy bundle --device h001 --arch aarch64 --registry community.yaml --keys keys \\
      --broker 192.168.1.10:1883 --device-config devices/h001.yaml --out bundles/h001
then on the device: sudo sh install.sh --system
"""
CHECK_EXAMPLE = """examples:
  gridmesh deploy check-wheels --arch aarch64
  gridmesh deploy check-wheels --arch x86_64 --json
"""
INVENTORY_EXAMPLE = """examples:
  gridmesh deploy inventory --registry community.yaml --hosts hosts.csv --keys keys \\
      --broker 192.168.1.10:1883 --out fleet
  ansible-playbook -i fleet/inventory.yml fleet/flash.yml
"""
PLAYBOOK = Path(__file__).resolve().parent / "ansible" / "flash.yml"


def add_deploy_commands(sub: argparse._SubParsersAction[Any]) -> None:
    bundle = sub.add_parser("bundle", help="build a device's self-contained, offline bundle",
                            description="Build a bundle for one device: wheelhouse, configuration, key, "
                            "systemd unit, install script and manifest.",
                            epilog=BUNDLE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    bundle.add_argument("--device", required=True, help="the member's device id")
    add_bundle_options(bundle, arch_required=True)
    bundle.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the bundle goes")
    bundle.add_argument("--force", action="store_true", help="replace a bundle already in --out")
    bundle.set_defaults(handler=run_bundle)

    check = sub.add_parser("check-wheels", help="check every package the edge needs has a wheel for a CPU",
                           description="Resolve gridmesh's runtime dependencies for CPython 3.11 on a "
                           "device's CPU from the package index, wheels only, without installing.",
                           epilog=CHECK_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("--arch", required=True, help=f"{' or '.join(ARCHES)}")
    check.add_argument("--json", action="store_true", help="print the wheels as JSON")
    check.set_defaults(handler=run_check_wheels)

    add_flash_command(sub)

    inventory = sub.add_parser("inventory", help="write an Ansible inventory and playbook for a fleet",
                               description="One host per registry member, from a table of hosts, "
                               "next to the playbook that builds, pushes and installs their bundles.",
                               epilog=INVENTORY_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    inventory.add_argument("--registry", type=Path, required=True, metavar="FILE", help="community.yaml")
    inventory.add_argument("--hosts", type=Path, required=True, metavar="FILE",
                           help="CSV: device,address,arch[,user,port,modbus]")
    inventory.add_argument("--keys", type=Path, required=True, metavar="DIR",
                           help="folder holding <device>.key")
    inventory.add_argument("--broker", required=True, metavar="HOST:PORT", help="the agents' broker")
    inventory.add_argument("--devices", type=Path, metavar="DIR",
                           help="per-device configurations DIR/<device>.yaml (--device-config) where present")
    inventory.add_argument("--broker-files", type=Path, metavar="DIR",
                           help="the folder gridmesh deploy broker-config wrote: each device's "
                           "devices/<id>/broker_auth.yaml goes into its bundle")
    inventory.add_argument("--out", type=Path, required=True, metavar="DIR")
    inventory.add_argument("--force", action="store_true", help="overwrite the files in --out")
    inventory.set_defaults(handler=run_inventory)


def run_bundle(args: argparse.Namespace) -> int:
    request = bundle_request(args, args.arch, args.out, args.force)
    try:
        bundle = build_bundle(request)
    except WheelError as exc:
        raise UsageError(str(exc)) from None
    manifest = bundle.manifest
    print(f"bundle {bundle.path}: {manifest['device']} {manifest['arch']} gridmesh {manifest['version']}, "
          f"{bundle.wheels} wheels, {bundle.size_bytes / 1e6:.1f} MB, built in {bundle.build_s:.1f} s")
    print(f"install on the device: sudo sh {bundle.path.name}/install.sh --system")
    return 0


def edge_requirements() -> list[str]:
    """gridmesh's runtime dependencies, as its wheel built from this checkout states them."""
    with tempfile.TemporaryDirectory(prefix="gridmesh-check-") as scratch:
        return runtime_requirements(wheel_metadata(build_gridmesh_wheel(Path(scratch))))


def run_check_wheels(args: argparse.Namespace) -> int:
    target = target_of(args.arch)
    try:
        wheels = resolve(edge_requirements(), target)
    except WheelError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"arch": target.arch, "python": target.python_version,
                          "wheels": [{"name": w.name, "version": w.version, "file": w.filename}
                                     for w in wheels]}, indent=2))
    else:
        for wheel in wheels:
            print(f"{wheel.name:<22} {wheel.version:<12} {wheel.filename}")
        print(f"{len(wheels)} packages, every one a wheel for CPython {target.python_version} "
              f"on {target.arch}")
    return 0


def run_inventory(args: argparse.Namespace) -> int:
    community = load(Community, args.registry)
    try:
        rows = parse_hosts(args.hosts.read_text(encoding="utf-8"), str(args.hosts))
    except OSError as exc:
        raise UsageError(f"--hosts: cannot read {args.hosts}: {exc.strerror}") from None
    except InventoryError as exc:
        raise UsageError(str(exc)) from None
    if not args.keys.is_dir():
        raise UsageError(f"--keys: {args.keys} is not a folder")
    devices: dict[str, str] = {}
    if args.devices is not None:
        if not args.devices.is_dir():
            raise UsageError(f"--devices: {args.devices} is not a folder")
        devices = {row.device: str((args.devices / f"{row.device}.yaml").resolve()) for row in rows
                   if (args.devices / f"{row.device}.yaml").is_file()}
    auth: dict[str, str] | None = None
    if args.broker_files is not None:
        auth = {row.device: str((args.broker_files / "devices" / row.device / "broker_auth.yaml").resolve())
                for row in rows}
        missing = [device for device, path in auth.items() if not Path(path).is_file()]
        if missing:
            raise UsageError(f"--broker-files: no devices/<id>/broker_auth.yaml in {args.broker_files} "
                             f"for {', '.join(missing)}")
    try:
        inventory = build_inventory(community, rows, str(args.hosts), registry=str(args.registry.resolve()),
                                    keys=str(args.keys.resolve()), broker=args.broker, device_configs=devices,
                                    broker_auth=auth)
    except InventoryError as exc:
        raise UsageError(str(exc)) from None
    files = {"inventory.yml": yaml.safe_dump(inventory, sort_keys=False), "flash.yml": PLAYBOOK.read_text()}
    existing = [name for name in files if (args.out / name).exists()]
    if existing and not args.force:
        raise UsageError(f"--out: {args.out} holds {', '.join(existing)} already (--force overwrites)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():  # each file whole or not at all
        scratch = args.out / f".{name}.tmp"
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, args.out / name)
    print(f"{args.out}/inventory.yml: {len(rows)} host(s) in group gridmesh_agents; "
          f"playbook {args.out}/flash.yml")
    print(f"run: ansible-playbook -i {args.out}/inventory.yml {args.out}/flash.yml")
    if shutil.which("ansible-playbook") is None:
        print("(ansible is not installed here: pip install ansible-core)")
    return 0
