"""``gridmesh deploy flash HOST --device ID``: build or take a bundle, push it over SSH,
install it and start the agent."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from deploy.bundle import build_bundle
from deploy.bundle_options import add_bundle_options, bundle_request
from deploy.flash import FlashError, SshTarget, install, push_bundle, remote_arch, service_state
from deploy.manifest import check_bundle
from deploy.systemd_unit import UNIT_NAME
from deploy.wheels import WheelError
from gridmesh.cli import UsageError

FLASH_EXAMPLE = """examples:
  gridmesh deploy flash 192.168.1.21 --device h001 --user pi --registry community.yaml \\
      --keys keys --broker 192.168.1.10:1883 --modbus 192.168.1.50
  gridmesh deploy flash pi-h001.local --device h001 --user pi --bundle bundles/h001
"""


def add_flash_command(sub: argparse._SubParsersAction[Any]) -> None:
    flash = sub.add_parser("flash", help="push a bundle to a device over SSH, install it and start the agent",
                           description="Build (or take) a device's bundle, copy it over SSH, run its "
                           "install script with --system and report the service's state.",
                           epilog=FLASH_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    flash.add_argument("host", metavar="HOST", help="the device's address")
    flash.add_argument("--device", required=True, help="the member's device id")
    flash.add_argument("--user", help="SSH user (default: ssh's)")
    flash.add_argument("--port", type=int, default=22, help="SSH port (default 22)")
    flash.add_argument("--identity", type=Path, metavar="FILE", help="SSH private key")
    flash.add_argument("--known-hosts", type=Path, metavar="FILE",
                       help="SSH known-hosts file (default ssh's; a new device's key is accepted once)")
    flash.add_argument("--connect-timeout", type=int, default=10, metavar="S",
                       help="seconds to wait for the device (default 10)")
    flash.add_argument("--bundle", type=Path, metavar="DIR", help="push this bundle instead of building one")
    flash.add_argument("--prefix", default="/opt/gridmesh", help="install prefix on the device")
    flash.add_argument("--no-service", action="store_true",
                       help="install under --prefix as the SSH user and leave users and systemd alone")
    add_bundle_options(flash, arch_required=False)
    flash.set_defaults(handler=run_flash)


def _pushed_bundle(args: argparse.Namespace) -> Path:
    bundle: Path = args.bundle
    manifest, problems = check_bundle(bundle)
    if problems:
        raise UsageError(f"--bundle: {problems[0]}")
    if manifest.get("device") != args.device:
        raise UsageError(f"--bundle: {bundle} is for {manifest.get('device')}, not {args.device}")
    return bundle


def run_flash(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536 or args.connect_timeout < 1:
        raise UsageError("--port must be a TCP port and --connect-timeout at least 1")
    target = SshTarget(args.host, args.user, args.port, args.identity, args.known_hosts, args.connect_timeout)
    try:
        arch = remote_arch(target)  # reachable, key accepted: before anything is built
        if args.arch is not None and args.arch != arch:
            raise UsageError(f"--arch: {args.arch}, but {target.destination} is {arch}")
        with tempfile.TemporaryDirectory(prefix="gridmesh-flash-") as scratch:
            if args.bundle is not None:
                bundle = _pushed_bundle(args)
                pushed_arch = check_bundle(bundle)[0].get("arch")
                if pushed_arch != arch:
                    raise UsageError(f"--bundle: {bundle} is for {pushed_arch}, "
                                     f"but {target.destination} is {arch}")
            else:
                bundle = build_bundle(bundle_request(args, arch, Path(scratch) / args.device, False)).path
            remote_dir = push_bundle(target, bundle)
            for line in install(target, remote_dir, args.prefix, system=not args.no_service):
                print(f"{target.destination}: {line}")
        if args.no_service:
            print(f"{target.destination}: installed under {args.prefix} (no service)")
            return 0
        state = service_state(target)
        print(f"{target.destination}: {UNIT_NAME} {state}")
        return 0 if state == "active" else 1
    except (FlashError, WheelError) as exc:
        raise UsageError(str(exc)) from None
