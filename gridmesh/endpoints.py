"""Which broker and community a command-line tool talks to: ``--broker HOST:PORT`` with
``--community ID``, or ``--run RUN_DIR``, a testbed's output folder, whose configuration
names both."""

from __future__ import annotations

import argparse

import yaml

from broker.bus import Endpoint
from broker.community import Community
from broker.topics import NAME
from gridmesh.cli import UsageError


def target(args: argparse.Namespace) -> tuple[Endpoint, str]:
    """(broker, community id) from --run or --broker/--community."""
    if args.run is not None:
        if args.community:
            raise UsageError("--community: not with --run (the run's configuration names it)")
        config_dir = args.run / "config"
        try:
            coordinator = yaml.safe_load((config_dir / "coordinator.yaml").read_text())
            community = yaml.safe_load((config_dir / "community.yaml").read_text())
            broker, community_id = coordinator["coordinator"]["broker"], community["id"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise UsageError(f"--run: {args.run} holds no testbed configuration ({exc})") from None
    else:
        broker, community_id = args.broker, args.community or Community().id
        if not NAME.fullmatch(community_id):
            raise UsageError(f"--community: {community_id!r} must match {NAME.pattern}")
    try:
        return Endpoint.parse(str(broker)), str(community_id)
    except ValueError as exc:
        raise UsageError(f"--broker: {exc}") from None
