"""``gridmesh device``: read a device through a template, or list its SunSpec models."""

from __future__ import annotations

import argparse
from typing import Any

from broker.bus import Endpoint
from edge.device_tools import DeviceError, DeviceLink
from edge.registers.template import load_template
from gridmesh import aio
from gridmesh.cli import UsageError
from gridmesh.config import ConfigError

EXAMPLE = """examples:
  gridmesh device read 192.168.1.50:502 --template eastron-sdm630 --unit 1
  gridmesh device scan 192.168.1.60:502 --unit 126
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "device", help="read a Modbus device through a template, or scan its SunSpec models",
        description="Talk to one Modbus TCP device directly (a real one or a virtual one).",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="device_verb", metavar="VERB")
    read = verbs.add_parser("read", help="print every value a template reads from the device",
                            epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    read.add_argument("address", metavar="HOST:PORT")
    read.add_argument("--template", required=True, help="template name (edge/devices) or YAML path")
    read.add_argument("--unit", type=int, default=1, help="Modbus unit id (default 1)")
    read.set_defaults(handler=run_read)
    scan = verbs.add_parser("scan", help="list the SunSpec models the device holds",
                            epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    scan.add_argument("address", metavar="HOST:PORT")
    scan.add_argument("--unit", type=int, default=1, help="Modbus unit id (default 1)")
    scan.set_defaults(handler=run_scan)
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _endpoint(text: str, unit: int) -> Endpoint:
    if not 0 <= unit <= 247:
        raise UsageError(f"--unit must be 0..247, got {unit}")
    try:
        return Endpoint.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def run_read(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args.address, args.unit)
    try:
        template = load_template(args.template)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None

    async def read() -> dict[str, int]:
        async with DeviceLink(endpoint.host, endpoint.port) as link:
            return await link.read_template(template, args.unit)

    try:
        values = aio.run(read())
    except DeviceError as exc:
        raise UsageError(str(exc)) from None
    width = max(len(p.name) for p in template.points)
    print(f"{template.name} at {endpoint} unit {args.unit}")
    for point in template.points:
        if point.name in values:
            print(f"  {point.name:<{width}}  {values[point.name]}")
    return 0


def run_scan(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args.address, args.unit)

    async def scan() -> list[tuple[int, int, int]]:
        async with DeviceLink(endpoint.host, endpoint.port) as link:
            return [(m.address, m.model_id, m.length) for m in await link.sunspec_models(args.unit)]

    try:
        models = aio.run(scan())
    except DeviceError as exc:
        raise UsageError(str(exc)) from None
    print(f"SunSpec device at {endpoint} unit {args.unit}: {len(models)} model(s)")
    for address, model_id, length in models:
        print(f"  model {model_id:>5}  at {address}  length {length}")
    return 0
