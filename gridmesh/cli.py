"""The ``gridmesh`` command: one program, a verb per task.

Each package adds its verbs through ``add_commands(subparsers)`` in its own ``cli``
module; a verb's handler takes the parsed arguments and returns the exit code.
Errors that users cause become one clear line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from gridmesh import __version__
from gridmesh.config import ConfigError

COMMAND_MODULES = (
    "simulators.cli",
    "simulators.simulate",
    "simulators.fault_cli",
    "simulators.drill_cli",
    "simulators.forecast_cli",
    "simulators.replay_cli",
    "simulators.report.cli",
    "broker.cli",
    "coordinator.cli",
    "edge.cli",
    "edge.device_cli",
    "ledger.cli",
    "deploy.cli",
)

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridmesh",
        description="Peer-to-peer energy trading at the edge: devices, market and ledger.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gridmesh {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except (ConfigError, UsageError) as exc:
        print(f"gridmesh {args.verb}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gridmesh {args.verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (gridmesh ledger show ... | head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
