"""The options that say what goes into a bundle, shared by ``deploy bundle`` and ``deploy flash``."""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy.bundle import BundleRequest
from deploy.pip_tools import default_cache
from deploy.systemd_unit import UnitSpec
from deploy.wheels import ARCHES, Target, WheelError
from gridmesh.cli import UsageError


def add_bundle_options(parser: argparse.ArgumentParser, arch_required: bool) -> None:
    """The options that say what goes into a bundle (shared by bundle and flash)."""
    parser.add_argument("--arch", required=arch_required, metavar="ARCH",
                        help=f"the device's CPU: {' or '.join(ARCHES)}")
    parser.add_argument("--registry", type=Path, metavar="FILE",
                        help="the community registry (community.yaml: rules, members, coordinator key)")
    parser.add_argument("--keys", type=Path, metavar="DIR", help="folder holding <device>.key")
    parser.add_argument("--broker", metavar="HOST:PORT", help="the broker the agent connects to")
    parser.add_argument("--device-config", type=Path, metavar="FILE",
                        help="an agent configuration with the device's own settings (modbus, clock, "
                        "forecaster, planner); key, registry and broker are set by the bundle")
    parser.add_argument("--modbus", metavar="HOST[:PORT]", help="the device's Modbus TCP gateway")
    parser.add_argument("--broker-auth", type=Path, metavar="FILE",
                        help="the device's credentials for a locked-down broker: devices/<id>/"
                        "broker_auth.yaml from gridmesh deploy broker-config (its files go into the bundle)")
    parser.add_argument("--state-dir", default="/var/lib/gridmesh", metavar="DIR",
                        help="the agent's writable state folder on the device (default /var/lib/gridmesh)")
    parser.add_argument("--watchdog-s", type=int, default=UnitSpec("").watchdog_s,
                        help="systemd's watchdog interval (default %(default)s)")
    parser.add_argument("--memory-max-mb", type=int, default=UnitSpec("").memory_max_mb,
                        help="the service's memory cap (default %(default)s)")
    parser.add_argument("--wheel-cache", type=Path, default=None, metavar="DIR",
                        help=f"downloaded wheels kept between bundles (default {default_cache()})")


def target_of(arch: str) -> Target:
    try:
        return Target(arch)
    except WheelError as exc:
        raise UsageError(f"--arch: {exc}") from None


def bundle_request(args: argparse.Namespace, arch: str, out: Path, force: bool) -> BundleRequest:
    for option in ("registry", "keys"):
        if getattr(args, option) is None:
            raise UsageError(f"--{option}: missing")
    if args.watchdog_s < 10 or args.memory_max_mb < 64:
        raise UsageError("--watchdog-s must be at least 10 and --memory-max-mb at least 64")
    unit = UnitSpec(args.device, state_dir=args.state_dir, watchdog_s=args.watchdog_s,
                    memory_max_mb=args.memory_max_mb)
    if not args.state_dir.startswith("/"):
        raise UsageError(f"--state-dir: {args.state_dir!r} must be an absolute path")
    return BundleRequest(args.device, target_of(arch), args.registry, args.keys, out,
                         args.wheel_cache or default_cache(), broker=args.broker,
                         device_config=args.device_config, modbus=args.modbus,
                         broker_auth=args.broker_auth, unit=unit, force=force)
