"""``gridmesh deploy``: get agents onto devices and lock the broker down.

Each part adds its sub-verbs through ``add_deploy_commands(subparsers)`` in its own
module (:data:`DEPLOY_MODULES`), as the packages do for ``gridmesh`` itself.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

DEPLOY_MODULES = (
    "deploy.bundle_cli",  # bundle, flash, inventory
    "deploy.broker_cli",  # broker-config
)


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("deploy", help="build agent bundles, flash devices, lock the broker down",
                            description=__doc__.splitlines()[0])
    deploy_sub = parser.add_subparsers(dest="deploy_verb", metavar="DEPLOY_VERB")
    for name in DEPLOY_MODULES:
        importlib.import_module(name).add_deploy_commands(deploy_sub)
