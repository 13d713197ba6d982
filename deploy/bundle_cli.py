"""Placeholder: sub-verbs of ``gridmesh deploy`` (see :mod:`deploy.cli`)."""

from __future__ import annotations

import argparse
from typing import Any


def add_deploy_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """No sub-verbs yet."""
