"""Which broker and community a command-line tool talks to: ``--broker HOST:PORT`` with
``--community ID``, or ``--run RUN_DIR``, a testbed's output folder, whose configuration
names both; ``--broker-auth FILE`` (a ``broker_auth`` section, as ``gridmesh deploy
broker-config`` writes one per principal) for a locked-down broker."""

from __future__ import annotations

import argparse
import dataclasses

import yaml

from broker.bus import Endpoint
from broker.community import Community
from broker.credentials import load_auth_file
from broker.topics import NAME
from gridmesh.cli import UsageError


def target(args: argparse.Namespace, principal: str | None = None) -> tuple[Endpoint, str]:
    """(broker, community id) from --run or --broker/--community; with --broker-auth, the
    endpoint carries its credentials, which must name ``principal`` if given."""
    if args.run is not None:
        if args.community:
            raise UsageError("--community: not with --run (the run's configuration names it)")
        config_dir = args.run / "config"
        try:
            coordinator = yaml.safe_load((config_dir / "coordinator.yaml").read_text())
            community = yaml.safe_load((config_dir / "community.yaml").read_text())
            broker, community_id = coordinator["coordinator"]["broker"], community["id"]
            locked = "broker_auth" in coordinator["coordinator"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise UsageError(f"--run: {args.run} holds no testbed configuration ({exc})") from None
        if locked and getattr(args, "broker_auth", None) is None:
            raise UsageError(f"--run: the run's broker is locked down: give --broker-auth "
                             f"{args.run}/broker-auth/devices/NAME/broker_auth.yaml (testbed for faults)")
    else:
        broker, community_id = args.broker, args.community or Community().id
        if not NAME.fullmatch(community_id):
            raise UsageError(f"--community: {community_id!r} must match {NAME.pattern}")
    try:
        endpoint = Endpoint.parse(str(broker))
    except ValueError as exc:
        raise UsageError(f"--broker: {exc}") from None
    if getattr(args, "broker_auth", None) is not None:
        endpoint = dataclasses.replace(endpoint, auth=load_auth_file(args.broker_auth, principal))
    return endpoint, str(community_id)
